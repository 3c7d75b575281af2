"""Training runs: a few steps, checkpoints loaded weights-only, resume, scoring; and the two commands."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from neuralbody.body.smpl import load_smpl
from neuralbody.cli.main import main
from neuralbody.snarf.evaluation import default_frames, evaluate_run
from neuralbody.snarf.metrics import EvalSettings
from neuralbody.snarf.posed_meshes import read_posed_meshes
from neuralbody.snarf.run_files import load_run, train_run
from neuralbody.snarf.training import TrainSettings
from snarf_toys import write_posed_folder
from tube_body import write_smpl_npz

SMALL = EvalSettings(volume_samples=2000, surface_samples=2000, voxel=0.05, chamfer_samples=1000)


@pytest.fixture(scope="module")
def tube_data(tmp_path_factory):
    """(SMPL tube-body model file, a 4-frame posed-mesh folder: train 0..2, held out 3)."""
    root = tmp_path_factory.mktemp("snarf_cli")
    model_path = root / "tubes.npz"
    write_smpl_npz(model_path)
    body = load_smpl(model_path)
    poses = torch.zeros(4, 72)
    poses[:, 3 * 16 + 2] = torch.tensor([-0.3, 0.0, 0.3, 0.6])  # the left shoulder
    Rh, Th = torch.zeros(4, 3), torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.0, 0.0], [0.3, 0.0, 0.0]])
    meta = {"body_model": "smpl", "frames": {"train": [0, 3], "novel_pose": [3, 4]}}
    return model_path, write_posed_folder(root / "posed", body, poses, torch.zeros(10), Rh, Th, meta)


@pytest.mark.parametrize("kind", ["forward", "backward"])
def test_train_resume_load_and_score(tmp_path, tube_data, kind):
    model_path, folder = tube_data
    run = tmp_path / "run"
    settings = TrainSettings(budget_s=600, max_steps=3, points_per_step=256)
    first = train_run(folder, run, kind=kind, settings=settings, body_model_path=str(model_path), progress=False)
    assert first.state.step == 3 and first.new_steps == 3 and (run / "checkpoint.pt").is_file()
    saved = torch.load(run / "checkpoint.pt", weights_only=True)  # plain values only
    assert saved["train_frames"] == [0, 1, 2] and saved["spec"]["kind"] == kind
    with pytest.raises(ValueError, match="already holds a SNARF run"):
        train_run(folder, run, kind=kind, settings=settings, body_model_path=str(model_path), progress=False)
    more = TrainSettings(budget_s=600, max_steps=5, points_per_step=256)
    second = train_run(folder, run, settings=more, resume=True, progress=False)
    assert second.state.step == 5 and second.new_steps == 2 and second.kind == kind
    loaded = load_run(run)
    assert loaded.spec.kind == kind and loaded.payload["step"] == 5
    final = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(final[name], value) for name, value in loaded.model.state_dict().items())
    result = evaluate_run(loaded, folder, settings=SMALL, progress=False)
    assert [f.number for f in result.frames] == [3]  # the held-out split of the training folder
    assert 0.0 <= result.mean("iou") <= 1.0 and 0.0 <= result.mean("near_surface_iou") <= 1.0


def test_default_frames_spread_over_the_held_out_split_or_all(tube_data):
    _, folder = tube_data
    data = read_posed_meshes(folder)
    assert default_frames(data, str(folder.resolve()), 5) == [3]
    assert default_frames(data, "/elsewhere", 5) == [0, 1, 2, 3]
    assert default_frames(data, "/elsewhere", 2) == [0, 3]


def test_cli_snarf_and_snarf_eval(tmp_path, tube_data, capsys):
    model_path, folder = tube_data
    run, scores = tmp_path / "run", tmp_path / "scores.json"
    code = main(["snarf", str(folder), "--out", str(run), "--model", "backward", "--steps", "2", "--points", "256",
                 "--body-model-path", str(model_path), "--frames", "0:2", "--no-progress"])
    assert code == 0 and "snarf: backward model, 2 steps" in capsys.readouterr().out
    code = main(["snarf-eval", str(run), "--data", str(folder), "--frames", "2,3", "--samples", "2000", "--voxel",
                 "0.05", "--json", str(scores), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "mean" in out and "NS-IoU" in out
    written = json.loads(scores.read_text())
    assert written["kind"] == "backward" and [f["number"] for f in written["frames"]] == [2, 3]
    assert set(written["mean"]) == {"iou", "near_surface_iou", "chamfer_l2"}


def _errors(argv: list[str], caplog) -> tuple[int, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        code = main(argv)
    return code, [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("argv, words", [
    (["snarf-eval", "{tmp}"], "no SNARF run here"),
    (["snarf", "{data}", "--out", "{tmp}/r", "--frames", "0:9", "--body-model-path", "{model}"], "--frames"),
    (["snarf", "{tmp}/nothing", "--out", "{tmp}/r"], "no such folder of posed meshes"),
    (["snarf", "{data}", "--out", "{tmp}/r", "--minutes", "0"], "--minutes must be positive"),
])
def test_cli_bad_input_is_one_line(tmp_path, tube_data, caplog, argv, words):
    model_path, folder = tube_data
    filled = [a.format(tmp=tmp_path, data=folder, model=model_path) for a in argv] + ["--no-progress"]
    code, errors = _errors(filled, caplog)
    assert code == 1 and len(errors) == 1 and words in errors[0] and "\n" not in errors[0]
    assert not (tmp_path / "r").exists()  # nothing written
