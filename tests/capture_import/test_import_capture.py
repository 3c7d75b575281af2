"""``neuralbody import``: image folders and videos + a calibration -> a capture that read_capture reads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_data import POSE2SIM_DEMO, needs_shared

from neuralbody.capture_import.calibration import read_qualisys, write_qualisys
from neuralbody.capture_import.importer import ImportConfig, import_capture
from neuralbody.cli.import_capture import parse_frames, parse_offsets
from neuralbody.capture_import.opencv_yaml import write_easymocap
from neuralbody.cli.main import main
from neuralbody.data.cameras import Camera, distort_image, project_points
from neuralbody.data.capture import read_capture

REAL = POSE2SIM_DEMO


def flat_cameras(count: int, *, width: int = 40, height: int = 24, D=(0, 0, 0, 0, 0)) -> list[Camera]:
    K = np.array([[30.0, 0, (width - 1) / 2], [0, 30.0, (height - 1) / 2], [0, 0, 1]])
    return [
        Camera(K=K, R=np.eye(3), T=np.array([0.1 * i, 0, 2.0]), D=np.asarray(D, float), width=width, height=height,
               name=f"cam{i + 1:02d}")
        for i in range(count)
    ]


def write_folders(root: Path, cameras: list[Camera], counts: list[int]) -> None:
    """Camera c's frame k is a flat grey image of value 10 k + c (PNG, lossless)."""
    for c, (camera, count) in enumerate(zip(cameras, counts)):
        folder = root / camera.name
        folder.mkdir(parents=True)
        for k in range(count):
            image = np.full((camera.height, camera.width, 3), 10 * k + c, dtype=np.uint8)
            Image.fromarray(image).save(folder / f"frame_{k}.png")  # natural order: frame_10 after frame_9


def test_folders_offsets_range_scale_and_meta(tmp_path):
    cameras = flat_cameras(3)
    write_folders(tmp_path / "src", cameras, [12, 12, 12])
    write_easymocap(cameras, tmp_path / "calib")
    config = ImportConfig(start=2, stop=9, step=3, offsets={"cam02": 1, "cam03": 2}, scale=0.5, undistort=False,
                          image_format="png")
    result = import_capture(tmp_path / "src", tmp_path / "calib", tmp_path / "out", config)
    assert result.source_frames == {"cam01": [2, 5, 8], "cam02": [3, 6, 9], "cam03": [4, 7, 10]}
    capture = read_capture(tmp_path / "out")
    assert capture.num_views == 3 and capture.num_frames == 3 and capture.camera_names == ["cam01", "cam02", "cam03"]
    for view, camera in enumerate(capture.cameras):
        expected = cameras[view].scaled(0.5)
        assert (camera.width, camera.height) == (20, 12)
        np.testing.assert_allclose(camera.K, expected.K)
        np.testing.assert_allclose(camera.T, expected.T, atol=1e-12)
        for frame in range(3):
            value = capture.load_image(frame, view)[0, 0, 0] * 255
            assert round(value) == 10 * result.source_frames[camera.name][frame] + view
    assert capture.mask_path(0, 0) is None and not capture.has_params and not capture.has_vertices
    meta = json.loads((tmp_path / "out" / "neuralbody.json").read_text())
    assert meta["masks"] is False and meta["params"] is False
    assert meta["import"]["offsets"] == {"cam02": 1, "cam03": 2} and meta["import"]["scale"] == 0.5
    assert meta["calibration"]["format"] == "easymocap"


