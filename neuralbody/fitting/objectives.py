"""Differentiable fitting objectives (pure functions over tensors).

Pixels are distorted image pixels (u right, v down) as in the capture's images; points are world
coordinates in metres; poses are the body model's axis-angle vectors in radians.

* :meth:`CameraTensors.project` - pinhole + OpenCV radial-tangential distortion (``k1 k2 p1 p2 k3``),
  differentiable: :func:`neuralbody.data.projection.project` over C cameras at once.
* :func:`robust_reprojection` - confidence-weighted Geman-McClure on the pixel error ``e``:
  ``rho(e) = sigma^2 e^2 / (sigma^2 + e^2)`` (quadratic below ``sigma``, saturating at ``sigma^2``).
* :func:`silhouette_loss` - a cheap two-sided chamfer in pixels between projected vertices and
  the mask: (a) vertices outside the mask pay the squared distance to it (a distance transform
  sampled bilinearly), (b) mask-boundary pixels pay the squared distance to the nearest projected
  vertex (the body must reach the mask's outline).
* :func:`pose_prior` - a *simple* prior, not a learned one: ``sum_j w_j |theta_j|^2`` (per-bone
  weights) plus ``sum_j relu(|theta_j| - limit_j)^2`` (a soft cap on each bone's rotation angle)
  plus ``sum_knees relu(-flex)^2`` (knees do not bend forwards).
* :func:`shape_prior` - ``|s - s_mean|^2`` plus a quadratic wall outside ``[low, high]``.
* :func:`temporal_loss` - ``|x_t - x_{t-1}|^2`` towards the previous frame's fit.
* :func:`acceleration_loss` - ``mean_n |p_{t+1} - 2 p_t + p_{t-1}|^2 / scale^2`` over a sequence of
  points (smooth motion), for the whole-sequence refinement.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data import projection
from neuralbody.data.cameras import Camera


@dataclasses.dataclass
class CameraTensors:
    """C cameras as tensors: K (C, 3, 3) pixels, R (C, 3, 3) world-to-camera, T (C, 3) metres, D (C, 5)."""

    K: torch.Tensor
    R: torch.Tensor
    T: torch.Tensor
    D: torch.Tensor
    sizes: list[tuple[int, int]]

    @classmethod
    def from_cameras(cls, cameras: list[Camera], *, device=None, dtype=torch.float32) -> "CameraTensors":
        def stack(name):
            return torch.as_tensor(np.stack([getattr(c, name) for c in cameras]), dtype=dtype, device=device)

        return cls(stack("K"), stack("R"), stack("T"), stack("D"), [(c.width, c.height) for c in cameras])

    def select(self, views: list[int]) -> "CameraTensors":
        return CameraTensors(self.K[views], self.R[views], self.T[views], self.D[views], [self.sizes[v] for v in views])

    def project(self, points_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project points into every camera (:func:`neuralbody.data.projection.project`), differentiable.

        Args:
            points_world: (B, N, 3) metres.
        Returns:
            uv: (B, C, N, 2) distorted pixels; depth: (B, C, N) camera z, metres.
        """
        if points_world.ndim != 3 or points_world.shape[-1] != 3:
            raise ValueError(f"project: points_world must be (B, N, 3), got {tuple(points_world.shape)}")
        return projection.project(points_world[:, None], self.K, self.R, self.T, self.D)


def geman_mcclure(squared_error: torch.Tensor, sigma: float) -> torch.Tensor:
    """``sigma^2 e^2 / (sigma^2 + e^2)`` of squared errors ``e^2`` (any shape)."""
    return sigma**2 * squared_error / (sigma**2 + squared_error)


