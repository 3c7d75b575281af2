"""finetune-keypoint on a tiny corpus's held-out person: it starts from the run's model (architecture,
encoding, weights, regressor), reads only the training cameras, lowers the loss on the capture,
resumes, and refuses a capture its regressor cannot take."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from neuralbody.cli.main import main
from neuralbody.data.corpus import read_corpus
from neuralbody.keypoint_nerf.finetune import FinetuneConfig, FinetuneTrainer, init_model_fields
from neuralbody.keypoint_nerf.train import CONFIG_NAME, KeypointTrainConfig, KeypointTrainer, load_trained, rays_loss

pytestmark = pytest.mark.anny  # the tiny corpus is rendered from Anny

TINY_OPTIONS = {"input_size": 32, "channels": 8, "stacks": 1, "depth": 2, "view_mlp": [32], "density_mlp": [16],
                "blend_mlp": [8]}  # fmt: skip


@pytest.fixture(scope="module")
def initial_run(tiny_corpus, tmp_path_factory):
    """A generalisable run (global encoding, tiny options) trained 2 steps, and the held-out person's capture."""
    out = tmp_path_factory.mktemp("kp") / "init"
    config = KeypointTrainConfig(corpus=str(tiny_corpus), out=str(out), encoding="global", model_options=dict(TINY_OPTIONS),
                                 steps=2, rays=32, samples=4, num_inputs=2, device="cpu")  # fmt: skip
    KeypointTrainer(config, progress=False).run()
    subject = read_corpus(tiny_corpus).samples("heldout_people")[0].subject
    return out, tiny_corpus / subject


def _config(initial_run, out, **overrides) -> FinetuneConfig:
    init, capture = initial_run
    values = dict(corpus=str(capture), out=str(out), init=str(init), views=[0, 1], frames=[0, 1], steps=3, rays=64,
                  samples=8, num_inputs=1, lr=3e-3, log_every=1, ckpt_every=2, device="cpu", **init_model_fields(str(init)))  # fmt: skip
    values.update(overrides)
    return FinetuneConfig(**values)


def test_starts_from_the_run_reads_only_training_views_and_lowers_the_loss(initial_run, tmp_path, monkeypatch):
    trainer = FinetuneTrainer(_config(initial_run, tmp_path / "ft"), progress=False)
    initial = load_trained(initial_run[0])
    assert trainer.model.config == initial.model.config and trainer.model.config.encoding == "global"
    for name, value in initial.model.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name
    assert np.array_equal(trainer.regressor.indices, initial.regressor.indices)
    saved = json.loads((tmp_path / "ft" / CONFIG_NAME).read_text())
    assert saved["init"] == str(initial_run[0]) and saved["model_options"]["channels"] == TINY_OPTIONS["channels"]

    read = []
    load_image = type(trainer.capture).load_image
    monkeypatch.setattr(type(trainer.capture), "load_image", lambda self, f, v: read.append(v) or load_image(self, f, v))
    examples = [trainer.batch_for(step)[0] for step in range(6)]
    assert set(read) == {0, 1}  # camera 2 is held out: never read
    assert {int(e.frame.views.images.shape[0]) for e in examples} == {1}

    def loss() -> float:
        with torch.no_grad():
            return float(np.mean([rays_loss(trainer.model, e, trainer.config, "cpu", torch.Generator().manual_seed(0))[0]
                                  for e in examples[:2]]))  # fmt: skip

    before = loss()
    losses = []
    for _ in range(20):
        trainer.train_step(examples[:2])
        losses.append(loss())
    assert losses[-1] < 0.85 * before and losses[-1] < losses[len(losses) // 2]


def test_budget_in_minutes_ends_the_run_and_decays_the_rate(initial_run, tmp_path):
    trainer = FinetuneTrainer(_config(initial_run, tmp_path / "ft", steps=1000, minutes=0.5), progress=False)
    trainer.elapsed_s = 15.0
    assert trainer.fraction() == pytest.approx(0.5)
    trainer.elapsed_s = 30.0
    assert trainer.fraction() >= 1.0 and trainer.run() == 0  # the budget is spent: no step


def test_command_trains_resumes_and_refuses_a_capture_without_anny_vertices(initial_run, tmp_path, caplog):
    init, capture = initial_run
    out = tmp_path / "ft"
    args = ["finetune-keypoint", str(init), str(capture), "--out", str(out), "--views", "0,1", "--frames", "0:2",
            "--steps", "2", "--rays", "32", "--samples", "4", "--ckpt-every", "1", "--no-progress"]  # fmt: skip
    assert main(args) == 0 and load_trained(out).step == 2
    assert json.loads((out / CONFIG_NAME).read_text())["num_inputs"] == 1  # two views: one input, one target
    assert main(["finetune-keypoint", str(init), str(capture), "--out", str(out), "--views", "0,1", "--frames", "0:2",
                 "--resume", "--steps", "3", "--no-progress"]) == 0  # fmt: skip
    resumed = load_trained(out)
    assert resumed.step == 3 and resumed.model.config == load_trained(init).model.config
    start = load_trained(init).model.state_dict()
    assert any(not torch.equal(value, start[name]) for name, value in resumed.model.state_dict().items())

    no_vertices = tmp_path / "no_vertices"
    shutil.copytree(capture, no_vertices)
    shutil.rmtree(no_vertices / "vertices")
    other_body = tmp_path / "other_body"
    shutil.copytree(capture, other_body)
    for path in (other_body / "vertices").glob("*.npy"):
        np.save(path, np.zeros((6890, 3), dtype=np.float32))  # SMPL's count
    bad = {
        "no posed body vertices": [str(no_vertices), "--views", "0,1"],
        "6890 body vertices": [str(other_body), "--views", "0,1"],
        "need 3 distinct cameras": [str(capture), "--views", "0,1", "--inputs", "2"],
        "--views": [str(capture), "--views", "0,5"],
    }  # fmt: skip
    for message, argv in bad.items():
        caplog.clear()
        command = ["finetune-keypoint", str(init), *argv, "--frames", "0:2", "--out", str(tmp_path / "bad"), "--no-progress"]
        assert main(command) == 1, message
        assert message in caplog.text and len(caplog.text.strip().splitlines()) == 1, (message, caplog.text)
