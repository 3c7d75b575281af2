"""Kinematics of skinned body models as pure functions over tensors.

Conventions: right-handed frames, metres, rotations as axis-angle vectors in radians
(direction = axis, norm = angle) or as (3, 3) matrices acting on column vectors.

Forward kinematics (the SMPL form). Joint ``j`` has rest position ``t_j`` and parent ``p(j)``
(``-1`` for the root). Its local rotation ``R_j`` is expressed in world-aligned axes of the rest
pose and turns the joint's subtree about the joint itself. The accumulated transforms are

    A_root = [R_root | t_root],          A_j = A_p(j) [R_j | t_j - t_p(j)],

the posed joint is ``A_j``'s translation, and the *bone transform* that carries a rest-pose
point bound to joint ``j`` to its posed place is ``G_j = A_j [I | -t_j]``.

Linear blend skinning: ``x'_v = sum_j w_vj G_j [x_v; 1]``.

Each fast kernel has a slow, obvious ``reference_*`` twin used as the test oracle.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

_SMALL_ANGLE_SQ = 1e-8  # below this squared angle, use Taylor series (exact to float64 precision)


def skew(vectors: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) cross-product matrices ``[v]_x`` (``[v]_x u = v x u``) of vectors (..., 3)."""
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*vectors.shape[:-1], 3, 3)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: rotation matrices (..., 3, 3) of axis-angle vectors ``r`` (..., 3), radians.

    ``R = I + a [r]_x + b [r]_x^2`` with ``theta = |r|``, ``a = sin(theta) / theta`` and
    ``b = (1 - cos(theta)) / theta^2``. Near ``theta = 0`` the series ``a = 1 - theta^2/6 +
    theta^4/120``, ``b = 1/2 - theta^2/24 + theta^4/720`` is used, so the value and the gradient
    (``dR/dr = [.]_x`` at zero) are exact and finite there.
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis_angle_to_matrix: expected (..., 3), got {tuple(axis_angle.shape)}")
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    theta_sq_safe = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = theta_sq_safe.sqrt()
    a_big = torch.sin(theta) / theta
    b_big = (1.0 - torch.cos(theta)) / theta_sq_safe
    a_small = 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0
    b_small = 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0
    a = torch.where(small, a_small, a_big)[..., None, None]
    b = torch.where(small, b_small, b_big)[..., None, None]
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def _matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions (w, x, y, z), w >= 0, of rotation matrices (..., 3, 3).

    Shepperd's method: of the four candidates (from the trace and each diagonal entry) the
    one with the largest denominator is used, which keeps every case well conditioned.
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    # 4 q_i^2 for each component.
    four_sq = torch.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s10, s02, s21 = m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2]
    candidates = torch.stack(
        [
            torch.stack([four_sq[..., 0], d21, d02, d10], -1),
            torch.stack([d21, four_sq[..., 1], s10, s02], -1),
            torch.stack([d02, s10, four_sq[..., 2], s21], -1),
            torch.stack([d10, s02, s21, four_sq[..., 3]], -1),
        ],
        dim=-2,
    )  # row i = 4 q_i * q
    best = four_sq.argmax(-1)
    row = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    denom = 2.0 * torch.gather(four_sq, -1, best[..., None]).clamp_min(1e-12).sqrt()
    quat = row / denom
    return quat * torch.where(quat[..., :1] < 0, -1.0, 1.0).to(quat.dtype)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors (..., 3), angle in [0, pi], of rotation matrices (..., 3, 3).

    Through the unit quaternion ``(w, v)``: ``theta = 2 atan2(|v|, w)``, ``r = theta v / |v|``
    (``r ~ 2 v / w`` for tiny ``|v|``). Accurate at 0 and at pi alike.
    """
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"matrix_to_axis_angle: expected (..., 3, 3), got {tuple(matrix.shape)}")
    quat = _matrix_to_quaternion(matrix)
    w, v = quat[..., :1], quat[..., 1:]
    sin_half = v.norm(dim=-1, keepdim=True)
    small = sin_half < 1e-6
    safe = torch.where(small, torch.ones_like(sin_half), sin_half)
    scale = torch.where(small, 2.0 / w.clamp_min(1e-12), 2.0 * torch.atan2(sin_half, w) / safe)
    return v * scale


def rigid_matrix(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) homogeneous transforms ``[R | t; 0 0 0 1]`` of rotation (..., 3, 3), translation (..., 3)."""
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


