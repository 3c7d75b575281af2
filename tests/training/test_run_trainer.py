"""The shared run skeleton (budget, checkpoints, resume, log) on a toy regression."""

import csv
import dataclasses
import json

import pytest
import torch

from neuralbody.io.errors import InputError
from neuralbody.training.run_trainer import CHECKPOINT_NAME, RunTrainer, budget_fraction, check_budget


@dataclasses.dataclass
class ToyConfig:
    out: str
    width: int = 3
    seed: int = 0
    steps: int = 30
    lr: float = 0.3
    lr_final_ratio: float = 0.1
    log_every: int = 2
    ckpt_every: int = 5
    device: str = "cpu"
    minutes: float | None = None
    cpu_minutes: float | None = None

    def to_json(self, path):
        path.write_text(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass
class ToyModelConfig:
    width: int

    def to_dict(self):
        return dataclasses.asdict(self)


class ToyModel(torch.nn.Linear):
    def __init__(self, width: int):
        super().__init__(width, 1)
        self.config = ToyModelConfig(width)


class ToyTrainer(RunTrainer):
    label = "toy"
    log_fields = ("step", "elapsed_s", "lr", "loss")

    def open_data(self):
        self.truth = torch.arange(1.0, self.config.width + 1.0)

    def build_model(self):
        return ToyModel(self.config.width)

    def batch_for(self, step):
        inputs = torch.randn(16, self.config.width, generator=torch.Generator().manual_seed(1000 + step))
        return inputs, inputs @ self.truth

    def accumulate_gradients(self, batch):
        if self.step == getattr(self, "crash_at", None):
            raise KeyboardInterrupt
        inputs, targets = batch
        loss = (self.model(inputs)[:, 0] - targets).square().mean()
        loss.backward()
        return {"loss": float(loss.detach())}


def test_budget_fraction_is_the_largest_share_spent():
    assert budget_fraction(5, 10, 30.0, None, 20.0, None) == pytest.approx(0.5)
    assert budget_fraction(5, 10, 45.0, 1.0, 20.0, None) == pytest.approx(0.75)
    assert budget_fraction(5, 10, 45.0, 1.0, 110.0, 2.0) == pytest.approx(110 / 120)
    with pytest.raises(ValueError, match="cpu-minutes"):
        check_budget(None, 0.0)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    whole = ToyTrainer(ToyConfig(str(tmp_path / "whole")), progress=False)
    assert whole.run() == 30
    first = ToyTrainer(ToyConfig(str(tmp_path / "split")), progress=False)
    first.crash_at = 17  # killed after the checkpoint of step 15
    with pytest.raises(KeyboardInterrupt):
        first.run()
    second = ToyTrainer(ToyConfig(str(tmp_path / "split")), resume=True, progress=False)
    assert second.step == 15 and second.run() == 30
    for a, b in zip(whole.model.parameters(), second.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    with (tmp_path / "whole" / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == list(range(2, 31, 2))
    assert float(rows[-1]["loss"]) < 0.1 * float(rows[0]["loss"])  # it learns
    assert float(rows[-1]["lr"]) == pytest.approx(0.3 * 0.1 ** (29 / 30), rel=1e-2)  # the last step: lr * ratio^(29/30)


def test_a_spent_cpu_budget_ends_the_run_and_another_model_is_refused(tmp_path):
    trainer = ToyTrainer(ToyConfig(str(tmp_path / "run"), steps=1000, cpu_minutes=0.5), progress=False)
    assert trainer.progress_total() is None
    trainer.cpu_s = 15.0
    assert trainer.fraction() == pytest.approx(0.5)
    trainer.cpu_s = 30.0
    assert trainer.finished() and trainer.run() == 0
    assert (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    with pytest.raises(InputError, match="differs"):
        ToyTrainer(ToyConfig(str(tmp_path / "run"), width=4), resume=True, progress=False)
