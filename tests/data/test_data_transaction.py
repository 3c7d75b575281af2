"""Transactions on a capture folder: commit, discard of an uncommitted one, roll-forward of a
committed one cut short after any number of moves, idempotent recovery, deletions, the lock."""

from __future__ import annotations

import json

import pytest

from neuralbody.data import transaction as txn_lib
from neuralbody.data.transaction import TXN_DIR, CaptureBusy, begin, recover


def snapshot(root) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> bytes), the staging folder included."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def old_capture(root):
    """A small 'capture': changed, kept, deleted files and a folder that is replaced."""
    (root / "params").mkdir(parents=True)
    (root / "keep").mkdir()
    for name in ("0", "1", "2"):
        (root / "params" / f"{name}.npy").write_bytes(b"old " + name.encode())
    (root / "keep" / "a.txt").write_text("kept")
    (root / "annots.npy").write_bytes(b"old annots")
    (root / "report.json").write_text("old report")
    (root / "masks").mkdir()
    (root / "masks" / "stale.png").write_bytes(b"stale")
    return snapshot(root)


def stage_changes(transaction) -> None:
    transaction.write_bytes("params/0.npy", b"new 0")
    transaction.write_bytes("params/3.npy", b"new 3")  # a new file
    transaction.write_bytes("annots.npy", b"new annots")
    transaction.write_text("fit/residuals.json", "{}")  # in a new folder
    transaction.delete("report.json")
    transaction.delete("masks")  # a folder replaced by a new one
    transaction.write_bytes("masks/fresh.png", b"fresh")


def expected_new(old: dict[str, bytes]) -> dict[str, bytes]:
    new = {k: v for k, v in old.items() if k != "report.json" and not k.startswith("masks/")}
    new.update({"params/0.npy": b"new 0", "params/3.npy": b"new 3", "annots.npy": b"new annots",
                "fit/residuals.json": b"{}", "masks/fresh.png": b"fresh"})  # fmt: skip
    return new


def test_commit_applies_everything_and_nothing_shows_before(tmp_path):
    old = old_capture(tmp_path)
    with begin(tmp_path, "test") as transaction:
        stage_changes(transaction)
        assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(TXN_DIR)} == old  # not yet
        assert transaction.current("params/0.npy").read_bytes() == b"new 0"  # reads its own writes
        assert transaction.current("params/1.npy") == tmp_path / "params" / "1.npy"
    assert snapshot(tmp_path) == expected_new(old)
    assert not (tmp_path / TXN_DIR).exists()
    assert recover(tmp_path) == "clean"


def test_an_error_inside_the_block_leaves_the_old_state(tmp_path):
    old = old_capture(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with begin(tmp_path, "test") as transaction:
            stage_changes(transaction)
            raise RuntimeError("boom")
    assert snapshot(tmp_path) == old


def test_a_killed_uncommitted_transaction_is_discarded(tmp_path, monkeypatch):
    old = old_capture(tmp_path)
    monkeypatch.setattr(txn_lib.Transaction, "abort", lambda self: None)  # died: no clean-up ran
    with pytest.raises(RuntimeError):
        with begin(tmp_path, "test") as transaction:
            stage_changes(transaction)
            raise RuntimeError("killed")
    assert (tmp_path / TXN_DIR / "files" / "params" / "0.npy").is_file()  # the staging folder is left
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(TXN_DIR)} == old
    assert recover(tmp_path) == "discarded"
    assert snapshot(tmp_path) == old
    assert recover(tmp_path) == "clean"


@pytest.mark.parametrize("moves", [0, 1, 3, 5])  # 5 files staged: 5 = every move done, clean-up not
def test_a_committed_transaction_cut_short_rolls_forward(tmp_path, monkeypatch, moves):
    old = old_capture(tmp_path)

    def die(stage, count, total):
        if stage == "moved" and count == moves:
            raise KeyboardInterrupt("killed")  # BaseException, like a kill: nothing may catch it on the way

    monkeypatch.setattr(txn_lib, "_checkpoint", die)
    with pytest.raises(KeyboardInterrupt):
        with begin(tmp_path, "test") as transaction:
            stage_changes(transaction)
    record = json.loads((tmp_path / TXN_DIR / "commit.json").read_text())
    assert record["command"] == "test" and len(record["files"]) == 5 and record["delete"] == ["report.json", "masks"]
    placed = sum((tmp_path / rel).is_file() and not (tmp_path / TXN_DIR / "files" / rel).exists()
                 for rel in record["files"])  # fmt: skip
    assert placed == moves  # cut short exactly there: a half-applied capture
    monkeypatch.undo()
    assert recover(tmp_path) == "rolled forward"
    assert snapshot(tmp_path) == expected_new(old)
    assert recover(tmp_path) == "clean"


def test_recovery_cut_short_itself_is_finished_by_the_next_one(tmp_path, monkeypatch):
    old = old_capture(tmp_path)
    monkeypatch.setattr(txn_lib, "_checkpoint", lambda stage, count, total: stage == "moved" and count == 1 and 1 / 0)
    with pytest.raises(ZeroDivisionError):
        with begin(tmp_path, "test") as transaction:
            stage_changes(transaction)
    with pytest.raises(ZeroDivisionError):  # the recovery dies at the same point (its first move)
        recover(tmp_path)
    assert (tmp_path / TXN_DIR / "deleted").is_file()  # deletions done once: not repeated over new files
    monkeypatch.undo()
    assert recover(tmp_path) == "rolled forward"
    assert snapshot(tmp_path) == expected_new(old)


