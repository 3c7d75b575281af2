"""The camera projection, once: world points -> distorted pixels, in torch, differentiable.

Conventions (those of :mod:`neuralbody.data.cameras`): world-to-camera extrinsics
``x_cam = R x_world + T`` (metres, OpenCV axes: x right, y down, z forward); normalised
coordinates ``(x, y) = (X / Z, Y / Z)``; OpenCV's radial-tangential distortion with
``D = (k1, k2, p1, p2, k3)``::

    r^2 = x^2 + y^2,   rad = 1 + k1 r^2 + k2 r^4 + k3 r^6
    x_d = x rad + 2 p1 x y + p2 (r^2 + 2 x^2)
    y_d = y rad + p1 (r^2 + 2 y^2) + 2 p2 x y

and pixels ``u = fx x_d + s y_d + cx``, ``v = fy y_d + cy`` (``K`` upper triangular, the centre
of the top-left pixel at ``(0, 0)``). Every function broadcasts the cameras' leading dimensions
against the points' (e.g. points (B, 1, N, 3) with cameras (C, ...) give (B, C, N, ...)), works
in the inputs' dtype and device, and is differentiable in points and camera parameters alike.
:func:`neuralbody.data.cameras.project_points` is this in float64 for one NumPy camera.
"""

from __future__ import annotations

import torch

MIN_DEPTH = 1e-6  # metres: |z| below this divides by MIN_DEPTH instead (finite values and gradients)


def distort(xy: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """OpenCV's radial-tangential distortion of normalised coordinates.

    Args:
        xy: (..., N, 2) undistorted normalised coordinates.
        D: (..., 5) ``k1, k2, p1, p2, k3`` (leading dimensions broadcast with xy's before N).

    Returns:
        (..., N, 2) distorted normalised coordinates.
    """
    if xy.shape[-1] != 2 or D.shape[-1] != 5:
        raise ValueError(f"distort: expected xy (..., N, 2) and D (..., 5), got {tuple(xy.shape)} and {tuple(D.shape)}")
    k1, k2, p1, p2, k3 = (D[..., i, None] for i in range(5))
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1)


def normalized_to_pixels(xy: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels ``(u, v) = (fx x + s y + cx, fy y + cy)`` of normalised coordinates.

    Args:
        xy: (..., N, 2) normalised coordinates.
        K: (..., 3, 3) upper-triangular intrinsics, pixels (leading dimensions broadcast).

    Returns:
        (..., N, 2) pixels.
    """
    if xy.shape[-1] != 2 or K.shape[-2:] != (3, 3):
        raise ValueError(
            f"normalized_to_pixels: expected xy (..., N, 2) and K (..., 3, 3), got {tuple(xy.shape)} and {tuple(K.shape)}"
        )
    x, y = xy[..., 0], xy[..., 1]
    u = K[..., 0, 0, None] * x + K[..., 0, 1, None] * y + K[..., 0, 2, None]
    v = K[..., 1, 1, None] * y + K[..., 1, 2, None]
    return torch.stack([u, v], dim=-1)


def project(
    points_world: torch.Tensor, K: torch.Tensor, R: torch.Tensor, T: torch.Tensor, D: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points to distorted pixels.

    Args:
        points_world: (..., N, 3) world coordinates, metres.
        K: (..., 3, 3) intrinsics, pixels.
        R: (..., 3, 3) world-to-camera rotations.
        T: (..., 3) world-to-camera translations, metres.
        D: (..., 5) OpenCV distortion ``k1, k2, p1, p2, k3`` (zeros: none).

    Returns:
        uv: (..., N, 2) pixels (u right, v down), the leading dimensions broadcast.
        depth: (..., N) camera z, metres (<= 0: behind the camera, where uv means nothing;
        within :data:`MIN_DEPTH` of 0 uv is computed at depth MIN_DEPTH).
    """
    if points_world.shape[-1] != 3 or R.shape[-2:] != (3, 3) or T.shape[-1] != 3:
        raise ValueError(
            f"project: expected points_world (..., N, 3), R (..., 3, 3), T (..., 3), got {tuple(points_world.shape)}, "
            f"{tuple(R.shape)}, {tuple(T.shape)}"
        )
    points_cam = points_world @ R.transpose(-1, -2) + T[..., None, :]
    depth = points_cam[..., 2]
    safe = torch.where(depth.abs() < MIN_DEPTH, torch.full_like(depth, MIN_DEPTH), depth)
    xy = points_cam[..., :2] / safe[..., None]
    return normalized_to_pixels(distort(xy, D), K), depth
