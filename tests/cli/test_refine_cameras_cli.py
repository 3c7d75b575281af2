"""``neuralbody refine-cameras``: a capture whose calibration is off gets cameras that agree with its keypoints."""

from __future__ import annotations

import json
import logging

import numpy as np
from fake_zju import make_capture, rewrite_annots
from test_camera_refinement import _perturbed, _relative_rotation_errors_deg

from neuralbody.cli.main import main
from neuralbody.data.capture import read_capture
from neuralbody.data.writer import cameras_to_annots
from neuralbody.fitting.camera_refinement import signed_bias
from neuralbody.fitting.keypoints import keypoints2d_from_points


def _capture_with_bad_calibration(root, angle_deg: float = 1.0):
    """A fake capture (4 views, 6 frames) whose keypoints come from the true cameras and whose
    annots.npy holds perturbed ones. Returns the true cameras."""
    make_capture(root, num_views=4, num_frames=6)
    truth = read_capture(root).cameras
    rng = np.random.default_rng(0)
    (root / "keypoints2d").mkdir()
    for frame in range(6):
        points = rng.uniform([-0.4, -0.4, 0.2], [0.4, 0.4, 1.8], size=(17, 3))
        np.save(root / "keypoints2d" / f"{frame}.npy", keypoints2d_from_points(truth, points))
    bad = _perturbed(truth, angle_deg=angle_deg, shift_m=0.03)
    rewrite_annots(root, lambda annots: annots.update(cams=cameras_to_annots(bad)))
    return truth, bad


def test_refine_cameras_writes_agreeing_cameras_and_keeps_the_original(tmp_path, capsys):
    root = tmp_path / "capture"
    truth, _ = _capture_with_bad_calibration(root)
    original = (root / "annots.npy").read_bytes()
    keypoints = np.stack([np.load(root / "keypoints2d" / f"{frame}.npy") for frame in range(6)])
    assert _relative_rotation_errors_deg(read_capture(root).cameras, truth).max() > 0.5
    assert np.abs(signed_bias(read_capture(root).cameras, keypoints)).max() > 0.3

    assert main(["refine-cameras", str(root), "--dry-run"]) == 0
    assert (root / "annots.npy").read_bytes() == original and "dry run" in capsys.readouterr().out

    assert main(["refine-cameras", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Camera_B1" in out and "re-run neuralbody fit" in out  # the fake capture has fits: now stale
    # the tiny fake cameras (45 px focal) pin the rig down only weakly: check agreement, not the truth
    assert np.abs(signed_bias(read_capture(root).cameras, keypoints)).max() < 0.05
    assert (root / "annots_unrefined.npy").read_bytes() == original
    report = json.loads((root / "refine_cameras.json").read_text())
    assert report["frames"] == 6 and report["points"] == 6 * 17
    first = report["cameras"]["Camera_B1"]
    assert first["median_residual_px"][1] < 0.05 < first["median_residual_px"][0]

    assert main(["refine-cameras", str(root)]) == 0  # again: the first original stays the backup
    assert (root / "annots_unrefined.npy").read_bytes() == original
    assert main(["refine-cameras", str(root), "--restore"]) == 0
    assert (root / "annots.npy").read_bytes() == original


def test_refine_cameras_errors_name_the_fix(tmp_path, caplog):
    root = tmp_path / "capture"
    make_capture(root, num_views=4, num_frames=2)
    with caplog.at_level(logging.ERROR):
        assert main(["refine-cameras", str(root)]) != 0
        assert "neuralbody detect" in caplog.text
        assert main(["refine-cameras", str(root), "--restore"]) != 0
        assert "nothing to restore" in caplog.text
    (root / "keypoints2d").mkdir()
    np.save(root / "keypoints2d" / "0.npy", np.zeros((3, 17, 3)))  # three views in a 4-camera capture
    with caplog.at_level(logging.ERROR):
        assert main(["refine-cameras", str(root)]) != 0
        assert "0.npy" in caplog.text and "(4, K, 3)" in caplog.text


def test_detect_hint_measures_the_calibration_bias(tmp_path):
    """``neuralbody detect`` suggests refine-cameras when the leave-one-out bias exceeds its threshold."""
    from neuralbody.cli.detect import BIAS_HINT_PX, calibration_bias

    root = tmp_path / "capture"
    _capture_with_bad_calibration(root, angle_deg=4.0)  # the fake cameras' focal is 45 px: 1 degree ~ 0.8 px
    frames = list(range(6))
    assert calibration_bias(read_capture(root), frames).max() > BIAS_HINT_PX
    assert main(["refine-cameras", str(root)]) == 0
    assert calibration_bias(read_capture(root), frames).max() < 0.05


def test_fit_trim_mask_keeps_the_untrimmed_mask_and_blacks_out_the_rest(tmp_path):
    """``neuralbody fit --trim-masks``: one mask cut down to the fitted body, the image rewritten from original/."""
    import shutil

    from PIL import Image

    from neuralbody.data.transaction import begin
    from neuralbody.fitting.report import mask_beyond_body
    from neuralbody.fitting.writer import mask_radius_px, trim_mask

    root = tmp_path / "capture"
    make_capture(root, num_views=4, num_frames=1)
    capture = read_capture(root)
    camera = capture.cameras[0]
    right, down = camera.R[0], camera.R[1]
    grid = np.stack(np.meshgrid(np.linspace(-0.15, 0.15, 40), np.linspace(-0.3, 0.3, 80)), -1).reshape(-1, 2)
    vertices = np.array([0.0, 0.0, 1.0]) + grid[:, :1] * right + grid[:, 1:] * down  # a 30 x 60 cm "body"
    path = capture.mask_path(0, 0)
    full = np.ones((camera.height, camera.width), dtype=bool)  # a mask that takes the whole image
    from neuralbody.data.writer import write_mask

    write_mask(path, full)
    before = path.read_bytes()
    original = root / "original" / capture.image_relpath(0, 0)
    original.parent.mkdir(parents=True)
    shutil.copy2(capture.image_path(0, 0), original)

    with begin(root, "fit") as transaction:
        assert trim_mask(transaction, capture, 0, 0, vertices)
        assert path.read_bytes() == before  # staged only, until the commit
    trimmed = capture.load_mask(0, 0)
    assert (root / "mask_untrimmed" / path.relative_to(root)).read_bytes() == before
    assert 0 < trimmed.sum() < full.sum()
    assert mask_beyond_body(trimmed, camera, vertices, radius_px=mask_radius_px(camera)) == 0.0
    image, kept = capture.load_image(0, 0), np.asarray(Image.open(original).convert("RGB")) / 255.0
    assert image[~trimmed].mean() < 0.02 < kept[~trimmed].mean()  # black (up to JPEG ringing) outside the mask
    assert np.abs(image[trimmed] - kept[trimmed]).mean() < 0.03  # the person as imported inside it
    with begin(root, "fit") as transaction:  # again: the first untrimmed mask stays the backup
        trim_mask(transaction, capture, 0, 0, vertices)
    assert (root / "mask_untrimmed" / path.relative_to(root)).read_bytes() == before
