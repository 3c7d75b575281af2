"""IMAvatar's forward deformation of canonical points, with its Jacobian in closed form.

A canonical point ``x`` (metres, the face model's rest frame) carries learned fields, stored
as one grid of C = 3 A + 3 P + B channels (A = 52 expression coefficients, P = 27 pose
features, B = 4 bones) interpolated trilinearly:

    E(x) (3, A) expression blend shapes,  Pc(x) (3, P) pose correctives,  l(x) (B,) skinning logits

and a frame with expression psi (A,), pose feature theta (P,) and bone transforms G_b moves it to

    x~ = x + E(x) psi + Pc(x) theta,      w = softmax(l(x)),      d(x) = sum_b w_b G_b [x~; 1].

The pose feature is ``theta = vec(R_j - I)`` of the local rotations of the neck, head and jaw
(FLAME's pose feature). The Jacobian ``J = dd/dx`` (3, 3)::

    J = sum_b w_b R_b (I + dE/dx psi + dPc/dx theta) + sum_b (G_b [x~; 1]) (dw_b/dx)^T,
    dw_b/dx = w_b (dl_b/dx - sum_c w_c dl_c/dx),

with the grid slopes from :func:`neuralbody.skinning.trilinear.trilinear` (``with_gradient``)
divided by the spacing. The frame's ``E psi + Pc theta`` is contracted on the grid once per
frame (:func:`frame_grid`), so :func:`deform` looks up 3 + B channels. :func:`deform_reference` is the slow oracle (per point, float64, the
same formula by loops and ``F.grid_sample``), and autograd checks the Jacobian in the tests.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.head.grid_box import GridBox
from neuralbody.head.rig import BONES, NUM_ACTIONS
from neuralbody.skinning.trilinear import trilinear, trilinear_reference

NUM_POSE_FEATURES = 9 * (len(BONES) - 1)


def channel_count(actions: int = NUM_ACTIONS, pose_features: int = NUM_POSE_FEATURES, bones: int = len(BONES)) -> int:
    """C of the deformation grid: 3 A + 3 P + B."""
    return 3 * actions + 3 * pose_features + bones


def pose_feature(pose: torch.Tensor) -> torch.Tensor:
    """(..., 27) ``vec(R_j - I)`` of the non-base bones of poses (..., 4, 3) axis-angle, radians."""
    if pose.shape[-2:] != (len(BONES), 3):
        raise ValueError(f"pose_feature: pose must be (..., {len(BONES)}, 3), got {tuple(pose.shape)}")
    rotations = axis_angle_to_matrix(pose[..., 1:, :].reshape(-1, 3))
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
    return (rotations - eye).reshape(*pose.shape[:-2], NUM_POSE_FEATURES)


@dataclasses.dataclass
class FrameCode:
    """What a frame tells the deformation.

    Attributes:
        expression: (A,) psi.
        pose_feature: (P,) theta.
        transforms: (B, 4, 4) bone transforms, canonical to world.
    """

    expression: torch.Tensor
    pose_feature: torch.Tensor
    transforms: torch.Tensor


def _split(values: torch.Tensor, actions: int, features: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """E (N, 3, A), Pc (N, 3, P), logits (N, B) of grid values (N, C) (leading dims kept)."""
    lead = values.shape[:-1]
    e = values[..., : 3 * actions].reshape(*lead, 3, actions)
    p = values[..., 3 * actions : 3 * (actions + features)].reshape(*lead, 3, features)
    return e, p, values[..., 3 * (actions + features) :]


def frame_grid(grid: torch.Tensor, code: FrameCode) -> torch.Tensor:
    """(X, Y, Z, 3 + B) the frame's offset ``E psi + Pc theta`` and skinning logits at every node.

    Trilinear interpolation is linear in the node values, so contracting the grid with the
    frame's psi and theta once (Fast-SNARF's per-frame precomputation) leaves the root finding
    a 7-channel lookup instead of a 241-channel one. Differentiable in ``grid``.
    """
    actions, features = code.expression.shape[0], code.pose_feature.shape[0]
    if grid.shape[-1] != channel_count(actions, features, code.transforms.shape[0]):
        raise ValueError(f"frame_grid: grid has {grid.shape[-1]} channels, the frame needs "
                         f"{channel_count(actions, features, code.transforms.shape[0])}")
    e, p, logits = _split(grid, actions, features)
    offset = e @ code.expression.to(grid) + p @ code.pose_feature.to(grid)
    return torch.cat([offset, logits], dim=-1)


def deform(points: torch.Tensor, frame_values: torch.Tensor, box: GridBox, transforms: torch.Tensor,
           *, with_jacobian: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``d(x)`` (N, 3) of canonical points (N, 3), metres, and J (N, 3, 3) if asked (module docstring).

    Args:
        points: (N, 3) canonical points, metres.
        frame_values: (X, Y, Z, 3 + B) the frame's offsets and logits (:func:`frame_grid`).
        box: the grid's lattice.
        transforms: (B, 4, 4) bone transforms, canonical to world.
        with_jacobian: also return ``dd/dx``.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"deform: points must be (N, 3), got {tuple(points.shape)}")
    if frame_values.shape[-1] != 3 + transforms.shape[0]:
        raise ValueError(f"deform: frame_values need 3 + {transforms.shape[0]} channels, got {frame_values.shape[-1]}")
    sample = trilinear(frame_values, box.coords(points), with_gradient=with_jacobian)
    moved = points + sample.values[:, :3]
    logits = sample.values[:, 3:]
    w = torch.exp(logits - logits.max(dim=1, keepdim=True).values)  # softmax, cheaper on (N, 4) by hand
    w = w / w.sum(dim=1, keepdim=True)  # (N, B)
    blended = (w @ transforms[:, :3, :].reshape(-1, 12).to(points)).reshape(-1, 3, 4)  # sum_b w_b G_b
    deformed = (blended[:, :, :3] @ moved[:, :, None])[:, :, 0] + blended[:, :, 3]
    if not with_jacobian:
        return deformed, None
    rotation, translation = transforms[:, :3, :3].to(points), transforms[:, :3, 3].to(points)
    per_bone = torch.einsum("bij,nj->nbi", rotation, moved) + translation  # (N, B, 3)
    slope = sample.gradient / box.spacing  # (N, 3 + B, 3) per metre
    d_moved = torch.eye(3, dtype=points.dtype, device=points.device) + slope[:, :3]
    dl = slope[:, 3:]  # (N, B, 3)
    dw = w[:, :, None] * (dl - (w[:, :, None] * dl).sum(dim=1, keepdim=True))  # (N, B, 3)
    jacobian = blended[:, :, :3] @ d_moved + torch.einsum("nbi,nbk->nik", per_bone, dw)
    return deformed, jacobian


def deform_reference(points: torch.Tensor, grid: torch.Tensor, box: GridBox, code: FrameCode) -> torch.Tensor:
    """Slow oracle for :func:`deform`: per point, float64 loops, values by ``F.grid_sample``."""
    values = trilinear_reference(grid, box.coords(points.double()))
    actions, features = code.expression.shape[0], code.pose_feature.shape[0]
    out = torch.zeros(points.shape[0], 3, dtype=torch.float64)
    for n in range(points.shape[0]):
        e, p, logits = _split(values[n], actions, features)
        moved = points[n].double().clone()
        for a in range(actions):
            moved = moved + e[:, a] * float(code.expression[a])
        for f in range(features):
            moved = moved + p[:, f] * float(code.pose_feature[f])
        w = torch.exp(logits - logits.max())
        w = w / w.sum()
        for b in range(code.transforms.shape[0]):
            g = code.transforms[b].double()
            out[n] += w[b] * (g[:3, :3] @ moved + g[:3, 3])
    return out
