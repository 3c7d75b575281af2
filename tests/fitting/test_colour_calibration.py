"""Per-camera colour gains from the fitted body: known answers on a sphere, a robust solve, guards,
the capture round trip and the CLI on a synthetic capture with one camera's colours changed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import trimesh
from fake_zju import look_at_rotation, make_capture, rewrite_annots
from PIL import Image

from neuralbody.cli.main import main
from neuralbody.data.cameras import Camera
from neuralbody.data.capture import read_capture
from neuralbody.fitting.colour_calibration import (
    SampleSettings,
    calibrate_colours,
    pair_log_ratios,
    solve_log_gains,
    visible_vertex_colours,
)
from neuralbody.geometry.raycast import cast_rays
from neuralbody.rendering.render import apply_colour_gain, camera_rays
from neuralbody.training.image_source import DecodeSettings, decode_training_image

SIZE = 64


def _camera(azimuth_deg: float, name: str, distance: float = 2.0) -> Camera:
    angle = np.radians(azimuth_deg)
    centre = distance * np.array([np.cos(angle), np.sin(angle), 0.0])
    R = look_at_rotation(centre, np.zeros(3))
    K = np.array([[80.0, 0, SIZE / 2 - 0.5], [0, 80.0, SIZE / 2 - 0.5], [0, 0, 1]])
    return Camera(K=K, R=R, T=-R @ centre, D=np.zeros(5), width=SIZE, height=SIZE, name=name)


def _surface_colour(points: np.ndarray) -> np.ndarray:
    """A smooth colour of the surface point (world, metres), in (0.2, 0.8)."""
    return 0.5 + 0.3 * np.tanh(points * np.array([3.0, -4.0, 5.0]))


def _sphere_scene(gains: np.ndarray, *, blocker: bool = False):
    """A sphere (radius 0.3 m at the origin) seen by three cameras (azimuths 0, 60, 180 degrees);
    each image is the surface colour times its camera's gain. ``blocker``: a small sphere between
    camera 0 and the big one."""
    big = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    meshes = [big]
    if blocker:
        small = trimesh.creation.icosphere(subdivisions=2, radius=0.08)
        small.apply_translation([0.6, 0.0, 0.0])
        meshes.append(small)
    scene = trimesh.util.concatenate(meshes)
    vertices = torch.tensor(scene.vertices, dtype=torch.float64)
    faces = torch.tensor(scene.faces, dtype=torch.int64)
    cameras = [_camera(a, f"cam{c}") for c, a in enumerate((0.0, 60.0, 180.0))]
    images, masks = [], []
    for camera, gain in zip(cameras, gains, strict=True):
        rays_o, rays_d = camera_rays(camera, device="cpu", dtype=torch.float64)
        hits = cast_rays(vertices, faces, rays_o, rays_d)
        points = hits.points(rays_o, rays_d).numpy()
        hit = hits.hit.numpy()
        image = np.where(hit[:, None], _surface_colour(points) * gain, 0.0)
        images.append(image.reshape(SIZE, SIZE, 3))
        masks.append(hit.reshape(SIZE, SIZE))
    return vertices, faces, cameras, images, masks, len(big.vertices)


def test_visible_vertex_colours_reads_each_seen_vertex_and_only_those():
    gains = np.array([[1.0, 1.0, 1.0], [0.9, 0.8, 0.7], [1.1, 1.0, 0.9]])
    vertices, faces, cameras, images, masks, _ = _sphere_scene(gains)
    colours, seen = visible_vertex_colours(vertices, faces, cameras, images, masks, SampleSettings(erode_px=1))
    for c, camera in enumerate(cameras):
        to_camera = camera.center[None] - vertices.numpy()
        cosine = (vertices.numpy() / 0.3 * to_camera).sum(1) / np.linalg.norm(to_camera, axis=1)
        assert seen[c].sum() > 100
        assert (cosine[seen[c]] > 0.5 - 0.02).all()  # facing the camera (vertex normals ~ radial)
        assert not seen[c][cosine < 0].any()
        # the colour read is the vertex's own colour through this camera (nearest pixel: a few %)
        truth = _surface_colour(vertices.numpy()[seen[c]]) * gains[c]
        assert np.median(np.abs(colours[c, seen[c]] / truth - 1)) < 0.02
    assert not (seen[0] & seen[2]).any()  # opposite cameras share nothing
    ratios = pair_log_ratios(colours, seen)
    assert (0, 2) not in ratios and ratios[(0, 1)].shape[1] == 3
    np.testing.assert_allclose(np.exp(np.median(ratios[(0, 1)], axis=0)), gains[1] / gains[0], rtol=0.01)


def test_visible_vertex_colours_skips_occluded_vertices():
    vertices, faces, cameras, images, masks, big_count = _sphere_scene(np.ones((3, 3)), blocker=True)
    _, seen = visible_vertex_colours(vertices, faces, cameras, images, masks, SampleSettings(erode_px=0))
    # independent check: the segment from camera 0 to the vertex passes within 0.08 m of the blocker
    centre, blocker = cameras[0].center, np.array([0.6, 0.0, 0.0])
    points = vertices.numpy()[:big_count]
    direction = points - centre
    t = np.clip(((blocker - centre) @ direction.T) / (direction**2).sum(1), 0, 1)
    behind = np.linalg.norm(centre + t[:, None] * direction - blocker, axis=1) < 0.08 * 0.97
    assert behind.sum() > 20
    assert not seen[0, :big_count][behind].any()
    assert seen[1, :big_count][behind].any()  # the other camera sees round it


def test_solve_log_gains_recovers_gains_despite_outliers():
    rng = np.random.default_rng(0)
    truth = np.exp(rng.uniform(-0.3, 0.3, size=(5, 3)))
    ratios = {}
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3)]:
        values = np.log(truth[b] / truth[a]) + rng.normal(0, 0.03, size=(800, 3))
        outliers = rng.random(800) < 0.2  # samples on the wrong side of an edge
        values[outliers] = rng.uniform(-1.5, 1.5, size=(outliers.sum(), 3))
        ratios[(a, b)] = values
    result = solve_log_gains(ratios, 6, min_points=100)  # camera 5 shares nothing
    expected = truth / truth.min(axis=0)  # the gauge: per channel the darkest camera is 1
    np.testing.assert_allclose(result.gains[:5], expected, rtol=0.015)
    assert result.connected.tolist() == [True] * 5 + [False]
    np.testing.assert_array_equal(result.gains[5], 1.0)
    assert np.nanmax(np.abs(result.pair_residual)) < 0.02
    assert result.pair_points[0, 1] == result.pair_points[1, 0] == 800
    # a pair below min_points is not used (its points are still counted)
    few = solve_log_gains({**ratios, (1, 3): ratios[(1, 3)][:50]}, 6, min_points=100)
    assert np.isnan(few.pair_log_ratio[1, 3]).all() and few.pair_points[1, 3] == 50
    np.testing.assert_allclose(few.gains[:5], expected, rtol=0.015)


def test_solve_log_gains_and_sampling_guards():
    with pytest.raises(ValueError, match="0 <= a < b"):
        solve_log_gains({(2, 1): np.zeros((10, 3))}, 3)
    with pytest.raises(ValueError, match="at least one camera"):
        solve_log_gains({}, 0)
    with pytest.raises(ValueError, match="min_points"):
        solve_log_gains({}, 2, min_points=0)
    camera = _camera(0.0, "cam0")
    vertices = np.zeros((3, 3))
    faces = np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match="one image and one mask per camera"):
        visible_vertex_colours(vertices, faces, [camera], [], [])
    with pytest.raises(ValueError, match="its image is"):
        visible_vertex_colours(vertices, faces, [camera], [np.zeros((10, 10, 3))], [np.zeros((10, 10), bool)])
    with pytest.raises(ValueError, match=r"vertices must be \(V, 3\)"):
        visible_vertex_colours(np.zeros((3, 2)), faces, [camera], [np.zeros((SIZE, SIZE, 3))], [np.zeros((SIZE, SIZE), bool)])


def test_camera_colour_gain_validation_and_annots_round_trip(tmp_path):
    camera = _camera(0.0, "cam0")
    assert not camera.has_colour_gain and camera.colour_gain.tolist() == [1.0, 1.0, 1.0]
    for bad in ([1.0, 0.0, 1.0], [1.0, 1.0], [np.nan, 1.0, 1.0]):
        with pytest.raises(ValueError, match="colour_gain must be 3 positive"):
            Camera(K=camera.K, R=camera.R, T=camera.T, D=camera.D, width=SIZE, height=SIZE, colour_gain=bad)
    fake = make_capture(tmp_path / "capture", num_views=2)
    assert not any(c.has_colour_gain for c in read_capture(fake.root).cameras)
    rewrite_annots(fake.root, lambda annots: annots["cams"].update(colour_gain=[[1.0, 1.0, 1.0], [1.2, 1.1, 1.0]]))
    cameras = read_capture(fake.root, scale=0.5).cameras  # kept through scaling
    assert cameras[1].colour_gain.tolist() == [1.2, 1.1, 1.0] and not cameras[0].has_colour_gain
    from neuralbody.data.writer import cameras_to_annots

    assert [g.tolist() for g in cameras_to_annots(cameras)["colour_gain"]] == [[1, 1, 1], [1.2, 1.1, 1.0]]
    assert "colour_gain" not in cameras_to_annots([camera])
    rewrite_annots(fake.root, lambda annots: annots["cams"].update(colour_gain=[[1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="has 1 entries for 2 cameras"):
        read_capture(fake.root)
    rewrite_annots(fake.root, lambda annots: annots["cams"].update(colour_gain=[[1.0, 1.0, 1.0], [1.0, -1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"camera 1: .*colour_gain must be 3 positive.*fix annots"):
        read_capture(fake.root)


def test_apply_colour_gain_scales_the_person_not_the_background():
    acc = torch.tensor([1.0, 0.5, 0.0, 1.0])
    person = torch.tensor([[0.5, 0.4, 0.2], [0.2, 0.2, 0.2], [0.0, 0.0, 0.0], [0.9, 0.5, 0.5]])
    background = torch.tensor([1.0, 1.0, 1.0])
    rgb = person + (1 - acc)[:, None] * background
    out = apply_colour_gain(rgb, acc, [1.5, 1.0, 0.5], background)
    expected = torch.minimum(person * torch.tensor([1.5, 1.0, 0.5]), acc[:, None]) + (1 - acc)[:, None] * background
    torch.testing.assert_close(out, expected)
    assert out[2].tolist() == [1.0, 1.0, 1.0] and out[3, 0] == 1.0  # background kept; saturates at 1


def test_calibrate_colour_cli_recovers_a_changed_camera(tiny_capture, anny_body, tmp_path, capsys):
    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    capture = read_capture(root)
    faces = anny_body.faces.cpu().numpy()
    frames = list(range(capture.num_frames))
    before = calibrate_colours(capture, frames, faces, min_points=30, progress=False).gains
    change = np.array([0.9, 0.8, 0.7])
    view = 1
    for frame in frames:
        path = capture.image_path(frame, view)
        image = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
        Image.fromarray(np.round(image * change).astype(np.uint8)).save(path)
    original = (root / "annots.npy").read_bytes()
    assert main(["calibrate-colour", str(root), "--dry-run", "--min-points", "30", "--no-progress"]) == 0
    assert (root / "annots.npy").read_bytes() == original and "dry run" in capsys.readouterr().out

    assert main(["calibrate-colour", str(root), "--min-points", "30", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "gain R" in out and capture.camera_names[view] in out
    gains = np.stack([c.colour_gain for c in read_capture(root).cameras])
    # one camera's colours scaled: its gain (relative to camera 0) moves by that scale and the others' do not
    # (up to 8-bit rounding and the darker samples that now fall below min_value: 3 % at 64 x 64)
    relative = (gains / gains[0]) / (before / before[0])
    np.testing.assert_allclose(relative[view], change, rtol=0.04)
    np.testing.assert_allclose(np.delete(relative, view, axis=0), 1.0, rtol=0.04)
    report = json.loads((root / "colour_calibration.json").read_text())
    assert np.allclose(report["gains"][capture.camera_names[view]], gains[view])
    assert main(["info", str(root), "--no-sheet"]) == 0  # the gains are shown per camera
    info = capsys.readouterr().out
    assert "colour gain R/G/B" in info and " ".join(f"{g:.3f}" for g in gains[view]) in info

    # training reads the image in the reference colours: divided by its camera's gain
    capture = read_capture(root)
    body = capture.load_body(0)
    decoded = decode_training_image(capture, frame=0, view=view, body=body, settings=DecodeSettings())
    expected = np.clip(np.round(capture.load_image(0, view) / gains[view] * 255), 0, 255).reshape(-1, 3)
    np.testing.assert_array_equal(decoded.rgb.numpy(), expected)

    assert main(["calibrate-colour", str(root), "--reset"]) == 0
    assert not any(c.has_colour_gain for c in read_capture(root).cameras)


def test_calibrate_colour_cli_names_what_is_missing(tmp_path):
    from neuralbody.cli import calibrate_colour
    from neuralbody.cli.main import build_parser

    def run(root, *extra):
        return calibrate_colour.run(build_parser().parse_args(["calibrate-colour", str(root), *extra]))

    fake = make_capture(tmp_path / "capture", num_views=2)
    shutil.rmtree(fake.root / "mask_cihp")
    with pytest.raises(FileNotFoundError, match="run neuralbody detect"):
        run(fake.root)
    with pytest.raises(ValueError, match="--frames"):
        run(fake.root, "--frames", "7:9")
    shutil.rmtree(fake.root / "vertices")
    with pytest.raises(FileNotFoundError, match="run neuralbody fit"):
        run(fake.root)
