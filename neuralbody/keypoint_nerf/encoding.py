"""Spatial encodings of 3D query points in each input view: KeypointNeRF's relative keypoint
encoding, and the global (pixelNeRF-style) coordinate encoding it is compared with.

Positional encoding of a value ``d`` with F frequencies (NeRF's, with the value itself)::

    gamma(d) = [d, sin(2^0 pi d), cos(2^0 pi d), ..., sin(2^(F-1) pi d), cos(2^(F-1) pi d)]     (2F + 1 values)

**Relative** (KeypointNeRF): for a point ``x``, keypoints ``p_k`` (world, metres) and an input camera
with world-to-camera rotation ``R`` (``x_cam = R x + T``, OpenCV axes, z forward), the depth of the
point relative to keypoint k in that camera and its weight::

    d_k = z(x) - z(p_k) = r_3 . (x - p_k)                 r_3: R's third row; metres
    w_k = exp(-|x - p_k|^2 / (2 sigma^2))                 sigma: metres (0.1 in the paper)
    e_v(x) = concat_k  w_k gamma(d_k)                     K (2F + 1) values

It says where the point is along each view's ray relative to the body's joints, and fades the
keypoints that are far away, so it does not depend on where the person stands in the world.

**Global** (pixelNeRF): the point's coordinates in the camera's frame, each encoded::

    e_v(x) = concat_c gamma((R x + T)_c)                  3 (2F + 1) values
"""

from __future__ import annotations

import math

import torch


def positional_encoding(values: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(..., C) -> (..., C (2F + 1)): per channel ``[d, sin(2^f pi d), cos(2^f pi d) for f < F]`` (module docstring)."""
    if frequencies < 0:
        raise ValueError(f"positional_encoding: frequencies must be >= 0, got {frequencies}")
    scales = math.pi * 2.0 ** torch.arange(frequencies, dtype=values.dtype, device=values.device)
    angles = values[..., None] * scales  # (..., C, F)
    parts = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)  # (..., C, 2F)
    return torch.cat([values[..., None], parts], dim=-1).flatten(-2)


def _check(points: torch.Tensor, R: torch.Tensor) -> None:
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"spatial encoding: points must be (B, N, 3), got {tuple(points.shape)}")
    if R.ndim != 4 or R.shape[-2:] != (3, 3) or R.shape[0] != points.shape[0]:
        raise ValueError(f"spatial encoding: R must be (B, V, 3, 3) with B = {points.shape[0]}, got {tuple(R.shape)}")


def relative_keypoint_encoding(
    points: torch.Tensor, keypoints: torch.Tensor, R: torch.Tensor, *, frequencies: int, sigma: float
) -> torch.Tensor:
    """KeypointNeRF's encoding (module docstring).

    Args:
        points: (B, N, 3) query points, world, metres.
        keypoints: (B, K, 3) keypoints, world, metres.
        R: (B, V, 3, 3) world-to-camera rotations of the input views.
        frequencies: F.
        sigma: the distance weighting's width, metres.

    Returns:
        (B, V, N, K (2F + 1)).
    """
    _check(points, R)
    if keypoints.ndim != 3 or keypoints.shape[0] != points.shape[0] or keypoints.shape[-1] != 3:
        raise ValueError(f"relative_keypoint_encoding: keypoints must be (B, K, 3), got {tuple(keypoints.shape)}")
    if sigma <= 0:
        raise ValueError(f"relative_keypoint_encoding: sigma must be positive, got {sigma}")
    offsets = points[:, :, None, :] - keypoints[:, None, :, :]  # (B, N, K, 3)
    weights = torch.exp(-offsets.square().sum(-1) / (2.0 * sigma**2))  # (B, N, K)
    depths = torch.einsum("bvc,bnkc->bvnk", R[:, :, 2, :], offsets)  # (B, V, N, K)
    encoded = positional_encoding(depths[..., None], frequencies)  # (B, V, N, K, 2F + 1)
    return (weights[:, None, :, :, None] * encoded).flatten(-2)


def relative_keypoint_encoding_reference(
    points: torch.Tensor, keypoints: torch.Tensor, R: torch.Tensor, *, frequencies: int, sigma: float
) -> torch.Tensor:
    """Slow loops computing what :func:`relative_keypoint_encoding` does (the tests' oracle)."""
    batch, count = points.shape[:2]
    views, num_keypoints = R.shape[1], keypoints.shape[1]
    out = torch.zeros(batch, views, count, num_keypoints * (2 * frequencies + 1), dtype=points.dtype)
    for b in range(batch):
        for v in range(views):
            for n in range(count):
                row = []
                for k in range(num_keypoints):
                    depth = float(R[b, v, 2] @ points[b, n]) - float(R[b, v, 2] @ keypoints[b, k])
                    weight = math.exp(-float((points[b, n] - keypoints[b, k]).square().sum()) / (2 * sigma**2))
                    code = [depth]
                    for f in range(frequencies):
                        code += [math.sin(2**f * math.pi * depth), math.cos(2**f * math.pi * depth)]
                    row += [weight * c for c in code]
                out[b, v, n] = torch.tensor(row, dtype=points.dtype)
    return out


def global_encoding(points: torch.Tensor, R: torch.Tensor, T: torch.Tensor, *, frequencies: int) -> torch.Tensor:
    """pixelNeRF's encoding (module docstring): points (B, N, 3) world metres, R (B, V, 3, 3), T (B, V, 3)
    world-to-camera -> (B, V, N, 3 (2F + 1))."""
    _check(points, R)
    if T.shape != R.shape[:-1]:
        raise ValueError(f"global_encoding: T must be (B, V, 3), got {tuple(T.shape)}")
    camera = torch.einsum("bvij,bnj->bvni", R, points) + T[:, :, None, :]
    return positional_encoding(camera, frequencies)


def encoding_size(kind: str, *, num_keypoints: int, frequencies: int) -> int:
    """Values per view and point of the ``"relative"`` or ``"global"`` encoding."""
    if kind == "relative":
        return num_keypoints * (2 * frequencies + 1)
    if kind == "global":
        return 3 * (2 * frequencies + 1)
    raise ValueError(f"unknown spatial encoding {kind!r}; choose relative or global")
