"""Training a SNARF-style occupancy model on posed meshes, within a time budget, resumable.

Each step draws one training frame at random and ``points_per_step`` labelled points around
its posed mesh (:func:`~neuralbody.snarf.samples.training_points`), and minimises SNARF's
loss, the binary cross-entropy between the predicted occupancy of the posed points and their
inside/outside labels. Adam, one learning rate for the canonical occupancy network and one
for the skinning weights (the forward model's weight grid or the backward model's weight
network).

The backward model's weight network starts at random, where the forward grid starts from
the body model; its counterpart is a warm-up: for the first ``warmup_fraction`` of the budget
its loss adds the cross-entropy between its weights and the body model's own weights at the
posed points (:func:`~neuralbody.skinning.weight_grid.surface_weights`, those of the closest
point of the posed body-model mesh). After that both models learn from the occupancy alone.

The budget is seconds of ``clock``: "wall" (elapsed time) or "cpu" (this process's CPU time,
fair between runs on a machine shared with other work), plus an optional cap on steps. The
run folder holds ``checkpoint.pt`` (:mod:`neuralbody.snarf.run_files`), written atomically every
``checkpoint_every_s`` wall seconds and at the end; a resumed run carries on with the
optimiser, step, spent budget and random state.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from neuralbody.geometry.queries import WarpMesh
from neuralbody.io.progress import progress_bar
from neuralbody.skinning.weight_grid import surface_weights
from neuralbody.snarf.backward_model import BackwardOccupancy
from neuralbody.snarf.posed_occupancy import PosedOccupancy
from neuralbody.snarf.samples import TrainingMix, training_points
from neuralbody.snarf.subject import PreparedFrame, Subject

log = logging.getLogger(__name__)

CLOCKS = ("wall", "cpu")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How a model is trained (module docstring).

    Attributes:
        budget_s: seconds of ``clock`` to train for, all sessions of a resumed run together.
        clock: "wall" or "cpu".
        max_steps: stop after this many steps in all (None: only the budget stops it).
        points_per_step: labelled points per step.
        lr: learning rate of the canonical occupancy network.
        weights_lr: learning rate of the skinning weights (grid logits or weight network).
        warmup_fraction: share of the budget the backward weights are also fitted to the body model's.
        checkpoint_every_s: wall seconds between checkpoints.
        seed: seeds the frames and points drawn.
        mix: how the training points are drawn.
    """

    budget_s: float = 300.0
    clock: str = "wall"
    max_steps: int | None = None
    points_per_step: int = 4096
    lr: float = 5e-3
    weights_lr: float = 1e-3
    warmup_fraction: float = 0.3
    checkpoint_every_s: float = 120.0
    seed: int = 0
    mix: TrainingMix = TrainingMix()

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"TrainSettings: clock must be one of {CLOCKS}, got {self.clock!r}")
        if not self.budget_s > 0 or (self.max_steps is not None and self.max_steps < 0):
            raise ValueError(f"TrainSettings: budget_s must be > 0 and max_steps >= 0, got {self.budget_s}, "
                             f"{self.max_steps}")
        if self.points_per_step < 1 or not (self.lr > 0 and self.weights_lr >= 0):
            raise ValueError(f"TrainSettings: points_per_step >= 1, lr > 0, weights_lr >= 0; got "
                             f"{self.points_per_step}, {self.lr}, {self.weights_lr}")
        if not 0 <= self.warmup_fraction <= 1 or not self.checkpoint_every_s > 0:
            raise ValueError(f"TrainSettings: warmup_fraction in [0, 1], checkpoint_every_s > 0; got "
                             f"{self.warmup_fraction}, {self.checkpoint_every_s}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        return cls(**{**values, "mix": TrainingMix(**values["mix"])})


@dataclasses.dataclass
class TrainState:
    """Where training stands: what a checkpoint saves besides the model.

    Attributes:
        step: steps done.
        spent_s: budget spent, seconds of the settings' clock.
        rng: the generator of frames and point seeds.
        last_loss: the last step's loss (nan before the first).
    """

    step: int
    spent_s: float
    rng: np.random.Generator
    last_loss: float = float("nan")


def make_optimizer(model: PosedOccupancy, settings: TrainSettings) -> torch.optim.Adam:
    """Adam with the occupancy network at ``lr`` and the skinning weights at ``weights_lr``."""
    return torch.optim.Adam([
        {"params": list(model.occupancy.parameters()), "lr": settings.lr},
        {"params": list(model.weights.parameters()), "lr": settings.weights_lr},
    ])


def clock_seconds(clock: str) -> float:
    """Seconds of ``clock`` ("wall": monotonic time, "cpu": this process's CPU time)."""
    return time.perf_counter() if clock == "wall" else time.process_time()


def step_loss(model: PosedOccupancy, frame: PreparedFrame, mesh: WarpMesh, subject: Subject, seed: int,
              settings: TrainSettings, warm_up: bool) -> torch.Tensor:
    """The loss of one step on ``frame`` (points drawn with ``seed``), see the module docstring."""
    labelled = training_points(mesh, settings.points_per_step, seed, settings.mix)
    labels = labelled.inside.float()
    if not (warm_up and isinstance(model, BackwardOccupancy)):
        return F.binary_cross_entropy_with_logits(model.logits(labelled.points, frame.pose), labels)
    logits, weight_logits = model.logits_and_weight_logits(labelled.points, frame.pose)
    target = surface_weights(frame.body_vertices, subject.faces, subject.vertex_weights, labelled.points)
    weight_loss = -(target * torch.log_softmax(weight_logits, dim=1)).sum(dim=1).mean()
    return F.binary_cross_entropy_with_logits(logits, labels) + weight_loss


def train_model(model: PosedOccupancy, optimizer: torch.optim.Optimizer, state: TrainState, subject: Subject,
                frames: list[PreparedFrame], settings: TrainSettings, save, *, progress: bool = True) -> TrainState:
    """Train until the budget or ``max_steps`` is spent; ``save(state)`` writes a checkpoint.

    Args:
        model: the model (trained in place).
        optimizer: its optimiser (:func:`make_optimizer`, possibly with a resumed state).
        state: where training stands (updated in place and returned).
        subject: the person (the body model's weights, for the backward warm-up).
        frames: the training frames.
        settings: how to train.
        save: called with the state at every checkpoint and at the end.
        progress: show a progress bar over the budget.
    """
    if not frames:
        raise ValueError("train_model: no training frames")
    meshes = [WarpMesh(frame.vertices, frame.faces) for frame in frames]
    model.train()
    start, last_save = clock_seconds(settings.clock), time.perf_counter()
    spent_before, steps_at_start = state.spent_s, state.step
    bar = progress_bar(total=round(settings.budget_s), enabled=progress, desc=f"snarf {model.kind}", unit="s",
                       initial=min(round(spent_before), round(settings.budget_s)))
    with bar:
        while state.spent_s < settings.budget_s and (settings.max_steps is None or state.step < settings.max_steps):
            index = int(state.rng.integers(len(frames)))
            seed = int(state.rng.integers(2**31))
            warm_up = state.spent_s < settings.warmup_fraction * settings.budget_s
            loss = step_loss(model, frames[index], meshes[index], subject, seed, settings, warm_up)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state.step += 1
            state.last_loss = float(loss.detach())
            spent = spent_before + clock_seconds(settings.clock) - start
            bar.update(max(0, min(round(spent), round(settings.budget_s)) - bar.n))
            bar.set_postfix(loss=f"{state.last_loss:.4f}", step=state.step)
            state.spent_s = spent
            if time.perf_counter() - last_save > settings.checkpoint_every_s:
                save(state)
                last_save = time.perf_counter()
    log.info("trained %s: %d steps (%d this session), %.0f s of %s clock, last loss %.4f", model.kind, state.step,
             state.step - steps_at_start, state.spent_s, settings.clock, state.last_loss)
    save(state)
    return state


def new_state(settings: TrainSettings) -> TrainState:
    """The state of a run that has not started."""
    return TrainState(step=0, spent_s=0.0, rng=np.random.default_rng(settings.seed))
