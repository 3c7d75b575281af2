"""train-recon on a tiny corpus: batches, learning, checkpoints and resume, two data-parallel ranks, and the reconstruct command."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from torchrun_launch import launch_two_ranks
from neuralbody.cli.main import main
from neuralbody.data.corpus import read_corpus
from neuralbody.recon.dataset import ExampleSettings, make_batch, spread_views
from neuralbody.recon.train import CHECKPOINT_NAME, ReconTrainConfig, ReconTrainer, load_model

pytestmark = pytest.mark.anny  # the tiny corpus is rendered from Anny

TINY_OPTIONS = {"input_size": 32, "channels": 8, "stacks": 1, "depth": 2, "scales": ["s2", "s4", "s16"],
                "view_mlp": [16], "decoder_mlp": [8]}  # fmt: skip


def _config(corpus: Path, out: Path, **overrides) -> ReconTrainConfig:
    values = dict(corpus=str(corpus), out=str(out), model="mvms", model_options=dict(TINY_OPTIONS), steps=4, batch=2,
                  points=256, log_every=1, val_every=2, ckpt_every=2, val_samples=1, device="cpu")  # fmt: skip
    values.update(overrides)
    return ReconTrainConfig(**values)


def test_spread_views_and_batches(tiny_corpus):
    assert spread_views(8, 4) == [0, 2, 4, 6] and spread_views(8, 1, start=3) == [3] and spread_views(3, 2) == [0, 2]
    corpus = read_corpus(tiny_corpus)
    samples = corpus.samples("train")
    settings = ExampleSettings(size=32, points=100)
    batch = make_batch(corpus, samples, 2, settings, np.random.default_rng(5))
    assert batch.views.images.shape == (2, 2, 4, 32, 32) and batch.points.shape == (2, 100, 3)
    assert set(batch.labels.unique().tolist()) <= {0.0, 1.0}
    again = make_batch(corpus, samples, 2, settings, np.random.default_rng(5))
    assert torch.equal(batch.points, again.points) and torch.equal(batch.views.images, again.views.images)
    # the crop holds the person: the mask channel covers a good part of it
    assert 0.1 < float(batch.views.images[:, :, 3].mean()) < 0.9
    fixed = make_batch(corpus, samples[:1], 3, settings, None)
    occupancy = corpus.load_occupancy(samples[0])
    spread = np.linspace(0, len(occupancy.points) - 1, 100).round().astype(int)
    np.testing.assert_array_equal(fixed.points[0].numpy(), occupancy.points[spread])


def test_a_model_learns_one_batch(tiny_corpus, tmp_path):
    torch.manual_seed(0)
    trainer = ReconTrainer(_config(tiny_corpus, tmp_path / "run", lr=1e-2), progress=False)
    batch = trainer.batch_for(0)
    losses = [trainer.train_step(batch)["loss"] for _ in range(30)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_checkpoints_resume_and_load(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    first = ReconTrainer(_config(tiny_corpus, out), progress=False).run()
    assert first.step == 4 and (out / CHECKPOINT_NAME).is_file() and first.val_iou is not None
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and (out / "val.csv").is_file()
    state = {k: v.clone() for k, v in load_model(out)[0].state_dict().items()}
    config = ReconTrainConfig.from_json(out / "config.json")
    config.steps = 6
    resumed = ReconTrainer(config, resume=True, progress=False)
    assert resumed.step == 4 and all(torch.equal(state[k], v) for k, v in resumed.model.state_dict().items())
    assert resumed.run().step == 6
    model, meta = load_model(out)
    assert meta["step"] == 6 and not model.training
    with pytest.raises(ValueError, match="unknown model"):
        _config(tiny_corpus, out, model="nerf")


WORKER = """
import sys, torch
from neuralbody.recon.train import ReconTrainConfig, ReconTrainer
from neuralbody.training.distributed import init_distributed, shutdown_distributed
torch.set_num_threads(1)
context = init_distributed("cpu")
trainer = ReconTrainer(ReconTrainConfig.from_json(sys.argv[1]), progress=False, distributed=context)
batch_points = trainer.batch_for(0).points.clone()
trainer.run()
torch.save({"state": trainer.model.state_dict(), "points": batch_points}, sys.argv[2] + f"/rank{context.rank}.pt")
shutdown_distributed()
"""


@pytest.mark.slow
def test_two_ranks_draw_different_batches_and_hold_identical_weights(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    config = _config(tiny_corpus, out, steps=2, val_every=100, ckpt_every=100)
    config.to_json(tmp_path / "config.json")
    (tmp_path / "worker.py").write_text(WORKER)
    launch_two_ranks([str(tmp_path / "worker.py"), str(tmp_path / "config.json"), str(tmp_path)])
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert not torch.equal(ranks[0]["points"], ranks[1]["points"])  # each rank draws its own frames and points
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key  # averaged gradients: the same step everywhere
    assert (out / CHECKPOINT_NAME).is_file()


def _always_occupied_model(run: Path) -> None:
    """A run folder holding an untrained tiny model whose decoder says "inside" everywhere (logit +4):
    with carving, the reconstruction is the visual hull of the views."""
    from neuralbody.recon.model import PixelAlignedOccupancy, ReconModelConfig
    from neuralbody.training.checkpoint import save_checkpoint

    model = PixelAlignedOccupancy(ReconModelConfig.from_dict(dict(TINY_OPTIONS, kind="mvms")))
    with torch.no_grad():
        last = model.decoder[-1]
        last.weight.zero_()
        last.bias.fill_(4.0)
    save_checkpoint(run / CHECKPOINT_NAME, {"model_config": model.config.to_dict(), "model": model.state_dict(),
                                            "optimizer": {}, "step": 0, "elapsed_s": 0.0})  # fmt: skip


def test_reconstruct_command_writes_a_world_mesh_and_scores_it(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    _always_occupied_model(run)
    subject = read_corpus(tiny_corpus).samples("heldout_people")[0].subject
    out = tmp_path / "mesh.ply"
    code = main(["reconstruct", str(tiny_corpus / subject), "--frame", "0", "--model", str(run), "--out", str(out),
                 "--voxel", "0.02", "--levels", "2", "--metric-samples", "5000", "--no-progress"])  # fmt: skip
    assert code == 0 and out.is_file()
    document = json.loads(out.with_suffix(".json").read_text())
    assert document["views"] == [0, 1, 2] and document["evaluated_points"] < document["dense_points"]
    gt_vertices = np.load(tiny_corpus / subject / "gt_meshes" / "0.npz")["vertices"]
    assert 0.3 < document["volumetric_iou"] < 1.0  # the visual hull of 3 views holds the person and more
    assert document["point_to_surface"] < 0.1 and abs(document["chamfer_l2_seed"] - 0.5 * (
        document["point_to_surface"] ** 2 + document["surface_to_point"] ** 2)) < 1e-12  # fmt: skip
    import trimesh

    mesh = trimesh.load(out, process=False)
    assert np.all(mesh.bounds[0] > gt_vertices.min(0) - 0.15) and np.all(mesh.bounds[1] < gt_vertices.max(0) + 0.15)
    assert "P2S" in capsys.readouterr().out


def test_train_recon_command_and_resume(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    options = [arg for key, value in TINY_OPTIONS.items() for arg in ("--option", f"{key}={json.dumps(value)}")]
    args = ["train-recon", str(tiny_corpus), "--out", str(out), "--model", "pifu", "--steps", "2", "--batch", "2",
            "--points", "128", "--device", "cpu", "--no-progress", *options]  # fmt: skip
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "pifu" and config["view_counts"] == [1] and config["model_options"]["channels"] == 8
    assert main(["train-recon", str(tiny_corpus), "--out", str(out), "--resume", "--steps", "3", "--no-progress"]) == 0
    assert load_model(out)[1]["step"] == 3 and load_model(out)[1]["cpu_s"] > 0
    cpu = tmp_path / "cpu"  # a CPU budget alone: no step limit; a tiny one stops the run after its first step
    assert main(["train-recon", str(tiny_corpus), "--out", str(cpu), "--cpu-minutes", "1e-6",
                 "--batch", "1", "--points", "64", "--device", "cpu", "--no-progress", *options]) == 0  # fmt: skip
    config = json.loads((cpu / "config.json").read_text())
    assert config["cpu_minutes"] == 1e-6 and config["steps"] == 10**9
    assert load_model(cpu)[1]["step"] == 1
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)  # a run folder resumed elsewhere writes there, not where it was made
    assert main(["train-recon", str(tiny_corpus), "--out", str(moved), "--resume", "--steps", "4", "--no-progress"]) == 0
    assert load_model(moved)[1]["step"] == 4 and load_model(out)[1]["step"] == 3
    assert main(["train-recon", str(tiny_corpus), "--out", str(tmp_path / "bad"), "--option", "width=3",
                 "--no-progress"]) == 1  # fmt: skip
    assert "trained pifu" in capsys.readouterr().out


def test_cpu_budget_stops_a_run_and_resume_continues_it(tiny_corpus, tmp_path, monkeypatch):
    import neuralbody.training.run_trainer as run_trainer

    ticks = iter(range(10**6))  # a process clock that advances one second a reading
    monkeypatch.setattr(run_trainer.time, "process_time", lambda: float(next(ticks)))
    out = tmp_path / "run"
    first = ReconTrainer(_config(tiny_corpus, out, steps=10**9, cpu_minutes=2.5 / 60, val_every=100), progress=False).run()
    assert first.step == 3 and first.cpu_s == 3.0  # one second a step: over 2.5 s after the third
    assert load_model(out)[1]["cpu_s"] == 3.0
    config = ReconTrainConfig.from_json(out / "config.json")
    config.cpu_minutes = 4.5 / 60
    resumed = ReconTrainer(config, resume=True, progress=False)
    assert resumed.cpu_s == 3.0 and resumed.step == 3
    second = resumed.run()
    assert second.step == 5 and second.cpu_s == 5.0
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].endswith(",cpu_s") and rows[-1].endswith(",5.0")
    with pytest.raises(ValueError, match="--cpu-minutes"):
        _config(tiny_corpus, out, cpu_minutes=0)


def test_validation_is_carved_by_the_views_masks(tiny_corpus, tmp_path):
    from neuralbody.evaluation.mesh_extraction import carve_mask_reference

    trainer = ReconTrainer(_config(tiny_corpus, tmp_path / "run", val_samples=2), progress=False)
    with torch.no_grad():  # a model that says "inside" everywhere: carved, it is the views' visual hull
        trainer.model.decoder[-1].weight.zero_()
        trainer.model.decoder[-1].bias.fill_(4.0)
    result = trainer.validate()
    hits = union = 0
    for sample in trainer.val_samples:  # the hull's IoU computed independently, point by point
        capture = trainer.corpus.capture(sample.subject)
        views = spread_views(capture.num_views, min(result["views"], capture.num_views))
        points = make_batch(trainer.corpus, [sample], result["views"], dataclasses.replace(trainer.settings, points=4096),
                            None).points[0].numpy().astype(np.float64)  # fmt: skip
        inside = trainer.corpus.load_occupancy(sample).inside
        labels = inside[np.unique(np.linspace(0, len(inside) - 1, min(4096, len(inside))).round().astype(np.int64))]
        hull = carve_mask_reference(points, [capture.cameras[v] for v in views], [capture.load_mask(sample.frame, v) for v in views])
        hits, union = hits + int((hull & labels).sum()), union + int((hull | labels).sum())
    assert 0.0 < result["iou"] < 1.0 and result["iou"] == pytest.approx(hits / union, abs=1e-12)
