"""The skeleton every corpus-trained model shares: a run folder, a budget, checkpoints and resume.

``train-recon`` and ``train-keypoint`` (and ``finetune-keypoint``) differ in their data, their
model and what one step computes; everything around that is this base class,
:class:`RunTrainer`:

* the run folder: ``config.json`` (the run's configuration, written when a run starts),
  ``checkpoint.pt`` (model configuration and weights, the optimiser, ``step``, ``elapsed_s``
  and whatever :meth:`RunTrainer.extra_state` adds; written atomically every ``ckpt_every``
  steps and at the end) and ``log.csv`` (every ``log_every`` steps);
* the budget: the run stops at ``steps``, or, when set, after ``minutes`` of training wall
  clock (the steps' own time) or ``cpu_minutes`` of the training process's CPU time
  (``time.process_time`` over the loop: every thread, the next batch's making, validation and
  checkpoints included; the budget a shared machine cannot shrink, since other jobs slow the
  wall clock, not the work a run gets). The learning rate decays as
  ``lr * lr_final_ratio ** fraction``, ``fraction`` the largest of the three shares spent;
* resume: ``resume=True`` with a checkpoint in the folder carries on from it (a checkpoint of
  another model configuration is refused with a one-line message), so a run interrupted at any
  point loses at most ``ckpt_every`` steps;
* the loop: the next batch is made on a thread while the current step trains (a batch is a
  pure function of seed, rank and step, so a resumed run draws what an uninterrupted one
  would); under ``torchrun`` each rank draws its own batches, gradients are averaged, the time
  budget is rank 0's, and rank 0 writes.

A subclass sets :attr:`RunTrainer.label` and :attr:`RunTrainer.log_fields` and implements
:meth:`~RunTrainer.open_data`, :meth:`~RunTrainer.build_model`, :meth:`~RunTrainer.batch_for`
and :meth:`~RunTrainer.accumulate_gradients`; :meth:`~RunTrainer.start`,
:meth:`~RunTrainer.extra_state` / :meth:`~RunTrainer.load_extra_state` and
:meth:`~RunTrainer.after_step` are optional. Its configuration is a dataclass with at least
``out``, ``seed``, ``steps``, ``lr``, ``lr_final_ratio``, ``log_every``, ``ckpt_every``,
``device``, ``minutes``, ``cpu_minutes`` and ``to_json(path)`` (:class:`RunConfig`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from neuralbody.io.csv_log import append_csv_row
from neuralbody.io.errors import InputError
from neuralbody.io.progress import progress_bar
from neuralbody.training.checkpoint import load_checkpoint, resolve_device, save_checkpoint
from neuralbody.training.distributed import (
    DistributedContext,
    average_gradients,
    barrier,
    broadcast_float,
    broadcast_state,
    rank_device,
)

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_KEYS = ("model_config", "model", "optimizer", "step", "elapsed_s")


class RunConfig(Protocol):
    """What :class:`RunTrainer` reads of a run's configuration."""

    out: str
    seed: int
    steps: int
    lr: float
    lr_final_ratio: float
    log_every: int
    ckpt_every: int
    device: str
    minutes: float | None
    cpu_minutes: float | None

    def to_json(self, path: Path) -> None: ...


def check_budget(minutes: float | None, cpu_minutes: float | None) -> None:
    """Raise ValueError unless the optional time budgets are positive."""
    for name, value in (("minutes", minutes), ("cpu-minutes", cpu_minutes)):
        if value is not None and not value > 0:
            raise ValueError(f"--{name} must be > 0, got {value}")


def budget_fraction(step: int, steps: int, elapsed_s: float, minutes: float | None, cpu_s: float,
                    cpu_minutes: float | None) -> float:  # fmt: skip
    """How much of a run's budget is spent: the largest of ``step / steps``, ``elapsed_s / (60 minutes)``
    and ``cpu_s / (60 cpu_minutes)`` (the time terms only where their budget is set); >= 1: done."""
    fraction = step / steps
    if minutes is not None:
        fraction = max(fraction, elapsed_s / (60.0 * minutes))
    if cpu_minutes is not None:
        fraction = max(fraction, cpu_s / (60.0 * cpu_minutes))
    return fraction