@functools.lru_cache(maxsize=32)
def _kinematic_levels(parents: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Joints grouped by depth: level 0 holds the roots, level k the children of level k - 1."""
    count = len(parents)
    depth = [-1] * count
    for joint in range(count):
        chain, node = [], joint
        while node >= 0 and depth[node] < 0:
            chain.append(node)
            node = parents[node]
            if len(chain) > count:
                raise ValueError(f"parents {list(parents)} contain a cycle")
        base = -1 if node < 0 else depth[node]
        for offset, member in enumerate(reversed(chain)):
            depth[member] = base + 1 + offset
    return tuple(tuple(j for j in range(count) if depth[j] == level) for level in range(max(depth) + 1))


def _check_parents(parents, num_joints: int) -> tuple[int, ...]:
    parents = tuple(int(p) for p in parents)
    if len(parents) != num_joints:
        raise ValueError(f"parents has {len(parents)} entries for {num_joints} joints")
    if any(p < -1 or p >= num_joints or p == j for j, p in enumerate(parents)):
        raise ValueError(f"parents must be -1 or another joint's index, got {list(parents)}")
    return parents


@dataclasses.dataclass
class RigidTransforms:
    """Forward-kinematics result (batch B, J joints).

    Attributes:
        posed_joints: (B, J, 3) posed joint positions, same frame and units as the rest joints.
        bone_transforms: (B, J, 4, 4) ``G_j``, mapping rest-pose points bound to joint j to posed points.
    """

    posed_joints: torch.Tensor
    bone_transforms: torch.Tensor


def batch_rigid_transform(rest_joints: torch.Tensor, rotations: torch.Tensor, parents) -> RigidTransforms:
    """Forward kinematics over a parent list, one batched product per tree level.

    Args:
        rest_joints: (B, J, 3) rest joint positions ``t_j``, metres.
        rotations: (B, J, 3, 3) local rotations ``R_j`` (world-aligned rest axes).
        parents: J parent indices, -1 for a root.
    Returns:
        :class:`RigidTransforms` with ``A_j`` translations and ``G_j = A_j [I | -t_j]``.
    """
    if rest_joints.ndim != 3 or rest_joints.shape[-1] != 3:
        raise ValueError(f"batch_rigid_transform: rest_joints must be (B, J, 3), got {tuple(rest_joints.shape)}")
    batch, count = rest_joints.shape[:2]
    if rotations.shape != (batch, count, 3, 3):
        raise ValueError(
            f"batch_rigid_transform: rotations must be ({batch}, {count}, 3, 3), got {tuple(rotations.shape)}"
        )
    parents = _check_parents(parents, count)
    parent_index = torch.tensor([max(p, 0) for p in parents], device=rest_joints.device)
    is_root = torch.tensor([p < 0 for p in parents], device=rest_joints.device)
    offsets = rest_joints - torch.where(is_root[None, :, None], 0.0, rest_joints[:, parent_index])
    local = rigid_matrix(rotations, offsets)  # (B, J, 4, 4)
    levels = _kinematic_levels(parents)
    accumulated = [None] * count
    for level in levels:
        index = torch.tensor(level, device=rest_joints.device)
        if level and parents[level[0]] < 0:
            chained = local[:, index]
        else:
            parent_stack = torch.stack([accumulated[parents[j]] for j in level], dim=1)
            chained = parent_stack @ local[:, index]
        for k, joint in enumerate(level):
            accumulated[joint] = chained[:, k]
    world = torch.stack(accumulated, dim=1)  # (B, J, 4, 4) A_j
    posed_joints = world[..., :3, 3]
    rotation = world[..., :3, :3]
    translation = posed_joints - (rotation @ rest_joints[..., None])[..., 0]
    return RigidTransforms(posed_joints=posed_joints, bone_transforms=rigid_matrix(rotation, translation))


def reference_rigid_transform(rest_joints: torch.Tensor, rotations: torch.Tensor, parents) -> RigidTransforms:
    """Slow oracle for :func:`batch_rigid_transform`: per-sample, per-joint loop in float64."""
    rest = rest_joints.detach().double().cpu()
    rots = rotations.detach().double().cpu()
    batch, count = rest.shape[:2]
    bones = torch.zeros(batch, count, 4, 4, dtype=torch.float64)
    joints = torch.zeros(batch, count, 3, dtype=torch.float64)
    for b in range(batch):
        world = {}

        def resolve(j):
            if j in world:
                return world[j]
            local = torch.eye(4, dtype=torch.float64)
            local[:3, :3] = rots[b, j]
            p = int(parents[j])
            local[:3, 3] = rest[b, j] - (rest[b, p] if p >= 0 else 0.0)
            world[j] = local if p < 0 else resolve(p) @ local
            return world[j]

        for j in range(count):
            a = resolve(j)
            joints[b, j] = a[:3, 3]
            unbind = torch.eye(4, dtype=torch.float64)
            unbind[:3, 3] = -rest[b, j]
            bones[b, j] = a @ unbind
    return RigidTransforms(posed_joints=joints, bone_transforms=bones)


def linear_blend_skinning(
    rest_vertices: torch.Tensor, weights: torch.Tensor, bone_transforms: torch.Tensor
) -> torch.Tensor:
    """Posed vertices (B, V, 3): ``x'_v = (sum_j w_vj G_j) [x_v; 1]``.

    Args:
        rest_vertices: (B, V, 3) or (1, V, 3) rest-pose vertices, metres.
        weights: (V, J) skinning weights (rows sum to one).
        bone_transforms: (B, J, 4, 4) bone transforms ``G_j``.

    The blend is one (V, J) x (J, 12 B) matrix product, cheaper than gathering per vertex.
    """
    if weights.ndim != 2:
        raise ValueError(f"linear_blend_skinning: weights must be (V, J), got {tuple(weights.shape)}")
    count_v, count_j = weights.shape
    if bone_transforms.ndim != 4 or bone_transforms.shape[1:] != (count_j, 4, 4):
        raise ValueError(
            f"linear_blend_skinning: bone_transforms must be (B, {count_j}, 4, 4), got {tuple(bone_transforms.shape)}"
        )
    batch = bone_transforms.shape[0]
    if rest_vertices.ndim != 3 or rest_vertices.shape[1:] != (count_v, 3) or rest_vertices.shape[0] not in (1, batch):
        raise ValueError(
            f"linear_blend_skinning: rest_vertices must be ({batch} or 1, {count_v}, 3), "
            f"got {tuple(rest_vertices.shape)}"
        )
    top = bone_transforms[:, :, :3, :].permute(1, 0, 2, 3).reshape(count_j, batch * 12)
    blended = (weights.to(top.dtype) @ top).reshape(count_v, batch, 3, 4).permute(1, 0, 2, 3)  # (B, V, 3, 4)
    return (blended[..., :3] * rest_vertices[..., None, :]).sum(-1) + blended[..., 3]


def reference_linear_blend_skinning(
    rest_vertices: torch.Tensor, weights: torch.Tensor, bone_transforms: torch.Tensor
) -> torch.Tensor:
    """Slow oracle for :func:`linear_blend_skinning`: per-vertex, per-bone loop in float64."""
    rest = rest_vertices.detach().double().cpu()
    w = weights.detach().double().cpu()
    bones = bone_transforms.detach().double().cpu()
    batch = bones.shape[0]
    rest = rest.expand(batch, -1, -1)
    out = torch.zeros(batch, rest.shape[1], 3, dtype=torch.float64)
    for b in range(batch):
        for v in range(rest.shape[1]):
            point = torch.cat([rest[b, v], torch.ones(1, dtype=torch.float64)])
            for j in range(w.shape[1]):
                if w[v, j] != 0:
                    out[b, v] += w[v, j] * (bones[b, j] @ point)[:3]
    return out


def global_transform(Rh: torch.Tensor, Th: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) body-to-world transforms ``[R(Rh) | Th]`` of Rh (B, 3) axis-angle radians, Th (B, 3) metres."""
    if Rh.ndim != 2 or Rh.shape[-1] != 3 or Th.shape != Rh.shape:
        raise ValueError(
            f"global_transform: Rh and Th must both be (B, 3), got {tuple(Rh.shape)} and {tuple(Th.shape)}"
        )
    return rigid_matrix(axis_angle_to_matrix(Rh), Th)


def apply_global(points: torch.Tensor, Rh: torch.Tensor, Th: torch.Tensor) -> torch.Tensor:
    """World points (B, N, 3): ``x_world = R(Rh) x_body + Th``.

    Args:
        points: (B, N, 3) body-frame points, metres.
        Rh: (B, 3) global rotation, axis-angle, radians.
        Th: (B, 3) global translation, metres.
    """
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"apply_global: points must be (B, N, 3), got {tuple(points.shape)}")
    if Rh.shape != (points.shape[0], 3) or Th.shape != (points.shape[0], 3):
        raise ValueError(
            f"apply_global: Rh and Th must be ({points.shape[0]}, 3), got {tuple(Rh.shape)} and {tuple(Th.shape)}"
        )
    rotation = axis_angle_to_matrix(Rh)
    return points @ rotation.transpose(-1, -2) + Th[:, None, :]