def test_undistortion_moves_a_blob_to_its_pinhole_projection(tmp_path):
    (camera,) = flat_cameras(1, width=80, height=60, D=(-0.4, 0.1, 0.002, -0.001, 0.0))
    point = np.array([[1.1, 0.7, 0.0]])  # towards a corner, where distortion moves it most
    ideal_uv, _ = project_points(camera.undistorted(), point)
    distorted_uv, _ = project_points(camera, point)
    assert np.linalg.norm(ideal_uv - distorted_uv) > 2.0
    v, u = np.mgrid[0 : camera.height, 0 : camera.width]
    blob = np.exp(-((u - ideal_uv[0, 0]) ** 2 + (v - ideal_uv[0, 1]) ** 2) / (2 * 1.5**2))
    recorded = distort_image(camera, np.repeat(blob[..., None], 3, axis=2), order=3)
    (tmp_path / "src" / "cam01").mkdir(parents=True)
    Image.fromarray(np.round(np.clip(recorded, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "src/cam01/0.png")
    write_qualisys([camera], tmp_path / "c.qca.txt")

    def centroid(out: str, undistort: bool) -> tuple[np.ndarray, Camera]:
        import_capture(tmp_path / "src", tmp_path / "c.qca.txt", tmp_path / out,
                       ImportConfig(undistort=undistort, image_format="png"))
        capture = read_capture(tmp_path / out)
        weight = capture.load_image(0, 0)[..., 0].astype(np.float64)
        weight = np.where(weight > 0.2, weight, 0)
        return np.array([(weight * u).sum(), (weight * v).sum()]) / weight.sum(), capture.cameras[0]

    undistorted, written = centroid("out_u", True)
    assert not written.has_distortion
    np.testing.assert_allclose(undistorted, ideal_uv[0], atol=0.2)
    kept, written = centroid("out_d", False)
    np.testing.assert_allclose(written.D, camera.D)
    np.testing.assert_allclose(kept, distorted_uv[0], atol=0.3)


def test_errors_name_the_files(tmp_path):
    cameras = flat_cameras(2)
    write_folders(tmp_path / "src", cameras, [5, 4])
    write_easymocap([dataclasses.replace(c, name=f"other{i}") for i, c in enumerate(cameras)], tmp_path / "bad")
    with pytest.raises(ValueError, match=r"other0, other1.*cam01, cam02"):
        import_capture(tmp_path / "src", tmp_path / "bad", tmp_path / "o1")
    write_easymocap(cameras, tmp_path / "calib")
    with pytest.raises(ValueError, match=r"exceeds what every camera has \(cam01: 5 \(offset 0\), cam02: 4"):
        import_capture(tmp_path / "src", tmp_path / "calib", tmp_path / "o2", ImportConfig(stop=5))
    with pytest.raises(ValueError, match=r"unknown cameras \['cam09'\]"):
        import_capture(tmp_path / "src", tmp_path / "calib", tmp_path / "o3", ImportConfig(offsets={"cam09": 1}))
    result = import_capture(tmp_path / "src", tmp_path / "calib", tmp_path / "o4", ImportConfig(offsets={"cam01": 1}))
    assert result.source_frames["cam01"] == [1, 2, 3, 4]  # default range: what every camera has
    wide = [dataclasses.replace(c, width=20) for c in cameras]
    write_easymocap(wide, tmp_path / "wide")
    with pytest.raises(ValueError, match=r"cam01 is 40x24 but camera 'cam01' is calibrated at 20x24"):
        import_capture(tmp_path / "src", tmp_path / "wide", tmp_path / "o5")


def test_parsers():
    assert parse_frames("0:100") == (0, 100, 1) and parse_frames("10::2") == (10, None, 2)
    assert parse_offsets("cam03=1, cam04=-2") == {"cam03": 1, "cam04": -2}
    for bad in ("5", "3:1", "a:b", "0:4:0"):
        with pytest.raises(ValueError, match="--frames"):
            parse_frames(bad)
    with pytest.raises(ValueError, match="--offsets"):
        parse_offsets("cam03:1")


def test_videos_through_the_cli(tmp_path, capsys):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    cameras = flat_cameras(2, width=64, height=48)
    (tmp_path / "videos").mkdir()
    for c, camera in enumerate(cameras):
        writer = imageio_ffmpeg.write_frames(str(tmp_path / "videos" / f"{camera.name}.mp4"), (64, 48), fps=10,
                                             quality=10, macro_block_size=16)
        writer.send(None)
        for k in range(6):
            writer.send(np.full((48, 64, 3), 30 * k + 10 * c, dtype=np.uint8).tobytes())
        writer.close()
    (tmp_path / "videos" / "cam03.mp4").write_bytes(b"not a video")
    write_easymocap(cameras, tmp_path / "calib")
    with pytest.raises(ValueError, match="cam03.mp4: cannot read this video"):
        import_capture(tmp_path, tmp_path / "calib", tmp_path / "o1")
    (tmp_path / "videos" / "cam03.mp4").unlink()
    code = main(["import", str(tmp_path / "videos"), "--calib", str(tmp_path / "calib" / "intri.yml"),
                 "--out", str(tmp_path / "out"), "--frames", "1:5:2", "--offsets", "cam02=1"])
    assert code == 0 and "2 frames x 2 cameras" in capsys.readouterr().out
    capture = read_capture(tmp_path / "out")
    for view, sources in enumerate(([1, 3], [2, 4])):
        for frame, k in enumerate(sources):
            assert abs(capture.load_image(frame, view).mean() * 255 - (30 * k + 10 * view)) < 4


@needs_shared(REAL / "videos")
def test_real_capture_imports_and_its_scene_centre_lands_in_every_view(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    result = import_capture(REAL / "videos", REAL / "calibration" / "Calib.qca.txt", tmp_path / "out",
                            ImportConfig(stop=3, scale=0.25))
    capture = read_capture(tmp_path / "out")
    assert capture.num_views == 4 and capture.num_frames == 3
    sizes = [(c.width, c.height) for c in capture.cameras]
    assert sizes == [(270, 480), (270, 480), (272, 480), (272, 480)]  # 1080 / 1088 x 1920 videos at 0.25
    assert capture.load_image(2, 3).shape == (480, 272, 3)
    calibrated = read_qualisys(REAL / "calibration" / "Calib.qca.txt")
    for camera, original in zip(capture.cameras, calibrated):
        np.testing.assert_allclose(camera.K, original.scaled(0.25).K, atol=1e-9)
        np.testing.assert_allclose(camera.T, original.T, atol=1e-12)
    # the point nearest to all optical axes (the person, ~0.6 m up) projects well inside every image
    axes = np.array([c.R[2] for c in capture.cameras])
    projectors = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    centres = np.array([c.center for c in capture.cameras])
    point = np.linalg.solve(projectors.sum(0), np.einsum("nij,nj->i", projectors, centres))
    for camera in result.cameras:
        uv, depth = project_points(camera, point[None])
        assert depth[0] > 2.0
        assert 0.25 * camera.width < uv[0, 0] < 0.75 * camera.width
        assert 0.3 * camera.height < uv[0, 1] < 0.7 * camera.height
