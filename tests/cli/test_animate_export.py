"""``neuralbody animate`` and ``neuralbody export`` on tiny runs of the tiny synthetic capture (Anny)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from neuralbody.cli.main import main
from test_gltf import parse_glb, read_accessor

pytestmark = [pytest.mark.slow, pytest.mark.anny]

COARSE = ["--option", "prior_voxel=0.04", "--option", "skinning_voxel=0.06", "--option", "hash_log2=10"]


@pytest.fixture
def same_anny(monkeypatch, anny_body):
    """Every body-model load in these commands returns the session's Anny (no second load)."""
    import neuralbody.body

    monkeypatch.setattr(neuralbody.body, "load_body_model", lambda name, model_path=None, device=None: anny_body)
    return anny_body


def _train(capture, out, kind: str, extra=()) -> None:
    argv = ["train", str(capture), "--out", str(out), "--model", kind, "--steps", "3", "--rays", "128", "--samples", "16",
            "--threads", "1", "--val-every", "0", "--no-progress", *extra]
    assert main(argv) == 0


def test_animate_and_export_an_avatar(tiny_capture, tmp_path, same_anny):
    run = tmp_path / "avatar"
    _train(tiny_capture, run, "avatar", COARSE)
    out = tmp_path / "anim"
    argv = ["animate", str(run), "--motion", "squat", "--length", "3", "--orbit", "--out", str(out),
            "--save-motion", str(out / "squat.npz"), "--no-progress"]
    assert main(argv) == 0
    frames = sorted(out.glob("orbit_frame*.png"))
    assert len(frames) == 3 and np.asarray(Image.open(frames[0])).shape == (64, 64, 3)
    with Image.open(out / "orbit.gif") as gif:
        assert gif.n_frames == 3
    played = np.load(out / "squat.npz")
    assert played["poses"].shape == (3, 312) and str(played["body_model"]) == "anny"
    # the motion file plays again, on a capture camera
    assert main(["animate", str(run), "--motion", str(out / "squat.npz"), "--source-frames", "0:2", "--view", "1",
                 "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    assert len(list((tmp_path / "again").glob("view01_frame*.png"))) == 2
    # another capture's fits (here the training capture itself), through its cameras, truth beside
    assert main(["animate", str(run), "--motion", str(tiny_capture), "--source-frames", "6,7", "--source-cameras",
                 "--with-truth", "--out", str(tmp_path / "fits"), "--no-progress"]) == 0
    from neuralbody.data.capture import read_capture

    image = np.asarray(Image.open(tmp_path / "fits" / "source01_frame0001.png"))
    truth = read_capture(tiny_capture).load_image(7, 1)
    assert image.shape == (64, 128, 3)
    assert np.abs(image[:, 64:] / 255.0 - truth).max() < 1.5 / 255
    # export: a rigged glb and a coloured ply
    assert main(["export", str(run), str(tmp_path / "avatar.glb"), "--voxel", "0.02"]) == 0
    document, binary = parse_glb((tmp_path / "avatar.glb").read_bytes())
    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    weights = read_accessor(document, binary, attributes["WEIGHTS_0"])
    joints = read_accessor(document, binary, attributes["JOINTS_0"])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert len(document["skins"][0]["joints"]) == 104 and joints.max() < 104
    assert read_accessor(document, binary, attributes["POSITION"]).shape[0] > 1000
    assert main(["export", str(run), str(tmp_path / "avatar.ply"), "--voxel", "0.02"]) == 0
    import trimesh

    mesh = trimesh.load(tmp_path / "avatar.ply")
    assert mesh.visual.vertex_colors.shape[0] == len(mesh.vertices) > 1000


def test_animate_a_neural_body_run_and_bad_input(tiny_capture, tmp_path, same_anny, caplog):
    run = tmp_path / "nb"
    _train(tiny_capture, run, "neuralbody")
    out = tmp_path / "anim"
    assert main(["animate", str(run), "--motion", "arms_overhead", "--length", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert len(list(out.glob("view*_frame*.png"))) == 2
    for argv, message in ((["export", str(run), str(tmp_path / "nb.glb")], "no canonical space"),
                          (["animate", str(run), "--motion", "moonwalk", "--out", str(out)], "procedural motion"),
                          (["animate", str(run), "--motion", "squat", "--with-truth", "--out", str(out)], "--source-cameras"),
                          (["export", str(run), str(tmp_path / "nb.obj")], ".glb or .ply")):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert main([*argv, "--no-progress"]) == 1
        errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
        assert len(errors) == 1 and message in errors[0], (argv, errors)