def robust_reprojection(
    uv: torch.Tensor, keypoints2d: torch.Tensor, *, sigma_px: float = 20.0
) -> torch.Tensor:
    """(B,) confidence-weighted mean Geman-McClure reprojection error, pixels^2.

    Args:
        uv: (B, C, K, 2) projected model keypoints, pixels.
        keypoints2d: (B, C, K, 3) observed ``(u, v, confidence)``; confidence 0 ignores an entry.
    """
    if uv.shape[:-1] != keypoints2d.shape[:-1] or keypoints2d.shape[-1] != 3:
        raise ValueError(
            f"robust_reprojection: uv (B, C, K, 2) and keypoints2d (B, C, K, 3) expected, "
            f"got {tuple(uv.shape)} and {tuple(keypoints2d.shape)}"
        )
    confidence = keypoints2d[..., 2]
    squared = ((uv - keypoints2d[..., :2]) ** 2).sum(-1)
    total = (confidence * geman_mcclure(squared, sigma_px)).flatten(1).sum(1)
    return total / confidence.flatten(1).sum(1).clamp_min(1e-6)


@dataclasses.dataclass
class SilhouetteTarget:
    """Per-view mask data for :func:`silhouette_loss` (C views, one frame).

    Attributes:
        outside_distance: (C, H, W) distance in pixels to the nearest mask pixel (0 inside).
        boundary_uv: (C, M, 2) pixels on the mask outline (padded by repetition).
        boundary_weight: (C, M) 1 for real outline samples, 0 for padding / empty masks.
    """

    outside_distance: torch.Tensor
    boundary_uv: torch.Tensor
    boundary_weight: torch.Tensor

    @classmethod
    def from_masks(cls, masks: list[np.ndarray], *, max_boundary: int = 256, device=None, seed: int = 0):
        """Build from C boolean (H_c, W_c) masks (smaller ones padded to the largest); an empty mask contributes nothing."""
        from scipy import ndimage

        rng = np.random.default_rng(seed)
        distances, boundaries, weights = [], [], []
        for mask in masks:
            mask = np.asarray(mask, dtype=bool)
            if mask.any():
                distances.append(ndimage.distance_transform_edt(~mask))
                outline = mask & ~ndimage.binary_erosion(mask)
                rows, cols = np.nonzero(outline)
                pick = rng.choice(len(rows), size=max_boundary, replace=len(rows) < max_boundary)
                boundaries.append(np.stack([cols[pick], rows[pick]], axis=1).astype(np.float64))
                weights.append(np.ones(max_boundary))
            else:
                distances.append(np.zeros(mask.shape))
                boundaries.append(np.zeros((max_boundary, 2)))
                weights.append(np.zeros(max_boundary))
        # cameras of slightly different sizes (e.g. 270 and 272 wide): pad right/bottom with the edge
        # distance, so pixel (u, v) stays at column u, row v of every view's map
        height = max(d.shape[0] for d in distances)
        width = max(d.shape[1] for d in distances)
        distances = [np.pad(d, ((0, height - d.shape[0]), (0, width - d.shape[1])), mode="edge") for d in distances]
        as_tensor = lambda a: torch.as_tensor(np.stack(a), dtype=torch.float32, device=device)  # noqa: E731
        return cls(as_tensor(distances), as_tensor(boundaries), as_tensor(weights))


def silhouette_loss(uv: torch.Tensor, target: SilhouetteTarget, *, sigma_px: float = 10.0) -> torch.Tensor:
    """(B,) two-sided silhouette chamfer in pixels^2 (Geman-McClure robustified, scale ``sigma_px``).

    The nearest vertex of each outline pixel is found without gradient (a (B, C, M, N) table);
    only the M chosen distances are differentiated (the same gradient as ``min`` over ``cdist``).

    Args:
        uv: (B, C, N, 2) projected vertices (a subsample is enough), pixels.
        target: the C views' masks.
    """
    batch, views, count, _ = uv.shape
    if target.outside_distance.shape[0] != views:
        raise ValueError(f"silhouette_loss: uv has {views} views, target {target.outside_distance.shape[0]}")
    height, width = target.outside_distance.shape[1:]
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=uv.dtype, device=uv.device)
    grid = (uv + 0.5) * scale - 1.0  # pixel centres at integer coordinates, align_corners=False
    maps = target.outside_distance.to(uv)[:, None]  # (C, 1, H, W)
    sampled = torch.nn.functional.grid_sample(
        maps, grid.transpose(0, 1), mode="bilinear", padding_mode="border", align_corners=False
    )  # (C, 1, B, N)
    outside = geman_mcclure(sampled[:, 0].transpose(0, 1) ** 2, sigma_px)  # (B, C, N)
    used = (target.boundary_weight.sum(1) > 0).to(uv)  # (C,)
    vertex_term = (outside.mean(2) * used).sum(1)
    boundary = target.boundary_uv.to(uv)[None].expand(batch, -1, -1, -1)  # (B, C, M, 2)
    with torch.no_grad():  # which vertex is nearest: no gradient through the (B, C, M, N) distance table
        index = torch.cdist(boundary, uv.detach()).argmin(-1)  # (B, C, M)
    nearest_uv = torch.gather(uv, 2, index[..., None].expand(-1, -1, -1, 2))  # (B, C, M, 2)
    nearest_squared = ((boundary - nearest_uv) ** 2).sum(-1)  # (B, C, M), same gradient as min over cdist
    weight = target.boundary_weight.to(uv)
    boundary_term = (geman_mcclure(nearest_squared, sigma_px) * weight).sum(2) / weight.sum(1).clamp_min(1.0)
    return (vertex_term + boundary_term.sum(1)) / used.sum().clamp_min(1.0)