def test_a_folder_deleted_then_written_into_survives_a_roll_forward(tmp_path, monkeypatch):
    """Deleting a folder then writing into it: a roll-forward must not delete the new files again."""
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").write_bytes(b"old a")
    monkeypatch.setattr(txn_lib, "_checkpoint", lambda stage, count, total: stage == "moved" and count == 2 and 1 / 0)
    with pytest.raises(ZeroDivisionError):
        with begin(tmp_path, "test") as transaction:
            transaction.delete("masks")
            transaction.write_bytes("masks/a.png", b"new a")
            transaction.write_bytes("masks/b.png", b"new b")
            transaction.write_bytes("masks/c.png", b"new c")
    monkeypatch.undo()
    recover(tmp_path)
    assert snapshot(tmp_path) == {"masks/a.png": b"new a", "masks/b.png": b"new b", "masks/c.png": b"new c"}


def test_a_second_writer_is_refused_and_a_reader_leaves_a_live_transaction_alone(tmp_path):
    old = old_capture(tmp_path)
    with begin(tmp_path, "first") as transaction:
        transaction.write_bytes("annots.npy", b"new annots")
        with pytest.raises(CaptureBusy, match="another neuralbody command"):
            with begin(tmp_path, "second"):
                pass
        assert recover(tmp_path) == "in progress"  # staging, no record: the reader sees the old state
        assert transaction.is_staged("annots.npy") and (tmp_path / "annots.npy").read_bytes() == b"old annots"
    assert snapshot(tmp_path) == {**old, "annots.npy": b"new annots"}


def test_bad_paths_and_impossible_targets_are_refused_before_anything_changes(tmp_path):
    old = old_capture(tmp_path)
    with begin(tmp_path, "test") as transaction:
        for bad in ("../outside", "/etc/passwd", f"{TXN_DIR}/commit.json", "", "a/../../b"):
            with pytest.raises(ValueError, match="inside the capture"):
                transaction.stage(bad)
            with pytest.raises(ValueError, match="inside the capture"):
                transaction.delete(bad)
    with pytest.raises(ValueError, match="is a folder"):
        with begin(tmp_path, "test") as transaction:
            transaction.write_bytes("annots.npy", b"new")
            transaction.write_bytes("keep", b"a file where a folder is")
    with pytest.raises(ValueError, match="is a file"):
        with begin(tmp_path, "test") as transaction:
            transaction.write_bytes("annots.npy/inside", b"x")
    assert snapshot(tmp_path) == old
    with begin(tmp_path, "test") as transaction:  # a folder replaced by a file: allowed when it is deleted
        transaction.delete("keep")
        transaction.write_bytes("keep", b"now a file")
    assert (tmp_path / "keep").read_bytes() == b"now a file"


def test_a_tampered_record_is_refused(tmp_path):
    (tmp_path / TXN_DIR).mkdir()
    record = {"format": "neuralbody-transaction", "version": 1, "command": "x", "files": ["../escape"], "delete": []}
    (tmp_path / TXN_DIR / "commit.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="not a neuralbody commit record"):
        recover(tmp_path)
    (tmp_path / TXN_DIR / "commit.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a neuralbody commit record"):
        recover(tmp_path)


def test_begin_removes_stale_temporaries_and_needs_the_folder(tmp_path):
    old_capture(tmp_path)
    (tmp_path / "annots.npy.tmp").write_bytes(b"left by an old killed write")
    (tmp_path / "neuralbody.json.x1y2z3.tmp").write_bytes(b"left by a killed atomic write")
    (tmp_path / "my.notes.tmp").write_text("not ours")
    with begin(tmp_path, "test"):
        pass
    assert not (tmp_path / "annots.npy.tmp").exists() and not (tmp_path / "neuralbody.json.x1y2z3.tmp").exists()
    assert (tmp_path / "my.notes.tmp").read_text() == "not ours"
    assert (tmp_path / "annots.npy").read_bytes() == b"old annots"
    with pytest.raises(FileNotFoundError, match="not found"):
        with begin(tmp_path / "missing", "test"):
            pass


def test_read_capture_finishes_a_committed_transaction(tmp_path, monkeypatch):
    """A reader never sees the half-applied state: opening the capture rolls it forward."""
    import numpy as np
    from fake_zju import make_capture

    from neuralbody.data.capture import read_capture

    fake = make_capture(tmp_path / "capture", num_views=2, num_frames=2)
    root = fake.root
    new_vertices = [np.full_like(fake.vertices[n], float(n + 1)) for n in (0, 1)]
    monkeypatch.setattr(txn_lib, "_checkpoint", lambda stage, count, total: stage == "moved" and count == 1 and 1 / 0)
    with pytest.raises(ZeroDivisionError):
        with begin(root, "test") as transaction:
            for n in (0, 1):
                np.save(transaction.stage(f"vertices/{n}.npy"), new_vertices[n])
    monkeypatch.undo()
    assert not np.array_equal(np.load(root / "vertices" / "1.npy"), new_vertices[1])  # half-applied on disk
    capture = read_capture(root)
    for n in (0, 1):
        np.testing.assert_array_equal(capture.load_vertices(n), new_vertices[n])
    assert not (root / TXN_DIR).exists()
