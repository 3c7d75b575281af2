"""Cameras: projection against OpenCV's documented formula, undistortion round trips, rays, box clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from neuralbody.data.cameras import (
    Camera,
    distort_image,
    pixel_rays,
    project_box_mask,
    project_points,
    ray_box_intersection,
    undistort_image,
    undistort_points,
)


def _random_camera(rng: np.random.Generator, *, distortion: bool = True, size: int = 1024) -> Camera:
    """A camera 3 m from the origin looking roughly at it, with realistic distortion."""
    rotation = Rotation.from_rotvec(rng.normal(size=3) * 0.3).as_matrix()
    center = -rotation.T @ np.array([0.0, 0.0, 3.0])
    focal = rng.uniform(900, 1300)
    K = np.array(
        [
            [focal, 0.0, size / 2 + rng.uniform(-20, 20)],
            [0.0, focal * rng.uniform(0.98, 1.02), size / 2 + rng.uniform(-20, 20)],
            [0, 0, 1],
        ]
    )
    D = np.zeros(5)
    if distortion:
        D = np.array(
            [
                rng.uniform(-0.1, 0.1),
                rng.uniform(-0.05, 0.05),
                rng.uniform(-2e-3, 2e-3),
                rng.uniform(-2e-3, 2e-3),
                rng.uniform(-0.01, 0.01),
            ]
        )
    return Camera(K=K, R=rotation, T=-rotation @ center, D=D, width=size, height=size, name="cam")


def _opencv_project(K, rvec_matrix, tvec, D, point):
    """OpenCV's documented projectPoints model for one point, written out term by term."""
    X, Y, Z = rvec_matrix @ point + tvec
    x, y = X / Z, Y / Z
    k1, k2, p1, p2, k3 = D
    r2 = x * x + y * y
    factor = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    x2 = x * factor + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    y2 = y * factor + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return K[0, 0] * x2 + K[0, 1] * y2 + K[0, 2], K[1, 1] * y2 + K[1, 2]


def _opencv_distort_normalized(x, y, D):
    k1, k2, p1, p2, k3 = D
    r2 = x * x + y * y
    factor = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    return x * factor + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * factor + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y


def test_project_points_matches_opencv_formula():
    rng = np.random.default_rng(1)
    for _ in range(10):
        camera = _random_camera(rng)
        points = rng.uniform(-0.8, 0.8, size=(50, 3))
        uv, depth = project_points(camera, points)
        for point, (u, v), z in zip(points, uv, depth, strict=True):
            u_ref, v_ref = _opencv_project(camera.K, camera.R, camera.T, camera.D, point)
            assert abs(u - u_ref) < 1e-9 and abs(v - v_ref) < 1e-9
            assert abs(z - (camera.R @ point + camera.T)[2]) < 1e-12


def test_camera_centre_is_at_depth_zero_and_points_behind_have_negative_depth():
    camera = _random_camera(np.random.default_rng(2))
    _, depth = project_points(camera, camera.center[None])
    assert abs(depth[0]) < 1e-12
    behind = camera.center - 2.0 * camera.R[2]  # two metres behind, along -optical axis
    assert project_points(camera, behind[None])[1][0] == pytest.approx(-2.0)


def test_undistort_points_inverts_distortion_to_a_micro_pixel():
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(50):
        camera = _random_camera(rng)
        # ideal pixels over (and a little beyond) the image, distorted with the reference formula
        uv_ideal = rng.uniform(-50, camera.width + 50, size=(400, 2))
        x = (uv_ideal[:, 0] - camera.K[0, 2]) / camera.K[0, 0]
        y = (uv_ideal[:, 1] - camera.K[1, 2]) / camera.K[1, 1]
        xd, yd = _opencv_distort_normalized(x, y, camera.D)
        uv_distorted = np.stack([xd * camera.K[0, 0] + camera.K[0, 2], yd * camera.K[1, 1] + camera.K[1, 2]], axis=1)
        recovered = undistort_points(camera, uv_distorted)
        worst = max(worst, float(np.abs(recovered - uv_ideal).max()))
    assert worst < 1e-6, worst


