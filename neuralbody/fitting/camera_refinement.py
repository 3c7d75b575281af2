"""Refining the cameras' extrinsics from the person's detected keypoints (bundle adjustment).

A calibration a few pixels off between cameras makes the views disagree about where the body
is: the body fit splits the difference and a radiance field trained on some cameras is seen
shifted from another. (On the Pose2Sim demo at 270 x 480, the keypoints triangulated from three
cameras project into the fourth with a mean *signed* error of 2-4 px, about 1.5-3 cm at the
body, in every camera; shifting the body 1.5 cm raised the held-out PSNR by 1.0-1.4 dB. After
refinement: 0.1-0.8 px, and the held-out PSNR of cam02 rose from 20.7 to 21.7 dB.)

Unknowns, all float64: per camera c a small rigid motion in its own frame, ``omega_c``
(axis-angle, radians) and ``tau_c`` (metres),

    x_cam = Exp(omega_c) (R_c x + T_c) + tau_c,   i.e.  R_c' = Exp(omega_c) R_c,  T_c' = Exp(omega_c) T_c + tau_c

(world-to-camera, OpenCV axes; intrinsics and distortion are kept), and per frame f and keypoint
k a world point ``X_fk`` (metres), started from the robust triangulation
(:mod:`neuralbody.data.triangulation`). Minimised with L-BFGS::

    E = sum_{f,c,k} conf_fck rho(|pi_c'(X_fk) - u_fck|^2)
        + sum_c (|omega_c|^2 / sigma_omega^2 + |tau_c|^2 / sigma_tau^2)

with ``rho`` Geman-McClure of scale ``sigma_px`` (a swapped left/right or a bystander's keypoint
saturates instead of pulling). The data term does not change when cameras and points move
together by a similarity (the gauge); the prior, weak next to thousands of observations, keeps
the cameras near their start while the data settles, and the result is then placed by the
similarity that best maps its camera centres onto the original ones (:func:`_placed_like`), so
the world frame and the metric scale stay the calibration's. Keypoints need two views above
``min_confidence`` to take part.

:func:`signed_bias` reports what the refinement removes: per camera, the mean of projected minus
detected pixels of points triangulated *without* that camera (leave-one-out).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import torch

from neuralbody.data.cameras import Camera, project_points
from neuralbody.fitting.objectives import CameraTensors, geman_mcclure
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.data.triangulation import triangulate

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ExtrinsicsRefinement:
    """Result of :func:`refine_extrinsics` (C cameras).

    Attributes:
        cameras: the refined cameras (same intrinsics, names and sizes).
        rotation_deg: (C,) angle of each camera's rotation change, degrees.
        centre_shift_m: (C,) distance each camera centre moved, metres.
        residual_before_px, residual_after_px: (C,) median reprojection error of the keypoints
            each camera sees (before: triangulated with the given cameras; after: the refined
            points and cameras), pixels.
        observations: (C,) keypoints each camera contributed.
        points: number of (frame, keypoint) points solved for.
    """

    cameras: list[Camera]
    rotation_deg: np.ndarray
    centre_shift_m: np.ndarray
    residual_before_px: np.ndarray
    residual_after_px: np.ndarray
    observations: np.ndarray
    points: int


def _check(cameras: list[Camera], keypoints2d: np.ndarray) -> np.ndarray:
    keypoints2d = np.asarray(keypoints2d, dtype=np.float64)
    if keypoints2d.ndim != 4 or keypoints2d.shape[-1] != 3:
        raise ValueError(f"keypoints2d must be (frames, views, keypoints, 3) = (u, v, confidence), got {keypoints2d.shape}")
    if keypoints2d.shape[1] != len(cameras) or len(cameras) < 2:
        raise ValueError(f"keypoints2d has {keypoints2d.shape[1]} views for {len(cameras)} cameras; need the same, >= 2")
    return keypoints2d


def _observations(cameras, keypoints2d, min_confidence):
    """Triangulate every frame; keep points seen by two views. Returns points (P, 3), obs (C, P, 3), residual (C, P)."""
    points, observations, residuals = [], [], []
    for frame_keypoints in keypoints2d:
        usable = np.where(np.isfinite(frame_keypoints).all(-1, keepdims=True) & (frame_keypoints[..., 2:] >= min_confidence),
                          frame_keypoints, 0.0)
        if ((usable[..., 2] > 0).sum(0) >= 2).sum() == 0:
            continue
        result = triangulate(cameras, usable)
        keep = result.valid & ((usable[..., 2] > 0).sum(0) >= 2)
        points.append(result.points[keep])
        observations.append(usable[:, keep])
        residuals.append(np.where(usable[:, keep, 2] > 0, result.residual_px[:, keep], np.nan))
    if not points:
        raise ValueError("no keypoint is seen by two cameras with enough confidence: nothing to refine the cameras with")
    return np.concatenate(points), np.concatenate(observations, axis=1), np.concatenate(residuals, axis=1)


def _median_per_camera(residual: np.ndarray) -> np.ndarray:
    return np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in residual])


def _placed_like(original: list[Camera], refined: list[Camera]) -> list[Camera]:
    """The refined rig moved by the similarity ``y = s Q x + t`` that best maps its camera centres
    onto the original ones (Umeyama; none with fewer than three cameras): the gauge fixed, so the
    world frame and metric scale stay those of the calibration. A camera ``x_cam = R x + T`` becomes
    ``R' = R Q^T``, ``T' = s T - R Q^T t`` (camera coordinates scaled by s, which projects the same)."""
    if len(original) < 3:
        return refined
    source = np.array([c.center for c in refined])
    target = np.array([c.center for c in original])
    mean_source, mean_target = source.mean(0), target.mean(0)
    centred_source, centred_target = source - mean_source, target - mean_target
    u, singular, vt = np.linalg.svd(centred_target.T @ centred_source / len(source))
    sign = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / (centred_source**2).sum(1).mean()
    shift = mean_target - scale * rotation @ mean_source
    return [dataclasses.replace(c, R=c.R @ rotation.T, T=scale * c.T - c.R @ rotation.T @ shift) for c in refined]


def refine_extrinsics(
    cameras: list[Camera],
    keypoints2d: np.ndarray,
    *,
    sigma_px: float = 10.0,
    prior_rotation_deg: float = 1.0,
    prior_translation_m: float = 0.05,
    min_confidence: float = 0.3,
    iterations: int = 1000,
) -> ExtrinsicsRefinement:
    """Refine every camera's R, T from keypoints seen over many frames (see the module docstring).

    Args:
        cameras: the C calibrated cameras.
        keypoints2d: (F, C, K, 3) detections ``(u, v, confidence)`` in the cameras' (distorted)
            pixels; confidence 0 or NaN: not seen.
        sigma_px: Geman-McClure scale, pixels.
        prior_rotation_deg, prior_translation_m: scales of the prior on each camera's change.
        min_confidence: detections below it are ignored.
        iterations: L-BFGS iterations at most.
    """
    keypoints2d = _check(cameras, keypoints2d)
    if not (sigma_px > 0 and prior_rotation_deg > 0 and prior_translation_m > 0):
        raise ValueError("sigma_px, prior_rotation_deg and prior_translation_m must be positive")
    points_init, observed, residual_before = _observations(cameras, keypoints2d, min_confidence)
    dtype = torch.float64
    base = CameraTensors.from_cameras(cameras, dtype=dtype)
    target = torch.as_tensor(observed, dtype=dtype)  # (C, P, 3)
    omega = torch.zeros(len(cameras), 3, dtype=dtype, requires_grad=True)
    tau = torch.zeros(len(cameras), 3, dtype=dtype, requires_grad=True)
    points = torch.tensor(points_init, dtype=dtype, requires_grad=True)
    sigma_omega = math.radians(prior_rotation_deg)

    def moved() -> CameraTensors:
        rotation = axis_angle_to_matrix(omega)  # (C, 3, 3)
        return CameraTensors(base.K, rotation @ base.R, (rotation @ base.T[..., None])[..., 0] + tau, base.D, base.sizes)

    def energy() -> torch.Tensor:
        uv, _ = moved().project(points[None])  # (1, C, P, 2)
        squared = ((uv[0] - target[..., :2]) ** 2).sum(-1)
        data = (target[..., 2] * geman_mcclure(squared, sigma_px)).sum()
        prior = (omega**2).sum() / sigma_omega**2 + (tau**2).sum() / prior_translation_m**2
        return data + prior

    optimizer = torch.optim.LBFGS([omega, tau, points], lr=1.0, max_iter=iterations, history_size=50,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = energy()
        value.backward()
        return value

    start = float(energy().detach())
    optimizer.step(closure)
    log.info("camera refinement: energy %.1f -> %.1f over %d points", start, float(energy().detach()), points_init.shape[0])
    with torch.no_grad():
        refined = moved()
        uv, _ = refined.project(points[None])
        error = (uv[0] - target[..., :2]).norm(dim=-1).numpy()
    residual_after = np.where(observed[..., 2] > 0, error, np.nan)
    new_cameras = _placed_like(cameras, [
        dataclasses.replace(camera, R=refined.R[c].numpy().copy(), T=refined.T[c].numpy().copy())
        for c, camera in enumerate(cameras)
    ])
    angles = np.array([np.degrees(np.arccos(np.clip((np.trace(new.R @ old.R.T) - 1) / 2, -1.0, 1.0)))
                       for new, old in zip(new_cameras, cameras)])
    shifts = np.array([np.linalg.norm(new.center - old.center) for new, old in zip(new_cameras, cameras)])
    return ExtrinsicsRefinement(
        cameras=new_cameras, rotation_deg=angles, centre_shift_m=shifts,
        residual_before_px=_median_per_camera(residual_before), residual_after_px=_median_per_camera(residual_after),
        observations=(observed[..., 2] > 0).sum(1), points=int(points_init.shape[0]),
    )  # fmt: skip


def signed_bias(cameras: list[Camera], keypoints2d: np.ndarray, *, min_confidence: float = 0.5) -> np.ndarray:
    """(C, 2) leave-one-out bias: per camera, the mean over frames and keypoints of the projection
    of the point triangulated from the *other* cameras minus the detection, pixels (u, v);
    NaN where a camera has no such keypoint. Needs three cameras or more."""
    keypoints2d = _check(cameras, keypoints2d)
    if len(cameras) < 3:
        raise ValueError("signed_bias needs three cameras or more (two others to triangulate from)")
    bias = np.full((len(cameras), 2), np.nan)
    for held in range(len(cameras)):
        others = [c for c in range(len(cameras)) if c != held]
        differences = []
        for frame_keypoints in keypoints2d:
            seen = np.isfinite(frame_keypoints).all(-1) & (frame_keypoints[..., 2] >= min_confidence)
            usable = np.where(seen[..., None], frame_keypoints, 0.0)
            result = triangulate([cameras[c] for c in others], usable[others])
            keep = result.valid & seen[held]
            if keep.any():
                uv, depth = project_points(cameras[held], result.points[keep])
                differences.append((uv - frame_keypoints[held, keep, :2])[depth > 0])
        if differences and sum(len(d) for d in differences):
            bias[held] = np.concatenate(differences).mean(axis=0)
    return bias
