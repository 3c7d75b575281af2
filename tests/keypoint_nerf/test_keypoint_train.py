"""train-keypoint on a tiny corpus: learning, checkpoints and resume, rendering and scoring a
held-out person, and the commands' errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from torchrun_launch import launch_two_ranks
from neuralbody.cli.main import main
from neuralbody.data.corpus import read_corpus
from neuralbody.keypoint_nerf.scoring import render_and_score
from neuralbody.keypoint_nerf.train import CHECKPOINT_NAME, KeypointTrainConfig, KeypointTrainer, load_trained, rays_loss

pytestmark = pytest.mark.anny  # the tiny corpus is rendered from Anny

TINY_OPTIONS = {"input_size": 32, "channels": 8, "stacks": 1, "depth": 2, "view_mlp": [32], "density_mlp": [16],
                "blend_mlp": [8]}  # fmt: skip


def _config(corpus: Path, out: Path, **overrides) -> KeypointTrainConfig:
    values = dict(corpus=str(corpus), out=str(out), model_options=dict(TINY_OPTIONS), steps=3, rays=64, samples=8,
                  num_inputs=2, log_every=1, ckpt_every=2, device="cpu")  # fmt: skip
    values.update(overrides)
    return KeypointTrainConfig(**values)


def test_training_steps_decrease_the_loss_of_a_batch(tiny_corpus, tmp_path):
    trainer = KeypointTrainer(_config(tiny_corpus, tmp_path / "run", lr=3e-3), progress=False)
    examples = trainer.batch_for(0)
    assert examples[0].frame.views.images.shape == (2, 4, 32, 32) and examples[0].colours.shape == (64, 3)
    assert examples[0].frame.keypoints.shape == (23, 3)

    def loss() -> float:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            return float(rays_loss(trainer.model, examples[0], trainer.config, "cpu", generator)[0])

    before = loss()
    losses = []
    for _ in range(20):
        trainer.train_step(examples)
        losses.append(loss())
    assert losses[-1] < 0.85 * before and losses[-1] < losses[len(losses) // 2]


def test_checkpoint_round_trip_and_resume(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    trainer = KeypointTrainer(_config(tiny_corpus, run), progress=False)
    assert trainer.run() == 3
    loaded = load_trained(run)
    assert loaded.step == 3 and np.array_equal(loaded.regressor.indices, trainer.regressor.indices)
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value), name
    resumed = KeypointTrainer(_config(tiny_corpus, run, steps=5), resume=True, progress=False)
    assert resumed.step == 3 and resumed.run() == 5
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 5
    # a held-out person rendered and scored with no training on them
    corpus = read_corpus(tiny_corpus)
    subject = corpus.samples("heldout_people")[0].subject
    score = render_and_score(load_trained(run), corpus.capture(subject), 0, [0, 1], 2, num_samples=8)
    assert score.image.shape == (48, 48, 3) and np.isfinite(score.psnr_box) and 0 <= score.ssim_box <= 1


WORKER = """
import sys, torch
from neuralbody.keypoint_nerf.train import KeypointTrainConfig, KeypointTrainer
from neuralbody.training.distributed import init_distributed, shutdown_distributed
torch.set_num_threads(1)
context = init_distributed("cpu")
trainer = KeypointTrainer(KeypointTrainConfig.from_json(sys.argv[1]), progress=False, distributed=context)
colours = trainer.batch_for(0)[0].colours.clone()
trainer.run()
torch.save({"state": trainer.model.state_dict(), "colours": colours}, sys.argv[2] + f"/rank{context.rank}.pt")
shutdown_distributed()
"""


@pytest.mark.slow
def test_two_ranks_draw_different_rays_and_hold_identical_weights(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    _config(tiny_corpus, out, steps=2, ckpt_every=100).to_json(tmp_path / "config.json")
    (tmp_path / "worker.py").write_text(WORKER)
    launch_two_ranks([str(tmp_path / "worker.py"), str(tmp_path / "config.json"), str(tmp_path)])
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert not torch.equal(ranks[0]["colours"], ranks[1]["colours"])  # each rank draws its own frames and rays
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key  # averaged gradients: the same step everywhere
    assert (out / CHECKPOINT_NAME).is_file()


def test_commands_train_render_and_refuse_bad_input(tiny_corpus, tmp_path, caplog):
    out = tmp_path / "run"
    options = [arg for key, value in TINY_OPTIONS.items() for arg in ("--option", f"{key}={json.dumps(value)}")]
    args = ["train-keypoint", str(tiny_corpus), "--out", str(out), "--steps", "2", "--rays", "32", "--samples", "4",
            "--inputs", "2", "--no-progress", *options]  # fmt: skip
    assert main(args) == 0 and (out / CHECKPOINT_NAME).is_file()
    assert main(["train-keypoint", str(tiny_corpus), "--out", str(out), "--resume", "--steps", "3", "--no-progress"]) == 0
    assert load_trained(out).step == 3
    subject = str(tiny_corpus / read_corpus(tiny_corpus).samples("heldout_people")[0].subject)
    image = tmp_path / "view.png"
    render = ["render-keypoint", str(out), subject, "--frame", "0", "--inputs", "0,1", "--camera", "2", "--samples", "4"]
    assert main([*render, "--out", str(image), "--no-progress"]) == 0
    assert image.is_file() and json.loads(image.with_suffix(".json").read_text())["camera"] == 2
    bad = {
        "not a corpus folder": ["train-keypoint", str(tmp_path), "--out", str(tmp_path / "x")],
        "--steps must be >= 1": ["train-keypoint", str(tiny_corpus), "--out", str(tmp_path / "y"), "--steps", "0"],
        "unknown KeypointNeRF options": ["train-keypoint", str(tiny_corpus), "--out", str(tmp_path / "z"), "--option", "width=3"],
        "--inputs '0,7'": [*render[:5], "--inputs", "0,7", "--camera", "2", "--out", str(image)],
        "cameras repeat": [*render[:5], "--inputs", "0,0", "--camera", "2", "--out", str(image)],
        "--camera 9": [*render[:7], "--camera", "9", "--out", str(image)],
        "must be a .png": [*render, "--out", str(tmp_path / "view.jpg")],
        "train a model": ["render-keypoint", str(tmp_path / "nothing"), subject, "--camera", "1", "--out", str(image)],
    }  # fmt: skip
    for message, argv in bad.items():
        caplog.clear()
        assert main([*argv, "--no-progress"]) == 1, message
        assert message in caplog.text, (message, caplog.text)
