"""Scores of a tracked video against the ground truth of a synthetic one (``synth-head``).

The tracker carries the rigid head motion in the camera and keeps the neck and head bones at
rest (:mod:`neuralbody.head.track_fit`), so its head-to-camera rotation is ``R_t``; the truth's
is ``R*_t G*_head,t`` (the true camera times the head bone's world rotation, which carries the
neck and head turns). Scores per video:

* ``landmark_px``: median over frames of the weighted RMS distance between the fitted and
  the detected landmarks (what the fit minimised);
* ``truth_px``: median over frames of the RMS distance between the landmarks of the fitted
  head and of the true head (the map's points on the truly posed mesh), each projected by its
  own camera: how far the tracked face is drawn from where it is;
* ``rotation_deg``: median angle of ``R_t^T R*_t G*_head,t``;
* ``jaw_deg``: mean |a_t - a*_t| of the jaw opening;
* ``action_mae``: mean |psi - psi*| over all frames and actions; ``active_mae`` over the
  actions the truth uses somewhere (the others are zero throughout); ``action_r``: Pearson
  correlation of psi and psi* over the frames and active actions;
* ``focal_pct``: 100 |f - f*| / f*.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.projection import project
from neuralbody.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from neuralbody.head.landmark_map import LandmarkMap, landmark_points
from neuralbody.head.rig import BONES, HeadRig, pose_head
from neuralbody.head.track_fit import JAW, LandmarkHead, TrackedHead

HEAD = BONES.index("head")


@dataclasses.dataclass
class TrackingTruth:
    """A synthetic video's truth.

    Attributes:
        expression: (N, 52). pose: (N, 4, 3) axis-angle, radians.
        K: (3, 3) pixels. R: (N, 3, 3), T: (N, 3) world-to-camera, metres.
    """

    expression: torch.Tensor
    pose: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor
    T: torch.Tensor


@dataclasses.dataclass
class TrackingScores:
    """The module docstring's scores."""

    landmark_px: float
    truth_px: float
    rotation_deg: float
    jaw_deg: float
    action_mae: float
    active_mae: float
    action_r: float
    focal_pct: float


def true_landmarks(rig: HeadRig, landmarks: LandmarkMap, truth: TrackingTruth) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, L, 2) the true landmarks' pixels and (N, 4, 4, 4) the true bone transforms."""
    vertices, transforms = pose_head(rig, truth.expression.float(), truth.pose.float())
    points = landmark_points(vertices.double(), rig.faces, landmarks)
    frames = points.shape[0]
    uv, _ = project(points, truth.K.double().expand(frames, 3, 3), truth.R.double(), truth.T.double(),
                    torch.zeros(frames, 5, dtype=torch.float64))
    return uv, transforms.double()


def tracked_landmarks(head: LandmarkHead, tracked: TrackedHead, width: int, height: int) -> torch.Tensor:
    """(N, L, 2) pixels of the fitted head's landmarks."""
    points = head.points(tracked.expression, tracked.jaw)
    frames = points.shape[0]
    K = torch.tensor([[tracked.focal, 0.0, width / 2.0], [0.0, tracked.focal, height / 2.0], [0.0, 0.0, 1.0]],
                     dtype=torch.float64)
    uv, _ = project(points, K.expand(frames, 3, 3), axis_angle_to_matrix(tracked.rotation), tracked.translation,
                    torch.zeros(frames, 5, dtype=torch.float64))
    return uv


def score_tracking(rig: HeadRig, head: LandmarkHead, landmarks: LandmarkMap, tracked: TrackedHead,
                   truth: TrackingTruth, width: int, height: int) -> TrackingScores:
    """The scores of ``tracked`` against ``truth`` (the module docstring)."""
    frames = tracked.expression.shape[0]
    if truth.expression.shape[0] != frames or truth.R.shape[0] != frames:
        raise ValueError(f"score_tracking: {frames} tracked frames, truth for {truth.expression.shape[0]}")
    true_uv, transforms = true_landmarks(rig, landmarks, truth)
    fitted_uv = tracked_landmarks(head, tracked, width, height)
    weights = head.weights / head.weights.sum()
    truth_px = ((fitted_uv - true_uv).square().sum(2) * weights).sum(1).sqrt()
    true_rotation = truth.R.double() @ transforms[:, HEAD, :3, :3]
    relative = axis_angle_to_matrix(tracked.rotation).transpose(1, 2) @ true_rotation
    angle = torch.rad2deg(matrix_to_axis_angle(relative).norm(dim=1))
    psi, true_psi = tracked.expression.double(), truth.expression.double()
    active = true_psi.abs().amax(0) > 0
    a, b = psi[:, active].reshape(-1), true_psi[:, active].reshape(-1)
    correlation = float(torch.corrcoef(torch.stack([a, b]))[0, 1]) if a.numel() > 1 and float(a.std()) > 0 else 0.0
    focal = float(truth.K[0, 0])
    return TrackingScores(
        landmark_px=float(np.nanmedian(tracked.residual_px.numpy())), truth_px=float(truth_px.median()),
        rotation_deg=float(angle.median()), jaw_deg=float(torch.rad2deg((tracked.jaw - truth.pose[:, JAW, 0]).abs()).mean()),
        action_mae=float((psi - true_psi).abs().mean()), active_mae=float((a - b).abs().mean()) if a.numel() else 0.0,
        action_r=correlation, focal_pct=100.0 * abs(tracked.focal - focal) / focal)
