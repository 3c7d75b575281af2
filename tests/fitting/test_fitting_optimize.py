"""Keypoint regressors and body fitting on the tiny synthetic capture (Anny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.fitting.keypoints import (
    COCO_KEYPOINTS,
    SMPL_FACE_VERTICES,
    SMPL_JOINT_OF,
    anny_keypoint_regressor,
    keypoints2d_from_points,
    smpl_keypoint_regressor,
)

pytestmark = pytest.mark.anny

FAST = dict(global_iterations=10, coarse_iterations=15, pose_iterations=30, fit_shape=False, silhouette_weight=0.0)


@pytest.fixture(scope="module")
def coco(anny_body):
    return anny_keypoint_regressor()


def test_anny_regressor_is_convex_and_left_is_plus_x(anny_body, coco):
    assert coco.names == COCO_KEYPOINTS and coco.weights.shape == (17, anny_body.num_vertices)
    assert (coco.weights >= 0).all()
    torch.testing.assert_close(coco.weights.sum(1), torch.ones(17))
    rest = coco(anny_body(torch.zeros(1, anny_body.pose_dim)).vertices)[0]
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"):
        left, right = rest[COCO_KEYPOINTS.index(f"left_{name}")], rest[COCO_KEYPOINTS.index(f"right_{name}")]
        assert left[0] > 0.02 and right[0] < -0.02  # the person's left is +x
    assert rest[0, 1] < rest[COCO_KEYPOINTS.index("left_ear"), 1]  # the nose is in front (-y) of the ears
    feet = anny_keypoint_regressor(include_feet=True)
    assert feet.num_keypoints == 23 and torch.equal(feet.weights[:17], coco.weights)
    with pytest.raises(ValueError):
        coco(torch.zeros(1, 10, 3))


def test_smpl_regressor_from_joint_regressor():
    J_regressor = torch.rand(24, 6890)
    regressor = smpl_keypoint_regressor(J_regressor)
    torch.testing.assert_close(regressor.weights.sum(1), torch.ones(17))
    for name, vertex in SMPL_FACE_VERTICES.items():
        assert regressor.weights[COCO_KEYPOINTS.index(name), vertex] == 1.0
    row = J_regressor[SMPL_JOINT_OF["left_knee"]]
    torch.testing.assert_close(regressor.weights[COCO_KEYPOINTS.index("left_knee")], row / row.sum())
    with pytest.raises(ValueError):
        smpl_keypoint_regressor(torch.rand(24, 100))


def _ground_truth(capture, coco, frames):
    vertices = {f: capture.load_vertices(f) for f in frames}
    keypoints = {
        f: keypoints2d_from_points(capture.cameras, coco(torch.from_numpy(v)).numpy()) for f, v in vertices.items()
    }
    return vertices, keypoints


def test_fit_recovers_ground_truth_and_skips_bad_frames(anny_body, coco, tiny_capture):
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.optimize import FitConfig, SequenceFitter

    capture = read_capture(tiny_capture)
    vertices, keypoints = _ground_truth(capture, coco, [0, 1])
    keypoints[1][2] = 0.0  # no person in view 2: that view is ignored, the frame still fits
    keypoints[2] = np.zeros_like(keypoints[0])  # no person anywhere
    keypoints[3] = keypoints[0].copy()
    keypoints[3][1:] = np.nan  # a person in one view only
    config = FitConfig(**{**FAST, "fit_shape": True, "shape_frames": 2, "shape_iterations": 30})
    fitter = SequenceFitter(anny_body, coco, capture.cameras, config)
    result = fitter.fit_sequence([0, 1, 2, 3], keypoints.__getitem__, progress=False)
    assert ((result.shapes >= 0) & (result.shapes <= 1)).all()
    assert sorted(result.fits) == [0, 1] and sorted(result.skipped) == [2, 3]
    assert "views" in result.skipped[2] and "views" in result.skipped[3]
    for frame in (0, 1):
        fit = result.fits[frame]
        truth = torch.from_numpy(vertices[frame])
        mpjpe = (coco(truth) - coco(torch.from_numpy(fit.vertices))).norm(dim=-1).mean().item()
        vertex_error = (truth - torch.from_numpy(fit.vertices)).norm(dim=-1).mean().item()
        assert mpjpe < 0.015 and vertex_error < 0.03, (frame, mpjpe, vertex_error)
        assert np.nanmean(fit.reprojection_px) < 0.3  # 64 x 64 images, exact keypoints
        assert fit.params()["poses"].shape == (1, anny_body.pose_dim)


def test_fit_rejects_wrong_keypoint_count(anny_body, coco, tiny_capture):
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.optimize import FitConfig, SequenceFitter

    capture = read_capture(tiny_capture)
    fitter = SequenceFitter(anny_body, coco, capture.cameras, FitConfig(**FAST))
    result = fitter.fit_sequence([0], lambda frame: np.zeros((capture.num_views, 5, 3)), progress=False)
    assert not result.fits and "17" in result.skipped[0]
    with pytest.raises(ValueError, match="no bones"):
        SequenceFitter(anny_body, coco, capture.cameras, FitConfig(bones=("tail",)))


def test_acceleration_loss_is_zero_for_uniform_motion_and_skips_gaps():
    from neuralbody.fitting.objectives import acceleration_loss

    t = torch.arange(5, dtype=torch.float32)[:, None, None]
    uniform = torch.zeros(5, 4, 3) + t * torch.tensor([0.01, 0.0, 0.02])  # constant velocity
    assert torch.allclose(acceleration_loss(uniform, scale_m=0.005), torch.zeros(3))
    kinked = uniform.clone()
    kinked[2, :, 0] += 0.01  # frame 2 is 1 cm off: second differences -0.01... at t = 1, 2, 3
    energy = acceleration_loss(kinked, scale_m=0.01)
    assert torch.allclose(energy, torch.tensor([1.0, 4.0, 1.0]))
    gaps = torch.tensor([True, False, True])
    assert torch.allclose(acceleration_loss(kinked, scale_m=0.01, consecutive=gaps), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="T >= 3"):
        acceleration_loss(uniform[:2], scale_m=0.01)


def test_sequence_refinement_reduces_error_of_noisy_keypoints(anny_body, coco, tiny_capture):
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.optimize import FitConfig, SequenceFitter

    capture = read_capture(tiny_capture)
    frames = list(range(capture.num_frames))
    rng = np.random.default_rng(1)
    vertices = {f: capture.load_vertices(f) for f in frames}
    keypoints = {
        f: keypoints2d_from_points(capture.cameras, coco(torch.from_numpy(v)).numpy(), noise_px=1.0, rng=rng)
        for f, v in vertices.items()
    }  # 1 px at 64 x 64: like 4 px at 256 x 256

    def errors(refine_iterations):
        config = FitConfig(**{**FAST, "refine_iterations": refine_iterations})
        result = SequenceFitter(anny_body, coco, capture.cameras, config).fit_sequence(
            frames, keypoints.__getitem__, progress=False
        )
        fitted = np.stack([result.fits[f].vertices for f in frames])
        truth = np.stack([vertices[f] for f in frames])
        return np.linalg.norm(fitted - truth, axis=-1).mean(), fitted

    per_frame, single = errors(0)
    refined, joint = errors(20)
    jitter = lambda x: np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean()  # noqa: E731
    assert refined < 0.9 * per_frame, (refined, per_frame)
    assert jitter(joint) < 0.7 * jitter(single), (jitter(joint), jitter(single))  # smoother motion