@pytest.mark.parametrize("D", [[0.3, 0.1, 0.0, 0.0, 0.0], [-0.4, 0.2, 1e-3, -1e-3, -0.05]])
def test_undistort_points_converges_for_strong_distortion(D):
    """Plain fixed-point iteration (OpenCV's, 20 steps) is off by ~3e-3 px for k1 = 0.3; Newton is not."""
    camera = Camera(
        K=np.array([[1100.0, 0, 511.5], [0, 1100.0, 511.5], [0, 0, 1]]),
        R=np.eye(3),
        T=np.zeros(3),
        D=np.array(D),
        width=1024,
        height=1024,
    )
    uv_ideal = np.random.default_rng(11).uniform(0, 1024, size=(2000, 2))
    x, y = ((uv_ideal - 511.5) / 1100.0).T
    xd, yd = _opencv_distort_normalized(x, y, camera.D)
    uv_distorted = np.stack([xd, yd], axis=1) * 1100.0 + 511.5
    assert np.abs(undistort_points(camera, uv_distorted) - uv_ideal).max() < 1e-6


def test_undistort_points_is_identity_without_distortion():
    camera = _random_camera(np.random.default_rng(4), distortion=False)
    uv = np.random.default_rng(5).uniform(0, 1024, size=(20, 2))
    np.testing.assert_array_equal(undistort_points(camera, uv), uv)


