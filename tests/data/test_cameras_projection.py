"""neuralbody.data.projection: the one world -> pixel projection (torch), against OpenCV's formula.

``project_points`` (NumPy, one camera) and the fitting's ``CameraTensors.project`` (C cameras,
batched) both call it; these tests pin it to the independent reference formula of
test_cameras.py, check broadcasting, dtypes and gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cameras import _opencv_project, _random_camera

from neuralbody.data import projection
from neuralbody.data.cameras import project_points


def _camera_tensors(cameras, dtype=torch.float64):
    return [torch.as_tensor(np.stack([getattr(c, f) for c in cameras]), dtype=dtype) for f in "KRTD"]


def test_project_matches_the_opencv_formula_for_a_batch_of_cameras():
    rng = np.random.default_rng(21)
    cameras = [_random_camera(rng, distortion=i != 1) for i in range(4)]
    points = rng.uniform(-0.8, 0.8, size=(2, 30, 3))  # B = 2 point sets
    K, R, T, D = _camera_tensors(cameras)
    uv, depth = projection.project(torch.as_tensor(points)[:, None], K, R, T, D)  # cameras broadcast
    assert uv.shape == (2, 4, 30, 2) and depth.shape == (2, 4, 30)
    for b in range(2):
        for c, camera in enumerate(cameras):
            for n in range(0, 30, 7):
                expected = _opencv_project(camera.K, camera.R, camera.T, camera.D, points[b, n])
                np.testing.assert_allclose(uv[b, c, n].numpy(), expected, rtol=0, atol=1e-9)
                assert depth[b, c, n].item() == pytest.approx((camera.R @ points[b, n] + camera.T)[2], abs=1e-12)
            # the NumPy entry point is the same computation
            np_uv, np_depth = project_points(camera, points[b])
            np.testing.assert_allclose(np_uv, uv[b, c].numpy(), rtol=0, atol=1e-10)
            np.testing.assert_allclose(np_depth, depth[b, c].numpy(), rtol=0, atol=1e-14)


def test_float32_agrees_with_float64_to_a_hundredth_of_a_pixel():
    rng = np.random.default_rng(22)
    cameras = [_random_camera(rng) for _ in range(3)]
    points = torch.as_tensor(rng.uniform(-0.8, 0.8, size=(1, 1, 200, 3)))
    uv64, _ = projection.project(points, *_camera_tensors(cameras))
    uv32, _ = projection.project(points.float(), *_camera_tensors(cameras, torch.float32))
    assert uv32.dtype == torch.float32
    assert (uv32.double() - uv64).abs().max() < 1e-2


def test_distort_known_answers():
    xy = torch.tensor([[0.1, -0.2], [0.0, 0.0], [0.3, 0.3]], dtype=torch.float64)
    r2 = (xy**2).sum(-1, keepdim=True)
    radial_only = projection.distort(xy, torch.tensor([0.1, -0.05, 0.0, 0.0, 0.02], dtype=torch.float64))
    torch.testing.assert_close(radial_only, xy * (1 + 0.1 * r2 - 0.05 * r2**2 + 0.02 * r2**3), atol=1e-15, rtol=0)
    x, y = xy[:, 0], xy[:, 1]
    tangential = projection.distort(xy, torch.tensor([0.0, 0.0, 1e-3, -2e-3, 0.0], dtype=torch.float64))
    expected = torch.stack([x + 2e-3 * x * y - 2e-3 * (r2[:, 0] + 2 * x * x), y + 1e-3 * (r2[:, 0] + 2 * y * y) - 4e-3 * x * y], -1)
    torch.testing.assert_close(tangential, expected, atol=1e-15, rtol=0)
    torch.testing.assert_close(projection.distort(xy, torch.zeros(5, dtype=torch.float64)), xy, atol=0, rtol=0)


def test_points_on_the_camera_plane_stay_finite():
    camera = _random_camera(np.random.default_rng(23))
    points = torch.as_tensor(np.stack([camera.center, camera.center + 1e-9 * camera.R[0]]), dtype=torch.float64)
    points.requires_grad_()
    uv, depth = projection.project(points, *(t[0] for t in _camera_tensors([camera])))
    assert torch.all(depth.abs() < 1e-8) and torch.isfinite(uv).all()
    uv.sum().backward()
    assert torch.isfinite(points.grad).all()


def test_project_gradcheck_float64():
    rng = np.random.default_rng(24)
    cameras = [_random_camera(rng, size=64) for _ in range(2)]
    K, R, T, D = (t.clone().requires_grad_() for t in _camera_tensors(cameras))
    points = torch.as_tensor(rng.uniform(-0.5, 0.5, size=(1, 1, 5, 3))).requires_grad_()
    assert torch.autograd.gradcheck(projection.project, (points, K, R, T, D), eps=1e-6, atol=1e-5, rtol=1e-5)


def test_guards():
    eye, zero3, zero5 = torch.eye(3), torch.zeros(3), torch.zeros(5)
    with pytest.raises(ValueError, match="points_world"):
        projection.project(torch.zeros(4, 2), eye, eye, zero3, zero5)
    with pytest.raises(ValueError, match="distort"):
        projection.distort(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="normalized_to_pixels"):
        projection.normalized_to_pixels(torch.zeros(4, 2), torch.eye(2))
