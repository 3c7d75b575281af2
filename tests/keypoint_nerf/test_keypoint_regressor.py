"""The vertices -> keypoints regressor: recovers a known sparse affine map; serialisation; guards."""

from __future__ import annotations

import numpy as np
import pytest

from neuralbody.keypoint_nerf.keypoints import JointRegressor, fit_joint_regressor, select_joints


def test_fit_recovers_joints_defined_by_their_nearest_vertices():
    rng = np.random.default_rng(0)
    rest = np.concatenate([rng.normal(scale=0.05, size=(8, 3)), 2.0 + rng.normal(size=(52, 3))])  # a tight cluster of 8
    rotations = [np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(13)]
    frames = np.stack([rest @ q + rng.normal(size=3) for q in rotations[:12]])
    frames += rng.normal(scale=0.01, size=frames.shape)  # each frame a slightly different person
    weights = rng.dirichlet(np.ones(8))
    joints = np.einsum("s,fsc->fc", weights, frames[:, :8])[:, None]  # (F, 1, 3)
    regressor = fit_joint_regressor(frames, joints, support=8, ridge=1e-12)
    assert sorted(regressor.indices[0].tolist()) == list(range(8)) and abs(regressor.weights.sum() - 1) < 1e-5
    held_out = rest @ rotations[12]
    expected = np.einsum("s,sc->c", weights, held_out[:8])
    assert np.allclose(regressor(held_out)[0], expected, atol=1e-4)


def test_round_trip_and_guards():
    regressor = JointRegressor(np.array([[0, 2]]), np.array([[0.25, 0.75]], dtype=np.float32), 3)
    again = JointRegressor.from_dict(regressor.to_dict())
    vertices = np.array([[0.0, 0, 0], [9, 9, 9], [4.0, 0, 0]])
    assert np.allclose(again(vertices), [[3.0, 0, 0]])
    with pytest.raises(ValueError, match=r"needs \(3, 3\) vertices"):
        regressor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="below num_vertices"):
        JointRegressor.from_dict({"indices": [[5]], "weights": [[1.0]], "num_vertices": 3})
    with pytest.raises(ValueError, match="lack"):
        select_joints(np.zeros((2, 3)), ["root", "head"], ("root", "toe"))
    assert np.allclose(select_joints(np.eye(3), ["a", "b", "c"], ("c", "a")), [[0, 0, 1], [1, 0, 0]])
