"""Orbit cameras look at the target from the ring; GIF writing round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from neuralbody.data.cameras import Camera, project_points
from neuralbody.evaluation.orbit import estimate_up, mp4_available, orbit_cameras, write_gif, write_mp4
from neuralbody.geometry.rotations import look_at_rotation


def _ring(up_axis: np.ndarray, *, num: int = 5, radius: float = 3.0, height: float = 0.4, target=(0.2, -0.1, 1.0)):
    """Cameras on a ring around ``target`` with the given world up, looking at the target, off-centre principal point."""
    up_axis = up_axis / np.linalg.norm(up_axis)
    e1 = np.cross(up_axis, [1.0, 0.0, 0.0]) if abs(up_axis[0]) < 0.9 else np.cross(up_axis, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up_axis, e1)
    cameras = []
    for i in range(num):
        phi = 2 * np.pi * i / num + 0.3
        centre = np.asarray(target) + radius * (np.cos(phi) * e1 + np.sin(phi) * e2) + height * up_axis
        R = look_at_rotation(centre, target, up_axis)
        K = np.array([[50.0, 0, 30.0], [0, 52.0, 20.0], [0, 0, 1]])
        cameras.append(Camera(K=K, R=R, T=-R @ centre, D=np.array([0.05, 0, 0, 0, 0]), width=64, height=48, name=f"c{i}"))
    return cameras, np.asarray(target, dtype=np.float64), up_axis


@pytest.mark.parametrize("up_axis", [np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0]), np.array([0.3, 0.2, 0.9])])
def test_orbit_looks_at_the_centre_from_the_ring(up_axis):
    cameras, target, up = _ring(up_axis)
    assert np.allclose(estimate_up(cameras), up, atol=1e-9)
    path = orbit_cameras(cameras, target, num_steps=12, reference=2)
    assert len(path.cameras) == 12
    assert path.radius == pytest.approx(3.0) and path.height == pytest.approx(0.4)
    for camera in path.cameras:
        uv, depth = project_points(camera, target[None])
        assert np.allclose(uv[0], [(64 - 1) / 2, (48 - 1) / 2], atol=1e-6)
        offset = camera.center - target
        along_up = offset @ up
        assert along_up == pytest.approx(0.4)
        assert np.linalg.norm(offset - along_up * up) == pytest.approx(3.0)
        assert depth[0] > 0
        assert not camera.has_distortion and camera.K[0, 0] == 50.0 and camera.K[1, 1] == 52.0
        # image "up" (-y) agrees with world up: a point above the target projects higher (smaller v)
        uv_up, _ = project_points(camera, (target + 0.1 * up)[None])
        assert uv_up[0, 1] < uv[0, 1]
    # the orbit starts at the reference camera's azimuth and steps evenly
    assert np.allclose(path.cameras[0].center, cameras[2].center, atol=1e-9)
    angles = []
    for camera in path.cameras:
        offset = camera.center - target
        angles.append(offset - (offset @ up) * up)
    cosines = [a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(angles, angles[1:])]
    assert np.allclose(cosines, np.cos(2 * np.pi / 12))


def test_orbit_sees_in_the_reference_cameras_colours():
    import dataclasses

    cameras, target, _ = _ring(np.array([0.0, 0.0, 1.0]))
    cameras[1] = dataclasses.replace(cameras[1], colour_gain=np.array([1.2, 1.1, 1.0]))
    assert all(c.colour_gain.tolist() == [1.2, 1.1, 1.0] for c in orbit_cameras(cameras, target, num_steps=3, reference=1).cameras)
    assert not any(c.has_colour_gain for c in orbit_cameras(cameras, target, num_steps=3, reference=0).cameras)


def test_orbit_overrides_and_guards():
    cameras, target, _ = _ring(np.array([0.0, 0.0, 1.0]))
    path = orbit_cameras(cameras, target, num_steps=3, radius=1.5, height=0.0)
    assert all(np.linalg.norm(c.center - target) == pytest.approx(1.5) for c in path.cameras)
    with pytest.raises(ValueError, match="num_steps"):
        orbit_cameras(cameras, target, num_steps=0)
    with pytest.raises(ValueError, match="reference"):
        orbit_cameras(cameras, target, num_steps=3, reference=9)


def test_gif_round_trip(tmp_path):
    import imageio.v2 as imageio

    frames = [np.full((8, 10, 3), i * 60, dtype=np.uint8) for i in range(4)]
    path = write_gif(frames, tmp_path / "orbit.gif")
    loaded = imageio.mimread(path)
    assert len(loaded) == 4
    assert np.abs(np.asarray(loaded[2])[..., :3].astype(int) - 120).max() <= 2
    mp4 = write_mp4(frames, tmp_path / "orbit.mp4")
    assert (mp4 is not None) == mp4_available()
