"""bench/bench_recon.py: the rows reused from an earlier result, the table, and the kept body fits."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from bench_module import bench_module

@pytest.fixture(scope="module")
def bench():
    with bench_module("bench_recon") as module:
        yield module


def _document(bench, split="heldout_people", frames=12, samples=50_000, skip=0) -> dict:
    rows = [bench.Row(method, views, 2.0, 5.0, 0.6, 0.8, 1.0, frames)
            for method, views in (("mvms", 4), ("visual hull", 4), ("fitted body", 4), ("true body", 0))]  # fmt: skip
    return {"split": split, "samples": samples, "skip_frames": skip, "rows": [dataclasses.asdict(r) for r in rows]}


def test_reuse_takes_the_fixed_rows_of_a_matching_result(bench, tmp_path):
    args = argparse.Namespace(split="heldout_people", max_frames=12, samples=50_000, skip_frames=0)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_document(bench)))
    rows = bench.reused_rows(path, args)
    assert [r.method for r in rows] == ["visual hull", "fitted body", "true body"]  # never a trained model's row
    assert "fitted body" in bench.format_table(rows)
    mismatches = (_document(bench, split="heldout_poses"), _document(bench, frames=6), _document(bench, samples=10),
                  _document(bench, skip=12))  # fmt: skip
    for mismatch in mismatches:
        path.write_text(json.dumps(mismatch))
        with pytest.raises(ValueError, match="without --reuse"):
            bench.reused_rows(path, args)


def test_no_train_takes_a_run_as_it_is(bench, tmp_path):
    from neuralbody.training.checkpoint import save_checkpoint

    run = tmp_path / "runs" / "mvms"
    with pytest.raises(ValueError, match="no checkpoint"):
        bench.train(tmp_path / "corpus", run, "mvms", None, 30.0, "cpu", skip=True)
    run.mkdir(parents=True)
    save_checkpoint(run / "checkpoint.pt", {"step": 120, "elapsed_s": 90.0, "cpu_s": 60.0, "model": {}})
    info = bench.train(tmp_path / "corpus", run, "mvms", None, 30.0, "cpu", skip=True)  # 1 of 30 CPU minutes: kept
    assert info == {"steps": 120, "minutes": 1.5, "cpu_minutes": 1.0, "cpu_s": None}


def test_a_body_fit_is_made_once_and_read_back(bench, tmp_path):
    import types

    import numpy as np
    import torch

    calls = []
    fits = bench.BodyFits.__new__(bench.BodyFits)  # no body model: the fit itself is replaced
    fits.noise_px, fits.body = 2.0, types.SimpleNamespace(faces=torch.tensor([[0, 1, 2]]))
    fits.fit = lambda capture, frame, views: calls.append(frame) or (np.full((3, 3), float(frame)), None)
    capture = types.SimpleNamespace(root=tmp_path / "s0030")
    (vertices, faces), seconds = fits.fit_cached(tmp_path / "fits", capture, 2, [0, 2, 4, 6])
    (again, _), seconds_again = fits.fit_cached(tmp_path / "fits", capture, 2, [0, 2, 4, 6])
    assert calls == [2] and seconds_again == seconds >= 0 and np.array_equal(again, vertices)
    assert np.array_equal(faces, [[0, 1, 2]]) and float(vertices[0, 0]) == 2.0
    fits.fit_cached(tmp_path / "fits", capture, 2, [0, 4])  # other views: another fit
    assert calls == [2, 2] and len(list((tmp_path / "fits").iterdir())) == 2
