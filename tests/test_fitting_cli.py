"""``neuralbody fit``: previous fits kept aside, bad frames skipped, outputs written."""

from __future__ import annotations

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
    with pytest.raises(ValueError):
        fit_cli.parse_frames("5:9", 4)
    with pytest.raises(ValueError):
        fit_cli.parse_frames("a:b", 4)


def test_fit_cli_keeps_previous_params_and_skips_bad_frames(tiny_capture, tmp_path, capsys, anny_body):
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
    original = {name: (root / name / "0.npy").read_bytes() for name in ("params", "vertices")}
    (root / "params_prev").mkdir()  # an older backup exists: it must survive too
    (root / "params_prev" / "keep.txt").write_text("older")

    rc = _run([str(root), "--frames", "0:3", "--iterations", "20", "--no-shape"])  # masks: silhouette on
    assert rc == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "reproj px" in out
    assert (root / "params_prev" / "keep.txt").read_text() == "older"
    assert (root / "params_prev2" / "0.npy").read_bytes() == original["params"]
    assert (root / "vertices_prev" / "0.npy").read_bytes() == original["vertices"]
    fitted = np.load(root / "vertices" / "0.npy")
    truth = np.load(root / "vertices_prev" / "0.npy")
    assert fitted.shape == truth.shape and np.linalg.norm(fitted - truth, axis=1).mean() < 0.04
    params = np.load(root / "params" / "0.npy", allow_pickle=True).item()
    assert params["poses"].shape == (1, anny_body.pose_dim) and params["Th"].shape == (1, 3)
    assert not (root / "params" / "1.npy").exists() and (root / "params" / "2.npy").exists()
    assert (root / "fit" / "overlay_0000.png").is_file() and (root / "fit" / "residuals.json").is_file()
    assert read_capture(root).load_body(0).vertices.shape == truth.shape  # the capture reads back


def test_fit_cli_without_keypoints_names_the_fix(tiny_capture, tmp_path):
    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    assert _run([str(root), "--frames", "0:1"]) != 0
    assert (root / "params" / "0.npy").is_file() and not (root / "params_prev").exists()  # nothing moved


def test_fit_cli_rejects_negative_refine_iterations(tiny_capture, tmp_path):
    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    assert _run([str(root), "--from-gt-noise", "1", "--frames", "0:1", "--refine-iterations", "-1"]) != 0
    assert (root / "params" / "0.npy").is_file() and not (root / "params_prev").exists()  # nothing moved