class RunTrainer:
    """Owns the model, optimiser and run folder of one run (module docstring).

    Args:
        config: the run's configuration (:class:`RunConfig`).
        resume: carry on from the run folder's checkpoint when there is one.
        progress: show a progress bar (rank 0 only).
        distributed: the torchrun process group (default: one process).
    """

    label: ClassVar[str] = "train"
    log_fields: ClassVar[tuple[str, ...]] = ("step", "elapsed_s", "lr", "loss")

    def __init__(self, config: RunConfig, *, resume: bool = False, progress: bool = True,
                 distributed: DistributedContext | None = None) -> None:  # fmt: skip
        self.config = config
        self.context = distributed or DistributedContext()
        self.device = rank_device(resolve_device(config.device), self.context)
        self.progress = progress and self.context.is_main
        self.run_dir = Path(config.out)
        self.open_data()
        torch.manual_seed(config.seed)
        self.model = self.build_model().to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step, self.elapsed_s, self.cpu_s = 0, 0.0, 0.0
        if resume and (self.run_dir / CHECKPOINT_NAME).is_file():
            self._load()
        else:
            self.start()
            if self.context.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                config.to_json(self.run_dir / CONFIG_NAME)
        broadcast_state(self.model, self.context)

    # -- what a subclass says ------------------------------------------------------------------
    def open_data(self) -> None:
        """Read the training data (called first, before the model is built)."""
        raise NotImplementedError

    def build_model(self) -> torch.nn.Module:
        """The freshly seeded model; it has ``config.to_dict()`` (saved and checked on resume)."""
        raise NotImplementedError

    def start(self) -> None:
        """A new run's starting state beyond the seeded model (nothing by default)."""

    def extra_state(self) -> dict[str, Any]:
        """Plain values saved in the checkpoint beside the model and optimiser (none by default)."""
        return {}

    def load_extra_state(self, payload: dict[str, Any]) -> None:
        """Take back what :meth:`extra_state` saved, from the checkpoint's ``payload``."""

    def batch_for(self, step: int) -> Any:
        """The training batch of ``step`` on this rank: a pure function of seed, rank and step."""
        raise NotImplementedError

    def accumulate_gradients(self, batch: Any) -> dict[str, float]:
        """Forward and ``backward()`` of one batch (gradients zeroed before, applied after);
        returns the step's figures for ``log.csv`` and the progress bar (first one: the loss)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called on every rank after each step (e.g. a periodic validation; nothing by default)."""

    # -- the shared machinery ------------------------------------------------------------------
    def fraction(self) -> float:
        """How far the run is, 0 .. 1 (>= 1: done): :func:`budget_fraction` of this run."""
        config = self.config
        return budget_fraction(self.step, config.steps, self.elapsed_s, config.minutes, self.cpu_s, config.cpu_minutes)

    def finished(self) -> bool:
        """The budget is spent (ranks agree: the time terms are rank 0's)."""
        config = self.config
        elapsed, cpu = self.elapsed_s, self.cpu_s
        if config.minutes is not None or config.cpu_minutes is not None:
            elapsed = broadcast_float(elapsed, self.context, device=self.device)
            cpu = broadcast_float(cpu, self.context, device=self.device)
        return budget_fraction(self.step, config.steps, elapsed, config.minutes, cpu, config.cpu_minutes) >= 1.0

    def progress_total(self) -> int | None:
        """The progress bar's total in steps (None, a counter, when a time budget may end the run first)."""
        config = self.config
        return None if config.minutes is not None or config.cpu_minutes is not None else config.steps

    def train_step(self, batch: Any) -> dict[str, float]:
        """One optimisation step: learning rate, gradients (averaged over ranks, norm clipped at 1), update."""
        config = self.config
        lr = config.lr * config.lr_final_ratio ** min(1.0, self.fraction())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        figures = self.accumulate_gradients(batch)
        average_gradients(self.model.parameters(), self.context)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return figures

    def save(self) -> None:
        """Write checkpoint.pt atomically (rank 0)."""
        if self.context.is_main:
            save_checkpoint(self.run_dir / CHECKPOINT_NAME, {
                "model_config": self.model.config.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step, "elapsed_s": self.elapsed_s,
                "cpu_s": self.cpu_s, **self.extra_state(),
            })  # fmt: skip

    def _load(self) -> None:
        path = self.run_dir / CHECKPOINT_NAME
        payload = load_checkpoint(path, device=self.device, required=CHECKPOINT_KEYS)
        if payload["model_config"] != self.model.config.to_dict():
            raise InputError(path, "the checkpoint's model differs from config.json's",
                             "resume with the run's own config.json, or start a new --out")  # fmt: skip
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.load_extra_state(payload)
        self.step, self.elapsed_s = int(payload["step"]), float(payload["elapsed_s"])
        self.cpu_s = float(payload.get("cpu_s", 0.0))  # runs saved before the CPU budget: counted from here
        log.info("resumed %s at step %d (%.1f min)", self.run_dir, self.step, self.elapsed_s / 60)

    def _record(self, figures: dict[str, float]) -> None:
        if self.context.is_main and self.step % self.config.log_every == 0:
            row = {"step": self.step, "elapsed_s": round(self.elapsed_s, 2), "cpu_s": round(self.cpu_s, 2),
                   "lr": f"{self.optimizer.param_groups[0]['lr']:.3g}",
                   **{name: f"{value:.6g}" if isinstance(value, float) else value for name, value in figures.items()}}
            append_csv_row(self.run_dir / "log.csv", self.log_fields,
                           {name: value for name, value in row.items() if name in self.log_fields})
        self.after_step()
        if self.step % self.config.ckpt_every == 0:
            self.save()

    def run(self) -> int:
        """Train until the budget is spent, checkpointing; save; return the final step."""
        bar = progress_bar(total=self.progress_total(), initial=self.step, enabled=self.progress, desc=self.label,
                           unit="step")  # fmt: skip
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as loader:
            upcoming = loader.submit(self.batch_for, self.step)
            cpu_mark = time.process_time()
            while not self.finished():
                started = time.perf_counter()
                batch = upcoming.result()
                upcoming = loader.submit(self.batch_for, self.step + 1)  # made while this step trains
                figures = self.train_step(batch)
                self.step += 1
                self.elapsed_s += time.perf_counter() - started
                # CPU time: this step, the loader's work meanwhile and the last record (validation, checkpoint)
                self.cpu_s, cpu_mark = self.cpu_s + time.process_time() - cpu_mark, time.process_time()
                self._record(figures)
                bar.update(1)
                bar.set_postfix({name: f"{value:.4g}" for name, value in list(figures.items())[:2]})
            upcoming.cancel()
        bar.close()
        self.save()
        barrier(self.context)
        return self.step
