"""Crops, cropped cameras and locating the person: a known point lands on its pixel, masks place a known sphere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import Camera, pixel_rays, project_points
from neuralbody.data.projection import project
from neuralbody.geometry.raycast import cast_rays
from neuralbody.geometry.rotations import look_at_rotation
from neuralbody.recon.locate import locate_person, nearest_point_to_rays
from neuralbody.recon.views import CropWindow, crop_camera, crop_image, prepare_views


def _camera(azimuth: float, *, size=(96, 80), distortion=(0.05, -0.01, 0.001, -0.001, 0.0), radius=3.0) -> Camera:
    centre = np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), 1.1])
    R = look_at_rotation(centre, np.array([0.0, 0.0, 0.9]))
    K = np.array([[90.0, 0.0, size[0] / 2 - 0.3], [0.0, 92.0, size[1] / 2 + 0.4], [0.0, 0.0, 1.0]])
    return Camera(K=K, R=R, T=-R @ centre, D=np.array(distortion), width=size[0], height=size[1], name=f"c{azimuth:.2f}")


def test_cropped_camera_maps_pixels_as_the_crop_does():
    camera = _camera(0.3)
    window = CropWindow(x0=17, y0=-5, side=50)
    cropped = crop_camera(camera, window, 25)
    points = np.random.default_rng(0).normal([0, 0, 0.9], 0.3, (50, 3))
    uv, _ = project_points(camera, points)
    uv_crop, _ = project_points(cropped, points)
    expected = (uv - [window.x0, window.y0] + 0.5) * 0.5 - 0.5
    np.testing.assert_allclose(uv_crop, expected, atol=1e-9)


def test_crop_image_moves_and_scales_a_dot():
    image = np.zeros((80, 96, 1), dtype=np.float32)
    image[30:32, 40:42] = 1.0  # a 2 x 2 dot centred at pixel (40.5, 30.5)
    window = CropWindow(x0=20, y0=10, side=40)
    same = crop_image(image, window, 40)
    assert same[20:22, 20:22].min() == 1.0 and same.sum() == 4.0
    half = crop_image(image, window, 20)[..., 0]  # antialiased: the dot's weight centred where the crop maps it
    rows, cols = np.mgrid[0:20, 0:20]
    centroid = np.array([(half * cols).sum(), (half * rows).sum()]) / half.sum()
    np.testing.assert_allclose(centroid, [10.0, 10.0], atol=1e-5)  # (40.5 - 20 + 0.5) / 2 - 0.5 = 10
    assert np.unravel_index(half.argmax(), half.shape) == (10, 10) and abs(half.sum() - 1.0) < 1e-5
    outside = crop_image(image, CropWindow(x0=-30, y0=-30, side=20), 20)
    assert outside.shape == (20, 20, 1) and outside.sum() == 0.0


def test_known_point_lands_on_its_pixel_in_the_prepared_view():
    cameras = [_camera(a) for a in (0.0, 1.7)]
    point = np.array([0.05, -0.04, 1.2])
    box_min, box_max = np.array([-0.5, -0.5, 0.0]), np.array([0.5, 0.5, 1.8])
    images, masks = [], []
    for camera in cameras:
        uv, _ = project_points(camera, point[None])  # lens distortion included
        u, v = np.round(uv[0]).astype(int)
        image = np.zeros((camera.height, camera.width, 3), dtype=np.float32)
        image[v, u] = 1.0
        images.append(image)
        masks.append(np.ones((camera.height, camera.width), dtype=bool))
    views = prepare_views(images, masks, cameras, box_min, box_max, size=32)
    assert views.images.shape == (2, 4, 32, 32)
    uv, _ = project(torch.tensor(point, dtype=torch.float32)[None], views.K, views.R, views.T, views.D)  # (2, 1, 2)
    for view in range(2):
        brightest = torch.nonzero(views.images[view, 0] == views.images[view, 0].max())[0]
        # the dot, shrunk by the resize, is within a crop pixel of where the cropped camera projects the point
        assert abs(float(uv[view, 0, 0]) - int(brightest[1])) <= 1.0
        assert abs(float(uv[view, 0, 1]) - int(brightest[0])) <= 1.0
    assert float(views.images[:, 3, 16, 16].min()) > 0.9999  # the mask channel (zeros only beyond the image)


def test_nearest_point_to_rays_known_answer():
    target = np.array([0.3, -0.2, 1.0])
    origins = np.array([[3.0, 0, 1], [0, 3.0, 1.5], [-2.0, -2.0, 0.5]])
    directions = target - origins
    np.testing.assert_allclose(nearest_point_to_rays(origins, directions), target, atol=1e-9)
    with pytest.raises(ValueError, match="parallel"):
        nearest_point_to_rays(origins[:2], np.array([[1.0, 0, 0], [1.0, 0, 0]]))


def test_locate_person_boxes_a_sphere_from_its_silhouettes():
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    centre = np.array([0.2, -0.1, 0.9])
    vertices, faces = torch.tensor(sphere.vertices + centre), torch.tensor(sphere.faces)
    cameras = [_camera(a, distortion=(0, 0, 0, 0, 0)) for a in np.linspace(0, 2 * np.pi, 4, endpoint=False)]
    masks = []
    for camera in cameras:
        origins, directions = pixel_rays(camera)
        hits = cast_rays(vertices, faces, torch.tensor(origins), torch.tensor(directions))
        masks.append(hits.hit.numpy().reshape(camera.height, camera.width))
    box = locate_person(cameras, masks, voxel=0.02)
    assert np.all(box.box_min <= centre - 0.3 + 0.01) and np.all(box.box_max >= centre + 0.3 - 0.01)
    assert np.all(box.box_min > centre - 0.3 - 0.12) and np.all(box.box_max < centre + 0.3 + 0.12)  # a hull of 4 views
    with pytest.raises(ValueError, match="two or more views"):
        locate_person(cameras[:1], masks[:1])
