"""Triangulation, Procrustes and the fitting objectives (no body model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import Camera, project_points
from neuralbody.fitting import objectives
from neuralbody.fitting.keypoints import keypoints2d_from_points
from neuralbody.fitting.optimize import kabsch
from neuralbody.geometry.rotations import look_at_rotation
from neuralbody.data.triangulation import _camera_matrices, dlt, reference_dlt, triangulate


def _rotation(axis_angle) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(axis_angle).as_matrix()


def ring_cameras(count: int = 4, *, distortion: bool = True, size: int = 512) -> list[Camera]:
    """Cameras on a 3 m ring at 1.2 m height looking at (0, 0, 1) (OpenCV axes)."""
    cameras = []
    for c in range(count):
        angle = 2 * np.pi * c / count + 0.3
        centre = np.array([3 * np.cos(angle), 3 * np.sin(angle), 1.2])
        R = look_at_rotation(centre, np.array([0.0, 0.0, 1.0]))
        D = np.array([0.05, -0.02, 0.001, -0.001, 0.0]) * (c + 1) / count if distortion else np.zeros(5)
        K = np.array([[500.0, 0, size / 2], [0, 505.0, size / 2], [0, 0, 1]])
        cameras.append(Camera(K=K, R=R, T=-R @ centre, D=D, width=size, height=size, name=f"cam{c}"))
    return cameras


def random_points(count: int = 17, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform([-0.4, -0.3, 0.1], [0.4, 0.3, 1.8], size=(count, 3))


def test_triangulation_exact_without_noise():
    cameras, points = ring_cameras(), random_points()
    result = triangulate(cameras, keypoints2d_from_points(cameras, points))
    assert result.valid.all()
    np.testing.assert_allclose(result.points, points, atol=1e-6)
    assert result.mean_residual_px() < 1e-4


def test_dlt_matches_reference_loop():
    cameras, points = ring_cameras(5), random_points(9, seed=1)
    rng = np.random.default_rng(2)
    xy = rng.normal(size=(5, 9, 2)) * 0.01 + np.stack(
        [project_points(Camera(np.eye(3), c.R, c.T, np.zeros(5), 1, 1), points)[0] for c in cameras]
    )
    weights = rng.uniform(0, 1, size=(5, 9))
    weights[:4, 3] = 0.0  # keypoint 3 seen by one view only
    fast = dlt(_camera_matrices(cameras), xy, weights)
    slow = reference_dlt(_camera_matrices(cameras), xy, weights)
    np.testing.assert_allclose(fast, slow, atol=1e-9)
    assert np.isnan(fast[3]).all()


def test_triangulation_with_noise_and_an_outlier_view():
    cameras, points = ring_cameras(), random_points(seed=3)
    observed = keypoints2d_from_points(cameras, points, noise_px=1.0, rng=np.random.default_rng(4))
    noisy = triangulate(cameras, observed)
    assert np.linalg.norm(noisy.points - points, axis=1).mean() < 0.01  # 1 px at 3 m, f = 500: ~6 mm per view
    observed[1, :, :2] += 80.0  # one view detected the wrong thing
    plain = triangulate(cameras, observed, iterations=0)
    robust = triangulate(cameras, observed, iterations=5)
    plain_error = np.linalg.norm(plain.points - points, axis=1).mean()
    robust_error = np.linalg.norm(robust.points - points, axis=1).mean()
    assert robust_error < 0.25 * plain_error
    assert robust_error < 0.02
    assert robust.weights[1].max() < 0.01 and np.median(robust.weights[[0, 2, 3]]) > 0.9


def test_triangulation_missing_and_bad_entries():
    cameras, points = ring_cameras(3), random_points(5, seed=5)
    observed = keypoints2d_from_points(cameras, points)
    observed[:2, 0, 2] = 0.0  # keypoint 0 seen by one view
    observed[0, 1, :] = np.nan  # NaN: treated as missing
    observed[1, 2, :2] = 0.0  # (0, 0): not detected
    result = triangulate(cameras, observed)
    assert not result.valid[0] and np.isnan(result.points[0]).all()
    np.testing.assert_allclose(result.points[1:], points[1:], atol=1e-6)
    with pytest.raises(ValueError, match=r"\(3, K, 3\)"):
        triangulate(cameras, observed[:2])


def test_kabsch_recovers_a_rigid_transform():
    source = torch.as_tensor(random_points(10, seed=6))
    R_true = torch.as_tensor(_rotation([0.3, -1.2, 2.0]))
    t_true = torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64)
    target = source @ R_true.T + t_true
    R, t = kabsch(source, target, torch.ones(10, dtype=torch.float64))
    torch.testing.assert_close(R, R_true, atol=1e-9, rtol=0)
    torch.testing.assert_close(t, t_true, atol=1e-9, rtol=0)
    weights = torch.ones(10, dtype=torch.float64)
    weights[0] = 0.0  # a zero-weight outlier is ignored
    target[0] += 5.0
    R, t = kabsch(source, target, weights)
    torch.testing.assert_close(R, R_true, atol=1e-9, rtol=0)
    with pytest.raises(ValueError):
        kabsch(source, target[:5], weights)


def test_camera_tensors_project_into_every_camera_like_project_points():
    cameras, points = ring_cameras(), random_points(seed=7)
    tensors = objectives.CameraTensors.from_cameras(cameras, dtype=torch.float64)
    uv, depth = tensors.project(torch.as_tensor(points)[None])
    for c, camera in enumerate(cameras):
        expected_uv, expected_depth = project_points(camera, points)
        np.testing.assert_allclose(uv[0, c].numpy(), expected_uv, atol=1e-9)
        np.testing.assert_allclose(depth[0, c].numpy(), expected_depth, atol=1e-12)
    with pytest.raises(ValueError):
        tensors.project(torch.as_tensor(points))


def test_robust_reprojection_and_priors():
    uv = torch.zeros(1, 2, 3, 2)
    observed = torch.zeros(1, 2, 3, 3)
    observed[..., 2] = 1.0
    assert objectives.robust_reprojection(uv, observed).item() == 0.0
    observed[0, 0, 0, 0] = 1000.0  # a huge outlier saturates at sigma^2 (weighted mean over 6 entries)
    value = objectives.robust_reprojection(uv, observed, sigma_px=20.0).item()
    assert 400.0 / 6 * 0.99 < value < 400.0 / 6
    observed[0, 0, 0, 2] = 0.0  # ...and confidence 0 drops it
    assert objectives.robust_reprojection(uv, observed).item() == 0.0
    poses = torch.zeros(2, 4, 3)
    weights, limits = torch.ones(4), torch.full((4,), 1.0)
    assert objectives.pose_prior(poses, weights=weights, limits=limits).abs().max() == 0.0
    poses[0, 1, 0] = 1.5
    poses[1, 2, 0] = -0.5
    energy = objectives.pose_prior(poses, weights=weights, limits=limits, knee_ids=[2])
    torch.testing.assert_close(energy, torch.tensor([1.5**2 + 0.5**2, 0.25 + 0.25]))
    with pytest.raises(ValueError):
        objectives.pose_prior(poses[:, :3], weights=weights, limits=limits)
    shapes = torch.tensor([[0.5, 1.2]])
    torch.testing.assert_close(
        objectives.shape_prior(shapes, mean=torch.tensor([0.5, 0.5])), torch.tensor([0.49 + 100 * 0.04])
    )


def test_silhouette_loss_prefers_the_mask():
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 15:25] = True
    target = objectives.SilhouetteTarget.from_masks([mask, np.zeros_like(mask)], max_boundary=64)
    rows, cols = np.nonzero(mask)
    inside = torch.as_tensor(np.stack([cols, rows], 1), dtype=torch.float32)  # every mask pixel
    uv_inside = inside[None, None].expand(1, 2, -1, -1)
    uv_shifted = (inside + torch.tensor([12.0, 0.0]))[None, None].expand(1, 2, -1, -1)
    good = objectives.silhouette_loss(uv_inside, target)
    bad = objectives.silhouette_loss(uv_shifted, target)
    assert good.item() < 1e-6 and bad.item() > 10.0
    shifted = uv_shifted.clone().requires_grad_(True)
    objectives.silhouette_loss(shifted, target).backward()
    assert shifted.grad[0, 0, :, 0].sum() > 0  # pulled back to the left, towards the mask
    assert shifted.grad[0, 1].abs().max() == 0  # the empty-mask view contributes nothing


def test_mask_beyond_body_counts_the_mask_the_body_does_not_explain():
    from neuralbody.fitting.report import mask_beyond_body

    camera = ring_cameras(1, distortion=False, size=64)[0]
    # a dense grid of "vertices" on a 12 x 12 cm square facing the camera (about 20 x 20 px)
    axis = camera.R[2]  # the viewing direction, world
    right, down = camera.R[0], camera.R[1]
    grid = np.stack(np.meshgrid(np.linspace(-0.06, 0.06, 40), np.linspace(-0.06, 0.06, 40)), -1).reshape(-1, 2)
    vertices = np.array([0.0, 0.0, 1.0]) + grid[:, :1] * right + grid[:, 1:] * down
    uv, _ = project_points(camera, vertices)
    mask = np.zeros((64, 64), dtype=bool)
    u0, v0 = np.floor(uv.min(0)).astype(int)
    u1, v1 = np.ceil(uv.max(0)).astype(int)
    mask[v0:v1, u0:u1] = True  # the body's own silhouette
    assert mask_beyond_body(mask, camera, vertices, radius_px=2.0) == 0.0
    extra = np.zeros_like(mask)
    extra[2:8, 2:8] = True  # a bystander in the corner, 36 pixels
    share = mask_beyond_body(mask | extra, camera, vertices, radius_px=2.0)
    assert share == pytest.approx(36 / (mask | extra).sum())
    assert mask_beyond_body(np.zeros_like(mask), camera, vertices, radius_px=2.0) == 0.0
    assert mask_beyond_body(mask, camera, vertices - 10 * axis, radius_px=2.0) == 1.0  # body behind the camera
    with pytest.raises(ValueError, match=r"mask must be \(64, 64\)"):
        mask_beyond_body(mask[:10], camera, vertices, radius_px=2.0)
