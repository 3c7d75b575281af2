"""The commands that change a capture write through one transaction: a failure injected part-way
leaves the old capture byte for byte; a kill after the commit record is finished by the next reader.

``detect``, ``refine-cameras``, ``calibrate-colour`` and ``import`` here; ``fit`` in
test_fitting_cli.py and test_fitting_kill.py, the mechanism in test_data_transaction.py.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from fake_zju import make_capture
from test_detect import FakeDetector, ring, skeleton, write_fake_capture
from test_import_capture import flat_cameras, write_folders
from test_refine_cameras_cli import _capture_with_bad_calibration

from neuralbody.capture_import.detect import DetectConfig, detect_capture
from neuralbody.capture_import.importer import ImportConfig, import_capture
from neuralbody.capture_import.opencv_yaml import write_easymocap
from neuralbody.cli.main import main
from neuralbody.data import transaction as txn_lib
from neuralbody.data.capture import read_capture
from neuralbody.data.transaction import TXN_DIR


def snapshot(root, *, skip=()) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).as_posix() not in skip}  # fmt: skip


def fail_writing_reports(monkeypatch):
    """The disk fills up when the command writes its JSON report (after the rest is staged)."""

    def full(self, path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(txn_lib.Transaction, "write_text", full)


class FailingDetector(FakeDetector):
    """The fake detector that crashes on its ``fail_at``-th whole-image call."""

    def __init__(self, *args, fail_at: int):
        super().__init__(*args)
        self.fail_at = fail_at

    def detect(self, image, box=None):
        if box is None and sum(not boxed for _, boxed in self.calls) + 1 == self.fail_at:
            raise RuntimeError("detector crashed")
        return super().detect(image, box)


def test_detect_failing_part_way_leaves_the_capture_and_a_kill_after_commit_is_finished(tmp_path, monkeypatch):
    cameras = ring()
    person, bystander = skeleton(), skeleton((1.0, 1.2, 0.0))
    config = DetectConfig(black_background=True, max_offset=0)
    root = tmp_path / "capture"
    write_fake_capture(root, cameras, frames=3)
    clean = tmp_path / "clean"
    shutil.copytree(root, clean)
    old = snapshot(root)

    with pytest.raises(RuntimeError, match="crashed"):  # frames 0 and 1 were staged already (masks, images)
        detect_capture(root, FailingDetector(cameras, person, bystander, fail_at=9), config, progress=False)
    assert snapshot(root) == old

    detect_capture(clean, FakeDetector(cameras, person, bystander), config, progress=False)
    monkeypatch.setattr(txn_lib, "_checkpoint", lambda stage, count, total: stage == "moved" and count == 7 and 1 / 0)
    with pytest.raises(ZeroDivisionError):  # "killed" after the commit record and 7 moves
        detect_capture(root, FakeDetector(cameras, person, bystander), config, progress=False)
    monkeypatch.undo()
    assert (root / TXN_DIR / "commit.json").is_file() and snapshot(root) != old  # half-applied on disk
    read_capture(root)  # a reader finishes the commit
    assert not (root / TXN_DIR).exists()
    assert snapshot(root, skip=("detect.json",)) == snapshot(clean, skip=("detect.json",))
    assert (root / "original").is_dir() and (root / "mask").is_dir()


def test_refine_cameras_failing_part_way_leaves_the_capture(tmp_path, monkeypatch, caplog):
    root = tmp_path / "capture"
    _capture_with_bad_calibration(root)
    old = snapshot(root)
    fail_writing_reports(monkeypatch)
    with caplog.at_level(logging.ERROR, logger="neuralbody"):
        assert main(["refine-cameras", str(root)]) == 1  # a system error: one line, no traceback
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "error: [Errno 28] No space left on device"]
    assert snapshot(root) == old  # neither annots.npy nor its backup changed
    monkeypatch.undo()
    assert main(["refine-cameras", str(root)]) == 0
    assert (root / "refine_cameras.json").is_file() and (root / "annots_unrefined.npy").read_bytes() == old["annots.npy"]
    assert main(["refine-cameras", str(root), "--restore"]) == 0  # the report of an undone refinement goes too
    assert snapshot(root, skip=("annots_unrefined.npy",)) == old


def test_calibrate_colour_writes_gains_and_report_together(tmp_path, monkeypatch):
    from neuralbody.cli.calibrate_colour import REPORT_NAME, write_gains

    root = make_capture(tmp_path / "capture", num_views=3).root
    gains = np.array([[1.0, 1.0, 1.0], [0.9, 0.8, 0.7], [1.1, 1.0, 0.9]])
    old = snapshot(root)
    fail_writing_reports(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write_gains(root, gains, {"gains": gains.tolist()})
    assert snapshot(root) == old
    monkeypatch.undo()
    write_gains(root, gains, {"gains": gains.tolist()})
    np.testing.assert_allclose([c.colour_gain for c in read_capture(root).cameras], gains)
    assert json.loads((root / REPORT_NAME).read_text())["gains"] == gains.tolist()
    with_gains = snapshot(root)
    monkeypatch.setattr(txn_lib.Transaction, "delete", lambda self, path: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # --reset failing when it removes the report
        main(["calibrate-colour", str(root), "--reset"])
    assert snapshot(root) == with_gains
    monkeypatch.undo()
    assert main(["calibrate-colour", str(root), "--reset"]) == 0
    assert not any(c.has_colour_gain for c in read_capture(root).cameras) and not (root / REPORT_NAME).exists()


def test_import_failing_part_way_leaves_the_output_as_it_was_and_a_rerun_finishes(tmp_path, monkeypatch):
    from neuralbody.capture_import import importer

    cameras = flat_cameras(2)
    write_folders(tmp_path / "src", cameras, [6, 6])
    write_easymocap(cameras, tmp_path / "calib")
    out = tmp_path / "out"
    calls = []
    write_image = importer._write_image

    def crash_on_the_eighth_image(path, image, config):
        calls.append(path)
        if len(calls) == 8:
            raise OSError(28, "No space left on device")
        write_image(path, image, config)

    monkeypatch.setattr(importer, "_write_image", crash_on_the_eighth_image)
    with pytest.raises(OSError, match="No space left"):
        import_capture(tmp_path / "src", tmp_path / "calib", out, ImportConfig(image_format="png"))
    assert list(out.iterdir()) == []  # a new folder stays empty: no half capture to mistake for one
    monkeypatch.undo()
    import_capture(tmp_path / "src", tmp_path / "calib", out, ImportConfig(image_format="png"))
    assert read_capture(out).num_frames == 6
    first = snapshot(out)

    calls.clear()
    monkeypatch.setattr(importer, "_write_image", crash_on_the_eighth_image)  # re-import over it: fails again
    with pytest.raises(OSError, match="No space left"):
        import_capture(tmp_path / "src", tmp_path / "calib", out, ImportConfig(stop=4, image_format="png"))
    assert snapshot(out) == first and read_capture(out).num_frames == 6