def pose_prior(
    poses: torch.Tensor, *, weights: torch.Tensor, limits: torch.Tensor, knee_ids: list[int] | None = None
) -> torch.Tensor:
    """(B,) simple pose prior on (B, J, 3) axis-angle ``poses`` (radians).

    ``sum_j weights_j |theta_j|^2 + sum_j relu(|theta_j| - limits_j)^2 + sum_knee relu(-theta_knee,x)^2``;
    ``weights``, ``limits``: (J,). The knee term assumes world-aligned rest axes with the leg
    hanging down and the person facing -y (Anny): flexing the knee is a positive rotation about x.
    """
    if poses.ndim != 3 or poses.shape[1:] != (weights.shape[0], 3):
        raise ValueError(f"pose_prior: poses must be (B, {weights.shape[0]}, 3), got {tuple(poses.shape)}")
    angle = poses.norm(dim=-1)
    energy = (weights * angle**2).sum(1) + (torch.relu(angle - limits) ** 2).sum(1)
    if knee_ids:
        energy = energy + (torch.relu(-poses[:, knee_ids, 0]) ** 2).sum(1)
    return energy


def shape_prior(shapes: torch.Tensor, *, mean: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """(B,) ``|s - mean|^2 + 100 (|relu(low - s)|^2 + |relu(s - high)|^2)`` for (B, S) shapes (infinite bounds: none)."""
    walls = torch.relu(low - shapes) ** 2 + torch.relu(shapes - high) ** 2
    return ((shapes - mean) ** 2).sum(1) + 100.0 * walls.sum(1)


def temporal_loss(current: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """(B,) ``|current - previous|^2`` over the trailing dims ((B, ...) tensors); zeros without a previous fit."""
    if previous is None:
        return torch.zeros(current.shape[0], dtype=current.dtype, device=current.device)
    return ((current - previous) ** 2).flatten(1).sum(1)


def acceleration_loss(points: torch.Tensor, *, scale_m: float, consecutive: torch.Tensor | None = None) -> torch.Tensor:
    """(T - 2,) squared second differences of a point sequence, ``mean_n |p_{t+1} - 2 p_t + p_{t-1}|^2 / scale_m^2``.

    Args:
        points: (T, N, 3) metres, T >= 3 frames in time order.
        scale_m: acceleration (metres per frame^2) that costs 1; about the true motion's.
        consecutive: (T - 2,) bool, False for triplets that straddle a gap (skipped frames):
            they cost nothing. None: all consecutive.
    """
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] < 3:
        raise ValueError(f"acceleration_loss: points must be (T >= 3, N, 3), got {tuple(points.shape)}")
    if scale_m <= 0:
        raise ValueError(f"acceleration_loss: scale_m must be positive, got {scale_m}")
    second = points[2:] - 2 * points[1:-1] + points[:-2]
    energy = (second**2).sum(-1).mean(-1) / scale_m**2
    if consecutive is not None:
        energy = energy * consecutive.to(energy)
    return energy
