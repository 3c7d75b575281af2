"""Rotations, one implementation each: axis-angle <-> matrix (exp and log maps) and look-at.

Conventions: right-handed frames; rotations as axis-angle vectors in radians (direction =
axis, norm = angle) or as (3, 3) matrices acting on column vectors; cameras in OpenCV axes
(x right, y down, z forward) with world-to-camera rotations ``x_cam = R x_world + T``.
The torch functions are batched over leading dimensions and differentiable (exact gradients
at zero angle); :func:`look_at_rotation` is NumPy (camera rigs are built in float64 NumPy).
"""

from __future__ import annotations

import numpy as np
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


def look_at_rotation(center, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(3, 3) float64 OpenCV world-to-camera rotation of a camera at ``center`` looking at ``target``.

    Rows are the camera's axes in world coordinates: ``right = forward x up`` (normalised),
    ``down = forward x right``, ``forward = (target - center) / |target - center|``, so the
    image's up is as close to ``up`` as the view allows.

    Args:
        center: (3,) camera position, world, metres.
        target: (3,) point the optical axis passes through, world, metres.
        up: (3,) world direction that should appear upwards in the image.

    Raises:
        ValueError: when the view direction is parallel to ``up`` (the roll is undefined).
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(center, dtype=np.float64)
    length = np.linalg.norm(forward)
    if length < 1e-12:
        raise ValueError("look_at_rotation: the camera sits on its target; move it away")
    forward = forward / length
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    norm = np.linalg.norm(right)
    if norm < 1e-8:
        raise ValueError("look_at_rotation: the view direction is parallel to up; move the camera off that axis")
    right = right / norm
    down = np.cross(forward, right)
    return np.stack([right, down, forward])
