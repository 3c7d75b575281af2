"""neuralbody.io.atomic: round trips, a failed write leaves the target and no temporary, stale clean-up."""

from __future__ import annotations

import os

import numpy as np
import pytest

from neuralbody.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, remove_stale_temporaries


def _killed_writer_leftover(target, **kwargs):
    """The temporary a writer killed before its rename would leave (the real name, recreated)."""
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, **kwargs) as tmp:
            name = tmp
            raise KeyboardInterrupt
    assert not name.exists()
    name.write_bytes(b"partial")
    return name


def test_round_trip_text_bytes_and_a_library_writer(tmp_path):
    text_path = atomic_write_text(tmp_path / "sub" / "report.json", '{"psnr": 30.5, "name": "caf\u00e9"}\n')
    assert text_path == tmp_path / "sub" / "report.json"  # the folder is created
    assert text_path.read_text(encoding="utf-8") == '{"psnr": 30.5, "name": "caf\u00e9"}\n'
    data = bytes(range(256)) * 3
    assert atomic_write_bytes(tmp_path / "blob.bin", data).read_bytes() == data
    atomic_write_bytes(tmp_path / "blob.bin", b"new")  # replaces an existing file
    assert (tmp_path / "blob.bin").read_bytes() == b"new"
    arrays = {"a": np.arange(5.0), "b": np.eye(3, dtype=np.int32)}
    with atomic_path(tmp_path / "arrays.npz", keep_suffix=True) as tmp:
        np.savez(tmp, **arrays)  # savez keeps a name that already ends in .npz
    with np.load(tmp_path / "arrays.npz") as loaded:
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "blob.bin", "sub"]


def test_a_failing_writer_leaves_the_target_untouched_and_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "config.json", "old\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half a new fi")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["config.json"]
    # the same for a target that did not exist yet
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "fresh.txt") as tmp:
            tmp.write_text("x")
            raise ValueError("bad input")
    assert os.listdir(tmp_path) == ["config.json"]


def test_keep_suffix_naming(tmp_path):
    with atomic_path(tmp_path / "mesh.ply", keep_suffix=True) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith("mesh.") and tmp.name.endswith(".tmp.ply") and tmp.suffix == ".ply"
        tmp.write_text("ply\n")
    with atomic_path(tmp_path / "mesh.ply") as tmp:
        assert tmp.name.startswith("mesh.ply.") and tmp.name.endswith(".tmp")
        tmp.write_text("ply 2\n")
    assert (tmp_path / "mesh.ply").read_text() == "ply 2\n"
    assert os.listdir(tmp_path) == ["mesh.ply"]


def test_remove_stale_temporaries_removes_only_temporaries(tmp_path):
    keep = ["checkpoint.pt", "report.tmp", "notes.tmp.txt", "data.tmpl", "my.tmp.notes", "mesh.ply"]
    for name in keep:
        (tmp_path / name).write_text("user data")
    (tmp_path / "folder.abc.tmp").mkdir()  # a folder, not a file
    stale = [
        _killed_writer_leftover(tmp_path / "checkpoint.pt"),
        _killed_writer_leftover(tmp_path / "mesh.ply", keep_suffix=True),
        _killed_writer_leftover(tmp_path / "report.json"),
    ]
    only_checkpoint = remove_stale_temporaries(tmp_path, "checkpoint.pt")
    assert only_checkpoint == [stale[0]]
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale[1:])
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["folder.abc.tmp"])
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path / "missing") == []
