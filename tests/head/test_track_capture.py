"""The tracked capture: crop geometry, the layout train-head reads, frame sources, the MediaPipe wrapper's edges."""

import numpy as np
import pytest
import torch
from head_fixtures import tiny_rig

from neuralbody.data.cameras import Camera, project_points
from neuralbody.geometry.rotations import look_at_rotation, matrix_to_axis_angle
from neuralbody.head.capture import read_head_capture
from neuralbody.head.face_mesh import normalised_to_pixels
from neuralbody.head.square_crop import Crop, crop_image, square_around
from neuralbody.head.track_capture import (capture_cameras, crop_intrinsics, face_crop, frame_params,
                                           write_capture_files, write_frame)
from neuralbody.head.track_fit import TrackedHead


def test_crop_intrinsics_move_pixels_as_the_crop_does():
    width, height, focal = 120, 80, 100.0
    crop = Crop(x0=30, y0=-10, side=60, resolution=30)
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    points = np.array([[0.01, -0.02, 0.5], [-0.05, 0.03, 0.7]])
    camera = Camera(K=K, R=np.eye(3), T=np.zeros(3), D=np.zeros(5), width=width, height=height)
    cropped = Camera(K=crop_intrinsics(focal, width, height, crop), R=np.eye(3), T=np.zeros(3), D=np.zeros(5),
                     width=30, height=30)
    uv, _ = project_points(camera, points)
    expected = (uv - np.array([crop.x0, crop.y0]) + 0.5) * crop.scale - 0.5
    np.testing.assert_allclose(project_points(cropped, points)[0], expected, atol=1e-9)


def test_crop_image_is_a_block_mean_with_black_outside():
    image = np.zeros((6, 8, 3), np.uint8)
    image[0:2, 2:4] = 200
    out = crop_image(image, Crop(x0=-2, y0=-2, side=8, resolution=4))  # 2 x 2 blocks, the window starts off the image
    assert out.shape == (4, 4, 3)
    np.testing.assert_allclose(out[1, 2], 200 / 255.0, atol=1e-6)  # window rows 2-3, columns 4-5: image rows 0-1, columns 2-3
    assert out[0].max() == 0.0 and out[:, 0].max() == 0.0
    mask = crop_image(np.ones((6, 8), bool), Crop(x0=0, y0=0, side=4, resolution=4))
    assert mask.shape == (4, 4) and mask.min() == 1.0


def test_crop_maps_pixels_both_ways():
    crop = square_around(np.array([10.0, 20.0]), np.array([50.0, 40.0]), 32, margin=2.0)
    assert crop.side == 80 and (crop.x0, crop.y0) == (-10, -10)
    image_points = np.array([[0.0, 0.0], [33.5, 17.25]])
    in_crop = (image_points - np.array([crop.x0, crop.y0]) + 0.5) * crop.scale - 0.5
    np.testing.assert_allclose(crop.to_image(in_crop), image_points, atol=1e-12)


def test_face_crop_holds_every_landmark():
    landmarks = np.array([[[10.0, 20.0], [30.0, 50.0]], [[15.0, 25.0], [40.0, 45.0]], [[0.0, 0.0], [999.0, 999.0]]])
    crop = face_crop(landmarks, np.array([True, True, False]), 64, margin=1.5, lift=0.0)
    assert crop.side == 45 and crop.resolution == 64
    assert crop.x0 <= 10 and crop.x0 + crop.side >= 40 and crop.y0 <= 20 and crop.y0 + crop.side >= 50
    with pytest.raises(ValueError, match="no frame"):
        face_crop(landmarks, np.zeros(3, bool), 64)


def test_written_capture_is_read_back(tmp_path):
    rig = tiny_rig()
    frames = 2
    target = np.array([0.0, -0.04, 0.69])
    centres = [target + np.array([0.0, -0.5, 0.0]), target + np.array([0.1, -0.5, 0.02])]
    rotations = torch.tensor(np.stack([look_at_rotation(c, target) for c in centres]))
    tracked = TrackedHead(rotation=matrix_to_axis_angle(rotations),
                          translation=-(rotations @ torch.tensor(np.stack(centres))[:, :, None])[:, :, 0],
                          jaw=torch.tensor([0.0, 0.2], dtype=torch.float64),
                          expression=torch.rand(frames, 52, dtype=torch.float64), focal=200.0,
                          residual_px=torch.tensor([1.0, float("nan")], dtype=torch.float64))
    crop = Crop(x0=40, y0=20, side=120, resolution=32)
    cameras = capture_cameras(tracked, 200, 160, crop)
    params = frame_params(rig, tracked)
    image = np.full((160, 200, 3), 180, np.uint8)
    for t in range(frames):
        write_frame(tmp_path, t, cameras[t], rig, params[t], image, np.ones((160, 200), bool), crop)
    write_capture_files(tmp_path, rig, tracked, cameras, {"source": "video.mp4"}, {"found": np.array([True, False])})
    capture = read_head_capture(tmp_path)
    assert capture.split("train") == [0, 1] and capture.split("test") == [] and capture.meta["train_camera"] == "cam00"
    read = capture.params(1)
    np.testing.assert_allclose(read.expression, tracked.expression[1].numpy(), atol=1e-6)
    np.testing.assert_allclose(read.pose[3], [0.2, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(read.pose[:3], 0.0)
    camera = capture.camera(1, "cam00")
    np.testing.assert_allclose(camera.K, crop_intrinsics(200.0, 200, 160, crop), atol=1e-9)
    np.testing.assert_allclose(camera.T, tracked.translation[1].numpy(), atol=1e-9)
    mask = capture.mask(0, "cam00")
    assert mask.shape == (32, 32) and 0 < mask.mean() < 1  # the head box cuts the person mask
    assert capture.image(0, "cam00")[~mask].max() == 0.0


def test_normalised_landmarks_to_pixel_centres():
    points = normalised_to_pixels(np.array([[0.0, 0.0, 0.1], [0.5, 1.0, 0.0]]), 10, 4)
    np.testing.assert_allclose(points, [[-0.5, -0.5], [4.5, 3.5]])
    with pytest.raises(ValueError):
        normalised_to_pixels(np.zeros((3,)), 10, 4)


def test_track_head_without_mediapipe_says_how_to_install(tmp_path, capsys):
    pytest.importorskip("torch")
    try:
        import mediapipe  # noqa: F401

        pytest.skip("mediapipe is installed")
    except ImportError:
        pass
    from neuralbody.cli.main import main

    assert main(["track-head", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
