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

from neuralbody.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, skew  # noqa: F401  (kinematics API)


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
