"""Multi-view triangulation of 2D keypoints: confidence-weighted DLT with robust reweighting.

Each keypoint seen at pixel ``u_c`` (distorted, as detected) in view ``c`` is first undistorted
and normalised, ``x_c = K_c^-1 undistort(u_c)``, so the camera is ``P_c = [R_c | T_c]``
(world-to-camera, metres, OpenCV axes). The direct linear transform stacks, per view,

    w_c (x_c P_c^3 - P_c^1) X = 0,     w_c (y_c P_c^3 - P_c^2) X = 0

(``P^i`` the i-th row, ``X`` homogeneous) and takes ``X`` as the right singular vector of the
smallest singular value. Weights start at the detection confidences; robust reweighting
(iteratively reweighted least squares, no RANSAC) then multiplies them by the Geman-McClure
weight of each view's reprojection error ``r_c`` in pixels,

    w_c = conf_c * (sigma^2 / (sigma^2 + r_c^2))^2,

so a view that disagrees by much more than ``sigma`` pixels (a swapped left/right, a wrong
person) fades out instead of dragging the point. A keypoint needs two views with positive
confidence (otherwise it is NaN and ``valid`` is False).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralbody.data.cameras import Camera, project_points, undistort_points


@dataclasses.dataclass
class Triangulation:
    """Triangulated keypoints.

    Attributes:
        points: (K, 3) world coordinates, metres (NaN where not valid).
        valid: (K,) bool, seen with positive confidence in at least two views.
        residual_px: (C, K) reprojection error in pixels per view (NaN where not observed).
        weights: (C, K) final per-view weights (confidence x robust weight).
    """

    points: np.ndarray
    valid: np.ndarray
    residual_px: np.ndarray
    weights: np.ndarray

    def mean_residual_px(self) -> float:
        """Confidence-weighted mean reprojection error over observed views of valid keypoints, pixels."""
        observed = np.isfinite(self.residual_px) & self.valid[None] & (self.weights > 0)
        return float(self.residual_px[observed].mean()) if observed.any() else float("nan")


def check_keypoints2d(keypoints2d: np.ndarray, num_views: int) -> np.ndarray:
    """Validate (C, K, 3) ``(u, v, confidence)`` and return a float64 copy with unusable entries at confidence 0.

    Non-finite entries and points at exactly (0, 0) (the "not detected" convention of most detectors)
    get confidence 0; negative confidences are clipped to 0.
    """
    keypoints2d = np.asarray(keypoints2d, dtype=np.float64)
    if keypoints2d.ndim != 3 or keypoints2d.shape[0] != num_views or keypoints2d.shape[2] != 3:
        raise ValueError(
            f"keypoints2d must have shape ({num_views}, K, 3) = (views, keypoints, (u, v, conf)), got {keypoints2d.shape}"
        )
    out = keypoints2d.copy()
    bad = ~np.all(np.isfinite(out), axis=2) | np.all(out[..., :2] == 0, axis=2)
    out[bad] = 0.0
    out[..., 2] = np.clip(out[..., 2], 0.0, None)
    return out


def _normalised(cameras: list[Camera], keypoints2d: np.ndarray) -> np.ndarray:
    """(C, K, 2) normalised, undistorted image coordinates ``K^-1 undistort(u)``."""
    out = np.empty(keypoints2d.shape[:2] + (2,))
    for c, camera in enumerate(cameras):
        uv = undistort_points(camera, keypoints2d[c, :, :2])
        homogeneous = np.concatenate([uv, np.ones((len(uv), 1))], axis=1)
        out[c] = (homogeneous @ np.linalg.inv(camera.K).T)[:, :2]
    return out


def _camera_matrices(cameras: list[Camera]) -> np.ndarray:
    """(C, 3, 4) normalised camera matrices ``[R | T]``."""
    return np.stack([np.concatenate([c.R, c.T[:, None]], axis=1) for c in cameras])


def dlt(matrices: np.ndarray, xy: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted DLT, batched over keypoints.

    Args:
        matrices: (C, 3, 4) camera matrices mapping homogeneous world points to ``xy``.
        xy: (C, K, 2) image coordinates in the frame of ``matrices``.
        weights: (C, K) non-negative weights (0 drops the view).
    Returns:
        (K, 3) points (NaN where fewer than two views have positive weight).
    """
    rows_x = xy[..., 0:1] * matrices[:, None, 2] - matrices[:, None, 0]  # (C, K, 4)
    rows_y = xy[..., 1:2] * matrices[:, None, 2] - matrices[:, None, 1]
    system = np.concatenate([rows_x * weights[..., None], rows_y * weights[..., None]], axis=0)  # (2C, K, 4)
    system = system.transpose(1, 0, 2)  # (K, 2C, 4)
    _, _, vh = np.linalg.svd(system)
    homogeneous = vh[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        points = homogeneous[:, :3] / homogeneous[:, 3:4]
    points[(weights > 0).sum(0) < 2] = np.nan
    return points


def reference_dlt(matrices: np.ndarray, xy: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Slow, obvious per-keypoint loop of :func:`dlt` (the test oracle)."""
    points = np.full((xy.shape[1], 3), np.nan)
    for k in range(xy.shape[1]):
        rows = []
        for c in range(len(matrices)):
            if weights[c, k] <= 0:
                continue
            P, (x, y), w = matrices[c], xy[c, k], weights[c, k]
            rows.append(w * (x * P[2] - P[0]))
            rows.append(w * (y * P[2] - P[1]))
        if len(rows) < 4:
            continue
        _, _, vh = np.linalg.svd(np.array(rows))
        points[k] = vh[-1, :3] / vh[-1, 3]
    return points


def reprojection_residuals(cameras: list[Camera], points: np.ndarray, keypoints2d: np.ndarray) -> np.ndarray:
    """(C, K) pixel distance between projected ``points`` (K, 3) and ``keypoints2d`` (C, K, 3); NaN if unobserved."""
    residual = np.full(keypoints2d.shape[:2], np.nan)
    finite = np.all(np.isfinite(points), axis=1)
    for c, camera in enumerate(cameras):
        uv, depth = project_points(camera, np.where(finite[:, None], points, 0.0))
        error = np.linalg.norm(uv - keypoints2d[c, :, :2], axis=1)
        observed = finite & (keypoints2d[c, :, 2] > 0) & (depth > 0)
        residual[c, observed] = error[observed]
    return residual


def triangulate(
    cameras: list[Camera], keypoints2d: np.ndarray, *, sigma_px: float = 10.0, iterations: int = 3
) -> Triangulation:
    """Triangulate (C, K, 3) keypoints ``(u, v, confidence)`` (distorted pixels) seen by ``cameras``.

    Args:
        cameras: the C cameras.
        keypoints2d: (C, K, 3) detections; see :func:`check_keypoints2d` for what counts as missing.
        sigma_px: Geman-McClure scale of the robust reweighting, pixels.
        iterations: reweighting rounds after the first, confidence-weighted solve (0: plain DLT).
    """
    keypoints2d = check_keypoints2d(keypoints2d, len(cameras))
    xy = _normalised(cameras, keypoints2d)
    matrices = _camera_matrices(cameras)
    confidence = keypoints2d[..., 2]
    weights = confidence.copy()
    points = dlt(matrices, xy, weights)
    for _ in range(iterations):
        residual = reprojection_residuals(cameras, points, keypoints2d)
        robust = (sigma_px**2 / (sigma_px**2 + np.nan_to_num(residual, nan=0.0) ** 2)) ** 2
        weights = confidence * robust
        points = dlt(matrices, xy, weights)
    valid = np.all(np.isfinite(points), axis=1)
    return Triangulation(points, valid, reprojection_residuals(cameras, points, keypoints2d), weights)
