"""Calibration readers for ``neuralbody import``: round trips, the OpenCV YAML parser, the real Qualisys file."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from shared_data import POSE2SIM_DEMO, needs_shared

from neuralbody.capture_import.calibration import (
    detect_format,
    read_annots_cameras,
    read_calibration,
    read_qualisys,
    write_annots_cameras,
    write_qualisys,
)
from neuralbody.capture_import.opencv_yaml import (
    format_opencv_yaml,
    parse_opencv_yaml,
    read_easymocap,
    write_easymocap,
)
from neuralbody.data.cameras import Camera

REAL_QCA = POSE2SIM_DEMO / "calibration" / "Calib.qca.txt"


def random_cameras(count: int = 3, seed: int = 0) -> list[Camera]:
    """Cameras on a ring looking roughly at the origin, with distortion, different sizes."""
    rng = np.random.default_rng(seed)
    cameras = []
    for index in range(count):
        R = Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
        T = rng.normal(size=3) + np.array([0, 0, 3.0])
        K = np.array([[800 + 50 * rng.random(), 0.0, 310 + rng.random()], [0, 805 + rng.random(), 242.5], [0, 0, 1]])
        D = np.array([-0.05, 0.12, 0.001, -0.0005, 0.01]) * rng.random()
        cameras.append(Camera(K=K, R=R, T=T, D=D, width=640 + 8 * index, height=480, name=f"cam{index + 1:02d}"))
    return cameras


def assert_same_cameras(actual: list[Camera], expected: list[Camera], *, atol: float = 1e-9) -> None:
    assert [c.name for c in actual] == [c.name for c in expected]
    for a, e in zip(actual, expected):
        for field in "KRTD":
            np.testing.assert_allclose(
                getattr(a, field), getattr(e, field), atol=atol, rtol=0, err_msg=f"{a.name} {field}"
            )
        assert (a.width, a.height) == (e.width, e.height)


def test_qualisys_round_trip(tmp_path):
    cameras = random_cameras()
    path = write_qualisys(cameras, tmp_path / "calib.qca.txt")
    assert detect_format(path) == "qualisys"
    assert_same_cameras(read_qualisys(path), cameras)
    assert_same_cameras(read_calibration(tmp_path), cameras)  # a folder holding one .qca.txt


def test_qualisys_convention_on_a_hand_made_camera(tmp_path):
    """A camera at (0, -3, 1) m whose Qualisys axes are x = world x, y = world z (up), z = world -y (back)."""
    text = """<?xml version='1.0'?>
<calibration><cameras><camera active="1" serial="c1">
 <fov_video left="0" top="0" right="99" bottom="199"/>
 <transform r11="1" r12="0" r13="0" r21="0" r22="0" r23="1" r31="0" r32="-1" r33="0" x="0" y="-3000" z="1000"/>
 <intrinsic focalLengthU="6400" focalLengthV="6400" centerPointU="3200" centerPointV="6400"
   radialDistortion1="0" radialDistortion2="0" radialDistortion3="0" tangentalDistortion1="0" tangentalDistortion2="0"/>
</camera></cameras></calibration>"""
    path = tmp_path / "one.qca.txt"
    path.write_text(text)
    (camera,) = read_qualisys(path)
    assert (camera.width, camera.height) == (100, 200)
    np.testing.assert_allclose(camera.K, [[100, 0, 50], [0, 100, 100], [0, 0, 1]])
    np.testing.assert_allclose(camera.center, [0, -3, 1], atol=1e-12)
    # looks along world +y; world up is image up (v decreases)
    np.testing.assert_allclose(camera.R[2], [0, 1, 0], atol=1e-12)
    from neuralbody.data.cameras import project_points

    uv, depth = project_points(camera, np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.3], [0.3, 0.0, 1.0]]))
    np.testing.assert_allclose(depth, 3.0)
    np.testing.assert_allclose(uv[0], [50, 100])
    assert uv[1, 1] < uv[0, 1] and uv[2, 0] > uv[0, 0]  # up is up, +x is right


def test_easymocap_round_trip_and_rodrigues_only(tmp_path):
    cameras = random_cameras(4, seed=1)
    files = write_easymocap(cameras, tmp_path)
    assert detect_format(tmp_path) == detect_format(files.intri) == "easymocap"
    assert_same_cameras(read_easymocap(tmp_path), cameras, atol=1e-12)
    # extri.yml with only the Rodrigues vectors (older EasyMocap) and intri.yml without sizes
    extri = parse_opencv_yaml(files.extri.read_text())
    intri = parse_opencv_yaml(files.intri.read_text())
    files.extri.write_text(format_opencv_yaml({k: v for k, v in extri.items() if not k.startswith("Rot_")}))
    files.intri.write_text(format_opencv_yaml({k: v for k, v in intri.items() if k[:2] not in ("H_", "W_")}))
    with pytest.raises(ValueError, match="intri.yml.*no image size"):
        read_easymocap(tmp_path)
    sizes = {c.name: (c.width, c.height) for c in cameras}
    assert_same_cameras(read_calibration(files.extri, image_sizes=sizes), cameras, atol=1e-9)


def test_opencv_yaml_parser_reads_what_opencv_writes():
    text = """%YAML:1.0