def test_pixel_rays_pass_through_the_projected_points():
    rng = np.random.default_rng(6)
    for _ in range(5):
        camera = _random_camera(rng)
        points = rng.uniform(-0.8, 0.8, size=(200, 3))
        uv, _ = project_points(camera, points)
        rays_o, rays_d = pixel_rays(camera, uv)
        np.testing.assert_allclose(np.linalg.norm(rays_d, axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(rays_o, np.broadcast_to(camera.center, rays_o.shape), atol=1e-12)
        offset = points - rays_o
        t = np.einsum("ni,ni->n", offset, rays_d)
        assert np.all(t > 0), "the point must lie in front of the camera along the ray"
        distance = np.linalg.norm(offset - t[:, None] * rays_d, axis=1)
        assert distance.max() < 1e-7, distance.max()


def test_pixel_rays_default_grid_is_row_major_pixel_centres():
    camera = Camera(
        K=np.array([[20.0, 0, 4.5], [0, 20.0, 2.5], [0, 0, 1]]),
        R=np.eye(3),
        T=np.zeros(3),
        D=np.zeros(5),
        width=10,
        height=6,
    )
    rays_o, rays_d = pixel_rays(camera)
    assert rays_d.shape == (60, 3)
    uv, _ = project_points(camera, rays_o + rays_d)
    v, u = np.divmod(np.arange(60), 10)
    np.testing.assert_allclose(uv, np.stack([u, v], axis=1), atol=1e-9)


def _box_oracle(origin, direction, box_min, box_max, t_max=10.0, samples=40001):
    t = np.linspace(0.0, t_max, samples)
    points = origin + t[:, None] * direction
    inside = np.all((points >= box_min) & (points <= box_max), axis=1)
    if not inside.any():
        return None
    return t[inside][0], t[inside][-1], t[1] - t[0]


def test_ray_box_intersection_matches_brute_force_sampling():
    rng = np.random.default_rng(7)
    box_min, box_max = np.array([-0.3, -0.9, -0.2]), np.array([0.4, 0.8, 0.25])
    origins, directions = [], []
    for _ in range(150):
        origins.append(rng.uniform(-2, 2, size=3))
        directions.append(rng.normal(size=3))
    for _ in range(30):  # from inside the box
        origins.append(rng.uniform(box_min, box_max))
        directions.append(rng.normal(size=3))
    for axis in range(3):  # parallel to an axis: through the box, beside it, and from inside
        for sign in (-1.0, 1.0):
            d = np.zeros(3)
            d[axis] = sign
            o = (box_min + box_max) / 2
            o = o.copy()
            o[axis] = -3.0 * sign
            origins.append(o), directions.append(d)
            beside = o.copy()
            beside[(axis + 1) % 3] = box_max[(axis + 1) % 3] + 0.05
            origins.append(beside), directions.append(d)
            origins.append((box_min + box_max) / 2), directions.append(d)
    rays_o = torch.tensor(np.array(origins))
    rays_d = torch.tensor(np.array(directions))
    near, far, hit = ray_box_intersection(rays_o, rays_d, torch.tensor(box_min), torch.tensor(box_max))
    hits_seen = 0
    for i in range(len(origins)):
        oracle = _box_oracle(np.array(origins[i]), np.array(directions[i]), box_min, box_max)
        if oracle is None:
            assert not hit[i], i
            continue
        hits_seen += 1
        first, last, step = oracle
        assert hit[i], i
        assert abs(near[i].item() - first) <= step + 1e-9
        assert abs(far[i].item() - last) <= step + 1e-9
    assert hits_seen > 40


def test_ray_box_intersection_inside_origin_has_zero_near_and_behind_box_misses():
    rays_o = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    rays_d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far, hit = ray_box_intersection(rays_o, rays_d, [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    assert near[0] == 0 and far[0] == pytest.approx(1.0) and hit[0]
    assert not hit[1]
    assert near.dtype == torch.float32


def test_camera_scaled_halves_pixel_coordinates_under_the_pixel_centre_convention():
    rng = np.random.default_rng(8)
    camera = _random_camera(rng)
    half = camera.scaled(0.5)
    assert (half.width, half.height) == (512, 512)
    points = rng.uniform(-0.8, 0.8, size=(100, 3))
    uv, depth = project_points(camera, points)
    uv_half, depth_half = project_points(half, points)
    np.testing.assert_allclose(uv_half, (uv + 0.5) * 0.5 - 0.5, atol=1e-9)
    np.testing.assert_allclose(depth_half, depth)
    # the top-left pixel's outer corner (-0.5, -0.5) stays the outer corner
    corner_ray = pixel_rays(camera, np.array([[-0.5, -0.5]]))[1]
    np.testing.assert_allclose(pixel_rays(half, np.array([[-0.5, -0.5]]))[1], corner_ray, atol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        camera.scaled(0.0)


def test_project_box_mask_head_on_is_the_expected_rectangle():
    camera = Camera(
        K=np.array([[100.0, 0, 49.5], [0, 100.0, 39.5], [0, 0, 1]]),
        R=np.eye(3),
        T=np.zeros(3),
        D=np.zeros(5),
        width=100,
        height=80,
    )
    # near face at z = 2: u in 49.5 + 50 * [-0.213, 0.213] = [38.85, 60.15], v in 39.5 + 50 * [-0.107, 0.107]
    mask = project_box_mask(camera, np.array([-0.213, -0.107, 2.0]), np.array([0.213, 0.107, 3.0]))
    expected = np.zeros((80, 100), dtype=bool)
    expected[35:45, 39:61] = True  # v in [34.15, 44.85] -> rows 35..44, u in [38.85, 60.15] -> columns 39..60
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(ValueError, match="behind the camera"):
        project_box_mask(camera, np.array([-1.0, -1, -1]), np.array([1.0, 1, 1]))


def _checkerboard(u: np.ndarray, v: np.ndarray, square: float = 16.0) -> np.ndarray:
    return ((np.floor(u / square) + np.floor(v / square)) % 2).astype(np.float64)


def test_undistort_image_recovers_a_distorted_checkerboard():
    size = 160
    K = np.array([[150.0, 0, 79.5], [0, 150.0, 79.5], [0, 0, 1]])
    camera = Camera(
        K=K, R=np.eye(3), T=np.zeros(3), D=np.array([-0.08, 0.02, 1e-3, -1e-3, 0.005]), width=size, height=size
    )
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    ideal = _checkerboard(u, v)
    # the distorted picture, made analytically: each distorted pixel shows the ideal point it comes from
    uv_ideal = undistort_points(camera, np.stack([u.ravel(), v.ravel()], axis=1))
    distorted = _checkerboard(uv_ideal[:, 0], uv_ideal[:, 1]).reshape(size, size)
    assert np.mean(distorted != ideal) > 0.02  # the distortion is visible
    restored = undistort_image(camera, distorted, order=0)
    # compare away from square edges (nearest resampling may pick the neighbour there) and borders
    edge_distance = np.minimum(np.abs((u + 8) % 16 - 8), np.abs((v + 8) % 16 - 8))
    interior = (edge_distance > 1.5) & (u > 8) & (u < size - 8) & (v > 8) & (v < size - 8)
    np.testing.assert_array_equal(restored[interior], ideal[interior])
    # and distort_image is the inverse operation
    redistorted = distort_image(camera, ideal.astype(np.float32), order=0)
    assert redistorted.dtype == np.float32
    assert np.mean(redistorted[interior] != distorted[interior]) < 0.01


def test_undistort_image_keeps_dtypes():
    camera = _random_camera(np.random.default_rng(9), size=64)
    camera = camera.scaled(1.0)
    mask = np.zeros((64, 64), dtype=bool)
    mask[20:40, 20:40] = True
    out = undistort_image(camera, mask, order=0)
    assert out.dtype == bool and 300 < out.sum() < 500
    rgb = np.full((64, 64, 3), 200, dtype=np.uint8)
    out = undistort_image(camera, rgb, order=1)
    assert out.dtype == np.uint8 and out[32, 32].tolist() == [200, 200, 200]


def test_camera_validation_and_normalisation():
    K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    camera = Camera(K=K, R=np.eye(3), T=np.array([[1.0], [2.0], [3.0]]), D=np.zeros((1, 4)), width=100, height=100)
    assert camera.T.shape == (3,) and camera.D.shape == (5,)
    assert camera == camera and camera != Camera(K=K, R=np.eye(3), T=np.zeros(3), D=np.zeros(5), width=100, height=100)
    bad = [
        dict(K=np.eye(2)),
        dict(R=np.full((3, 3), np.nan)),
        dict(R=2 * np.eye(3)),
        dict(R=np.diag([2.0, 0.5, 1.0])),  # det 1 but not orthogonal
        dict(D=np.array([0.1, 0, 0, 0, 0, 0.3, 0, 0])),
        dict(K=np.array([[-100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])),
        dict(width=0),
        dict(T=np.zeros(4)),
    ]
    for override in bad:
        kwargs = dict(K=K, R=np.eye(3), T=np.zeros(3), D=np.zeros(5), width=100, height=100, name="c7")
        kwargs.update(override)
        with pytest.raises(ValueError, match="c7"):
            Camera(**kwargs)


def test_shape_guards_raise_value_error():
    camera = _random_camera(np.random.default_rng(10), size=32)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        project_points(camera, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        undistort_points(camera, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        pixel_rays(camera, np.zeros(4))
    with pytest.raises(ValueError, match="32 x 32"):
        undistort_image(camera, np.zeros((31, 32)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        ray_box_intersection(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="3 values"):
        ray_box_intersection(torch.zeros(4, 3), torch.ones(4, 3), torch.zeros(2), torch.ones(3))
    assert math.isfinite(
        float(ray_box_intersection(torch.zeros(1, 3), torch.ones(1, 3), torch.zeros(3), torch.ones(3))[1][0])
    )
