"""``neuralbody fit``: the first previous body kept once, unfitted frames untouched, bad frames skipped."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuralbody.cli import fit as fit_cli

pytestmark = pytest.mark.anny


def _run(argv):
    from neuralbody.cli.main import main

    return main(["fit", *argv])


def test_parse_frames():
    assert fit_cli.parse_frames(None, 4) == [0, 1, 2, 3]
    assert fit_cli.parse_frames("1:3", 4) == [1, 2]
    assert fit_cli.parse_frames("2", 4) == [2]
    assert fit_cli.parse_frames("0,3", 4) == [0, 3]
    with pytest.raises(ValueError, match=r"--frames: range '5:9' is not within 0\.\.3"):
        fit_cli.parse_frames("5:9", 4)
    with pytest.raises(ValueError, match=r"--frames: range '2:9' is not within"):  # never clamped to 2:4
        fit_cli.parse_frames("2:9", 4)
    with pytest.raises(ValueError, match="expected indices"):
        fit_cli.parse_frames("a:b", 4)


def test_fit_cli_backs_up_once_keeps_unfitted_frames_and_skips_bad_frames(tiny_capture, tmp_path, capsys, anny_body):
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.keypoints import anny_keypoint_regressor, keypoints2d_from_points

    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    capture = read_capture(root)
    coco = anny_keypoint_regressor()
    (root / "keypoints2d").mkdir()
    for frame in range(3):
        points = coco(__import__("torch").from_numpy(capture.load_vertices(frame))).numpy()
        np.save(root / "keypoints2d" / f"{frame}.npy", keypoints2d_from_points(capture.cameras, points))
    np.save(root / "keypoints2d" / "1.npy", np.zeros((capture.num_views, 17, 3)))  # nobody detected
    original = {p.relative_to(root).as_posix(): p.read_bytes() for name in ("params", "vertices")
                for p in (root / name).iterdir()}  # fmt: skip
    (root / "params_prev").mkdir()  # a backup by an older version: left alone
    (root / "params_prev" / "keep.txt").write_text("older")

    rc = _run([str(root), "--frames", "0:3", "--iterations", "20", "--no-shape"])  # masks: silhouette on
    assert rc == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "reproj px" in out and "before_fit" in out
    assert (root / "params_prev" / "keep.txt").read_text() == "older"
    for name in ("params", "vertices"):  # the replaced bodies are kept once, under one clear name
        assert sorted(p.name for p in (root / "before_fit" / name).iterdir()) == ["0.npy", "2.npy"]
        assert (root / "before_fit" / name / "0.npy").read_bytes() == original[f"{name}/0.npy"]
        for number in (1, 3, 4, 5, 6, 7):  # skipped (1) or not selected: untouched, byte for byte
            assert (root / name / f"{number}.npy").read_bytes() == original[f"{name}/{number}.npy"]
    fitted = np.load(root / "vertices" / "0.npy")
    truth = np.load(root / "before_fit" / "vertices" / "0.npy")
    assert fitted.shape == truth.shape and np.linalg.norm(fitted - truth, axis=1).mean() < 0.04
    params = np.load(root / "params" / "0.npy", allow_pickle=True).item()
    assert params["poses"].shape == (1, anny_body.pose_dim) and params["Th"].shape == (1, 3)
    assert (root / "params" / "2.npy").read_bytes() != original["params/2.npy"]
    assert (root / "fit" / "overlay_0000.png").is_file() and not (root / "fit" / "overlay_0001.png").exists()
    residuals = json.loads((root / "fit" / "residuals.json").read_text())
    assert [r["status"] for r in residuals["frames"]] == ["ok", "skipped", "ok"]
    assert residuals["backup"] == {"folder": "before_fit", "frames": [0, 2]}
    assert residuals["frames"][0]["vertex_error_mm"] < 40  # against the body the frame had
    assert read_capture(root).load_body(0).vertices.shape == truth.shape  # the capture reads back
    assert not (root / ".neuralbody-txn").exists()


def test_stage_body_backs_up_the_first_body_only(tmp_path):
    """A second fit replaces params/ and vertices/ but not before_fit/: that keeps the body before the first fit."""
    from types import SimpleNamespace

    from fake_zju import make_capture

    from neuralbody.data.capture import read_capture
    from neuralbody.data.transaction import begin
    from neuralbody.fitting.writer import stage_body

    fake = make_capture(tmp_path / "capture", num_views=2, num_frames=2)
    root, capture = fake.root, read_capture(fake.root)
    first = {name: (root / name / "1.npy").read_bytes() for name in ("params", "vertices")}
    expected_previous = fake.vertices[1]
    for value in (1.0, 2.0):
        fit = SimpleNamespace(frame=1, vertices=np.full((5, 3), value, np.float32),
                              params=lambda value=value: {"Th": np.full((1, 3), value, np.float32)})  # fmt: skip
        with begin(root, "fit") as transaction:
            previous, backed_up = stage_body(transaction, capture, fit)
        assert backed_up == (value == 1.0)
        np.testing.assert_array_equal(previous, expected_previous)  # the residuals' reference: the body replaced
        np.testing.assert_array_equal(np.load(root / "vertices" / "1.npy"), fit.vertices)
        assert np.load(root / "params" / "1.npy", allow_pickle=True).item()["Th"][0, 0] == value
        expected_previous = fit.vertices
        for name in ("params", "vertices"):
            assert (root / "before_fit" / name / "1.npy").read_bytes() == first[name]
    assert not (root / "before_fit" / "vertices" / "0.npy").exists()  # frame 0 was never fitted


def test_fit_cli_without_keypoints_names_the_fix(tiny_capture, tmp_path):
    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    assert _run([str(root), "--frames", "0:1"]) != 0
    assert (root / "params" / "0.npy").is_file() and not (root / "before_fit").exists()  # nothing written


def test_fit_cli_rejects_negative_refine_iterations(tiny_capture, tmp_path):
    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    assert _run([str(root), "--from-gt-noise", "1", "--frames", "0:1", "--refine-iterations", "-1"]) != 0
    assert (root / "params" / "0.npy").is_file() and not (root / "before_fit").exists()  # nothing written