---
names: [ "1", "2" ]
K_1: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 1.0e+03, 0., 5.0e+02, 0., 1.0e+03,
       2.5e+02, 0., 0., 1. ]
dist_1: !!opencv-matrix
   rows: 1
   cols: 5
   dt: d
   data: [ -0.1, 0.01, 0., 0., 0. ]
H_1: 500
label: "a b"
list:
   - 3
   - "x"
"""
    parsed = parse_opencv_yaml(text)
    assert parsed["names"] == ["1", "2"] and parsed["H_1"] == 500 and parsed["label"] == "a b"
    assert parsed["list"] == [3, "x"]
    np.testing.assert_array_equal(parsed["K_1"], [[1000, 0, 500], [0, 1000, 250], [0, 0, 1]])
    assert parsed["dist_1"].shape == (1, 5)
    with pytest.raises(ValueError, match="bad.yml:2: matrix 'K' is 2x2 but holds 3 values"):
        parse_opencv_yaml("%YAML:1.0\nK: !!opencv-matrix\n  rows: 2\n  cols: 2\n  data: [1, 2, 3]\n", source="bad.yml")


def test_annots_round_trip(tmp_path):
    cameras = random_cameras(3, seed=2)
    paths = [[f"{c.name}/{i:06d}.jpg" for c in cameras] for i in range(2)]
    path = write_annots_cameras(cameras, tmp_path / "annots.npy", paths)
    assert detect_format(path) == detect_format(tmp_path) == "annots"
    sizes = {c.name: (c.width, c.height) for c in cameras}
    assert_same_cameras(read_annots_cameras(path, image_sizes=sizes), cameras, atol=1e-12)
    with pytest.raises(ValueError, match="cam01.*missing"):
        read_annots_cameras(path)  # no images to read sizes from


def test_unknown_calibration_format_names_the_file_and_the_formats(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"calib.txt: unknown calibration format; supported: Qualisys"):
        read_calibration(path)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_calibration(tmp_path / "nope")


def common_point(cameras: list[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares point nearest to every optical axis, and each axis's distance to it."""
    centres = np.array([c.center for c in cameras])
    axes = np.array([c.R[2] for c in cameras])
    projectors = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    point = np.linalg.solve(projectors.sum(0), np.einsum("nij,nj->i", projectors, centres))
    residuals = np.linalg.norm(np.einsum("nij,nj->ni", projectors, point - centres), axis=1)
    return point, residuals


@needs_shared(REAL_QCA)
def test_real_qualisys_cameras_look_at_a_common_point():
    cameras = read_qualisys(REAL_QCA)
    assert [c.name for c in cameras] == ["cam01", "cam02", "cam03", "cam04"]
    assert all((c.width, c.height) == (1088, 1920) for c in cameras)
    point, residuals = common_point(cameras)
    assert residuals.max() < 0.2  # the four optical axes pass within 20 cm of one point
    for camera in cameras:
        offset = point - camera.center
        assert 2.0 < np.linalg.norm(offset) < 4.0
        assert offset @ camera.R[2] > 0  # in front of every camera
        assert camera.R[1] @ np.array([0.0, 0.0, 1.0]) < -0.5  # world up (+z) is image up
        assert 0 < camera.K[0, 2] < camera.width and 0 < camera.K[1, 2] < camera.height
