"""Refining camera extrinsics from keypoints: a perturbed rig recovers the true relative geometry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neuralbody.fitting.camera_refinement import refine_extrinsics, signed_bias
from neuralbody.fitting.keypoints import keypoints2d_from_points
from test_data_triangulation import _rotation, ring_cameras


def _keypoints(cameras, frames: int = 30, noise_px: float = 0.3, seed: int = 0) -> np.ndarray:
    """(F, C, 17, 3) detections of a random 'skeleton' per frame, each within a 1 x 1 x 1.8 m box."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([-0.5, -0.5, 0.1], [0.5, 0.5, 1.9], size=(frames, 17, 3))
    return np.stack([keypoints2d_from_points(cameras, p, noise_px=noise_px, rng=rng) for p in points])


def _perturbed(cameras, seed: int = 1, angle_deg: float = 0.6, shift_m: float = 0.02):
    """Each camera moved in its own frame by a random rotation and translation."""
    rng = np.random.default_rng(seed)
    moved = []
    for camera in cameras:
        axis = rng.normal(size=3)
        rotation = _rotation(axis / np.linalg.norm(axis) * np.radians(angle_deg))
        offset = rng.normal(size=3)
        moved.append(dataclasses.replace(camera, R=rotation @ camera.R,
                                         T=rotation @ camera.T + offset / np.linalg.norm(offset) * shift_m))
    return moved


def _relative_rotation_errors_deg(cameras, truth) -> np.ndarray:
    """Angles of (R_i R_j^T)_estimated vs truth for every pair: independent of the gauge rotation."""
    errors = []
    for i in range(len(cameras)):
        for j in range(i + 1, len(cameras)):
            estimated = cameras[i].R @ cameras[j].R.T
            true = truth[i].R @ truth[j].R.T
            cosine = (np.trace(estimated @ true.T) - 1) / 2
            errors.append(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    return np.array(errors)


def _distance_ratios(cameras) -> np.ndarray:
    """Camera-centre distances over the first one: independent of the gauge similarity."""
    centres = np.array([c.center for c in cameras])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(cameras), 1)]
    return distances / distances[0]


def test_refinement_recovers_the_rig_up_to_a_similarity():
    truth = ring_cameras(4)
    keypoints = _keypoints(truth)
    start = _perturbed(truth)
    result = refine_extrinsics(start, keypoints)
    assert (result.residual_before_px > 1.0).all()  # the perturbation is visible
    assert (result.residual_after_px < 0.6).all()  # down to the 0.3 px noise
    assert _relative_rotation_errors_deg(start, truth).max() > 0.5
    assert _relative_rotation_errors_deg(result.cameras, truth).max() < 0.05
    np.testing.assert_allclose(_distance_ratios(result.cameras), _distance_ratios(truth), rtol=2e-3)
    assert np.abs(signed_bias(start, keypoints)).max() > 1.0
    assert np.abs(signed_bias(result.cameras, keypoints)).max() < 0.2
    assert result.points == 30 * 17 and (result.observations == 30 * 17).all()
    # the gauge: placed by the similarity that best maps the refined centres onto the given ones
    refined_centres, start_centres = np.array([c.center for c in result.cameras]), np.array([c.center for c in start])
    np.testing.assert_allclose(refined_centres.mean(0), start_centres.mean(0), atol=1e-9)
    assert np.linalg.norm(refined_centres - start_centres, axis=1).max() < 0.05
    for refined, original in zip(result.cameras, start):  # intrinsics, size and name are kept
        assert refined.name == original.name and np.array_equal(refined.K, original.K)
        assert np.array_equal(refined.D, original.D) and refined.width == original.width


def test_exact_cameras_stay_put():
    truth = ring_cameras(3, distortion=False)
    result = refine_extrinsics(truth, _keypoints(truth, noise_px=0.0))
    assert result.rotation_deg.max() < 1e-3 and result.centre_shift_m.max() < 1e-4
    assert (result.residual_after_px < 1e-3).all()


def test_outlier_keypoints_do_not_drag_the_cameras():
    truth = ring_cameras(4)
    keypoints = _keypoints(truth, seed=3)
    keypoints[::3, 1, 5, :2] += 60.0  # a third of one joint in one camera is a bystander's
    result = refine_extrinsics(_perturbed(truth, seed=4), keypoints)
    assert _relative_rotation_errors_deg(result.cameras, truth).max() < 0.1


def test_guards():
    cameras = ring_cameras(3)
    with pytest.raises(ValueError, match=r"\(frames, views, keypoints, 3\)"):
        refine_extrinsics(cameras, np.zeros((3, 17, 3)))
    with pytest.raises(ValueError, match="4 views for 3 cameras"):
        refine_extrinsics(cameras, np.zeros((2, 4, 17, 3)))
    with pytest.raises(ValueError, match="seen by two cameras"):
        refine_extrinsics(cameras, np.zeros((2, 3, 17, 3)))
    with pytest.raises(ValueError, match="positive"):
        refine_extrinsics(cameras, _keypoints(cameras, frames=2), sigma_px=0.0)
    with pytest.raises(ValueError, match="three cameras"):
        signed_bias(cameras[:2], np.zeros((2, 2, 17, 3)))
