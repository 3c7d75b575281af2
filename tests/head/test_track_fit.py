"""The tracker's fit: the landmark rig against the full rig, a known-answer recovery, the guards."""

import math

import numpy as np
import pytest
import torch
from head_fixtures import tiny_rig

from neuralbody.geometry.rotations import axis_angle_to_matrix, look_at_rotation, matrix_to_axis_angle
from neuralbody.head.landmark_map import LandmarkMap, default_landmark_map, landmark_points
from neuralbody.head.rig import pose_head
from neuralbody.head.track_eval import TrackingTruth, score_tracking, true_landmarks
from neuralbody.head.track_fit import FitSettings, LandmarkHead, fit_landmarks

RES = 64


def random_map(rig, count: int, seed: int = 0) -> LandmarkMap:
    generator = torch.Generator().manual_seed(seed)
    weights = torch.rand(count, 3, generator=generator) + 0.1
    return LandmarkMap(face_ids=torch.randperm(rig.faces.shape[0], generator=generator)[:count],
                       barycentrics=weights / weights.sum(1, keepdim=True), weights=torch.rand(count, generator=generator) + 0.5)


def cameras(frames: int, focal: float):
    """Cameras around the sphere head's front (it looks along -y), turned a little each frame."""
    target = np.array([0.0, -0.04, 0.69])
    R, T = [], []
    for t in range(frames):
        a = 0.3 * math.sin(t)
        centre = target + 0.5 * np.array([math.sin(a), -math.cos(a), 0.1 * t])
        rotation = look_at_rotation(centre, target)
        R.append(rotation), T.append(-rotation @ centre)
    K = torch.tensor([[focal, 0.0, RES / 2.0], [0.0, focal, RES / 2.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return K, torch.tensor(np.stack(R)), torch.tensor(np.stack(T))


def test_landmark_head_matches_the_full_rig():
    rig = tiny_rig()
    landmarks = random_map(rig, 30)
    head = LandmarkHead(rig, landmarks)
    expression = torch.rand(3, 52, dtype=torch.float64) * 0.5
    jaw = torch.tensor([0.0, 0.2, 0.45], dtype=torch.float64)
    pose = torch.zeros(3, 4, 3)
    pose[:, 3, 0] = jaw.float()
    vertices, _ = pose_head(rig, expression.float(), pose)
    expected = landmark_points(vertices.double(), rig.faces, landmarks)
    torch.testing.assert_close(head.points(expression, jaw), expected, atol=1e-6, rtol=0)


def test_fit_recovers_pose_jaw_expression_and_focal():
    rig = tiny_rig()
    landmarks = random_map(rig, 120, seed=1)
    head = LandmarkHead(rig, landmarks)
    frames, focal = 3, 80.0
    generator = torch.Generator().manual_seed(2)
    expression = torch.zeros(frames, 52, dtype=torch.float64)
    for t, action in enumerate((3, 17, 40)):
        expression[t, action] = 0.3 + 0.4 * torch.rand(1, generator=generator, dtype=torch.float64)
    jaw = torch.tensor([0.05, 0.2, 0.1], dtype=torch.float64)
    pose = torch.zeros(frames, 4, 3, dtype=torch.float64)
    pose[:, 3, 0] = jaw
    K, R, T = cameras(frames, focal)
    truth = TrackingTruth(expression=expression, pose=pose, K=K, R=R, T=T)
    observed, _ = true_landmarks(rig, landmarks, truth)
    settings = FitSettings(rigid_steps=200, steps=500, l1=0.0, l2=0.0, jaw=0.0, smooth=0.0)
    tracked = fit_landmarks(head, observed, torch.ones(frames, dtype=torch.bool), RES, RES, settings=settings,
                            progress=False)
    scores = score_tracking(rig, head, landmarks, tracked, truth, RES, RES)
    assert scores.truth_px < 0.02 and scores.landmark_px < 0.02
    assert scores.rotation_deg < 0.2 and scores.jaw_deg < 0.5
    assert scores.focal_pct < 2.0
    assert scores.active_mae < 0.05 and scores.action_r > 0.95
    # the rig's rotation is the camera's: the fitted head-to-camera rotation is the true camera's
    relative = axis_angle_to_matrix(tracked.rotation).transpose(1, 2) @ R
    assert float(matrix_to_axis_angle(relative).norm(dim=1).max()) < math.radians(0.2)


def test_known_focal_is_kept_and_missing_frames_are_bridged():
    rig = tiny_rig()
    landmarks = random_map(rig, 60, seed=3)
    head = LandmarkHead(rig, landmarks)
    K, R, T = cameras(4, 90.0)
    truth = TrackingTruth(expression=torch.zeros(4, 52, dtype=torch.float64), pose=torch.zeros(4, 4, 3, dtype=torch.float64),
                          K=K, R=R, T=T)
    observed, _ = true_landmarks(rig, landmarks, truth)
    found = torch.tensor([True, True, False, True])
    observed[2] = 0.0  # a frame without a face: its landmarks are ignored
    tracked = fit_landmarks(head, observed, found, RES, RES, focal=90.0, settings=FitSettings(rigid_steps=300, steps=0, smooth=0.0),
                            progress=False)
    assert tracked.focal == pytest.approx(90.0)
    assert math.isnan(float(tracked.residual_px[2])) and float(tracked.residual_px[[0, 1, 3]].max()) < 0.3
    assert torch.isfinite(tracked.translation).all()


def test_guards():
    rig = tiny_rig()
    head = LandmarkHead(rig, random_map(rig, 10))
    with pytest.raises(ValueError, match="no frame has a face"):
        fit_landmarks(head, torch.zeros(2, 10, 2), torch.zeros(2, dtype=torch.bool), RES, RES, progress=False)
    with pytest.raises(ValueError, match=r"observed must be \(N, 10, 2\)"):
        fit_landmarks(head, torch.zeros(2, 9, 2), torch.ones(2, dtype=torch.bool), RES, RES, progress=False)
    with pytest.raises(ValueError, match="focal"):
        fit_landmarks(head, torch.rand(2, 10, 2), torch.ones(2, dtype=torch.bool), RES, RES, focal=-1.0, progress=False)
    with pytest.raises(ValueError, match="lr"):
        FitSettings(lr=0.0)
    with pytest.raises(ValueError, match="derived for another mesh"):
        LandmarkHead(rig, LandmarkMap(torch.tensor([10**6]), torch.ones(1, 3) / 3, torch.ones(1)))


def test_stored_map_is_well_formed():
    landmarks = default_landmark_map()
    assert landmarks.face_ids.shape == (478,) and int(landmarks.face_ids.min()) >= 0
    torch.testing.assert_close(landmarks.barycentrics.sum(1), torch.ones(478), atol=1e-6, rtol=0)
    assert float(landmarks.barycentrics.min()) >= -1e-6
    assert 0.0 < float(landmarks.weights.min()) and float(landmarks.weights.max()) <= 1.0
