"""Training the generative model: the coarse stage, then the detail stage, by auto-decoding.

Each step draws ``scans_per_step`` training scans and, for each, ``points_per_scan`` of its
prepared targets (:mod:`neuralbody.gdna.training_data`); draws are seeded by
``(seed, rank, step)``, so a resumed run draws what an uninterrupted one would.

* coarse stage (the first ``steps - detail_steps`` steps): the coarse network and the shape
  latents minimise ``L_occ + L_free + L_prior(z_shape)`` (free space: half as many points;
  :mod:`neuralbody.gdna.losses`, :mod:`neuralbody.gdna.latents`);
* detail stage: the coarse network and shape latents frozen, the detail network and the
  detail latents minimise ``L_normal + L_prior(z_detail)``; with colour (a model with a colour
  network, scans with colours) the colour network and colour latents are trained in the same
  steps on the same surface points, ``+ colour_weight L_colour + L_prior(z_colour)``.

Adam, one optimiser a stage, latents at their own learning rate. Under torchrun every rank
draws its own scans (its rank in the seed) and gradients are averaged across ranks
(:func:`neuralbody.training.distributed.average_gradients`) before each step, so every rank
holds the same networks and codes; rank 0 alone writes checkpoints. ``save(state)`` is called
every ``checkpoint_every_s`` wall seconds and at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from neuralbody.gdna.latents import LatentCodes, prior_loss
from neuralbody.gdna.losses import free_space_loss, occupancy_loss, surface_losses
from neuralbody.gdna.model import GenerativeModel
from neuralbody.gdna.training_data import PreparedScan
from neuralbody.io.progress import progress_bar
from neuralbody.training.distributed import DistributedContext, average_gradients

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How the model is trained (module docstring).

    Attributes:
        steps: steps in all, both stages.
        detail_fraction: share of the steps in the detail stage.
        scans_per_step: scans a step.
        points_per_scan: labelled (coarse) or surface (detail) points a scan a step.
        lr: learning rate of the networks.
        latent_lr: learning rate of the latent codes.
        prior_weight: ``lambda`` of the latent prior.
        colour_weight: weight of ``L_colour`` in the detail stage.
        checkpoint_every_s: wall seconds between checkpoints.
        seed: seeds the latents, the targets and the draws.
    """

    steps: int = 3000
    detail_fraction: float = 0.3
    scans_per_step: int = 4
    points_per_scan: int = 512
    lr: float = 2e-3
    latent_lr: float = 1e-2
    prior_weight: float = 1e-3
    colour_weight: float = 1.0
    checkpoint_every_s: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or not 0.0 <= self.detail_fraction <= 1.0:
            raise ValueError(f"TrainSettings: steps >= 0 and detail_fraction in [0, 1], got {self.steps}, "
                             f"{self.detail_fraction}")
        if self.scans_per_step < 1 or self.points_per_scan < 1 or not (self.lr > 0 and self.latent_lr > 0):
            raise ValueError(f"TrainSettings: scans_per_step, points_per_scan >= 1, lr, latent_lr > 0; got {self}")
        if self.prior_weight < 0 or self.colour_weight < 0 or not self.checkpoint_every_s > 0:
            raise ValueError(f"TrainSettings: prior_weight >= 0, checkpoint_every_s > 0; got {self}")

    @property
    def detail_steps(self) -> int:
        return int(round(self.detail_fraction * self.steps))

    @property
    def coarse_steps(self) -> int:
        return self.steps - self.detail_steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainState:
    """Where training stands: ``step`` done, ``spent_s`` wall seconds, the last step's losses."""

    step: int = 0
    spent_s: float = 0.0
    last_loss: float = float("nan")


@dataclasses.dataclass
class Optimizers:
    """One Adam a stage: ``coarse`` (coarse network, shape codes), ``detail`` (detail network, detail codes,
    and the colour network and colour codes when the model has them)."""

    coarse: torch.optim.Adam
    detail: torch.optim.Adam


def make_optimizers(model: GenerativeModel, codes: LatentCodes, settings: TrainSettings) -> Optimizers:
    """The two stages' optimisers (module docstring)."""
    if (model.colour is None) != (codes.colour is None):
        raise ValueError("make_optimizers: the model and the codes must both have colour or both not")
    detail = [{"params": list(model.detail.parameters()), "lr": settings.lr},
              {"params": [codes.detail], "lr": settings.latent_lr}]
    if model.colour is not None:
        detail += [{"params": list(model.colour.parameters()), "lr": settings.lr},
                   {"params": [codes.colour], "lr": settings.latent_lr}]
    return Optimizers(
        torch.optim.Adam([{"params": list(model.coarse.parameters()), "lr": settings.lr},
                          {"params": [codes.shape], "lr": settings.latent_lr}]),
        torch.optim.Adam(detail))


def step_loss(model: GenerativeModel, codes: LatentCodes, scans: list[PreparedScan], chosen: np.ndarray,
              rng: np.random.Generator, settings: TrainSettings, coarse: bool) -> torch.Tensor:
    """The loss of one step on the scans ``chosen`` (indices), points drawn from ``rng``."""
    losses = []
    for index in chosen:
        scan, i = scans[int(index)], int(index)
        if coarse:
            rows = torch.as_tensor(rng.integers(len(scan.occupancy.inside), size=settings.points_per_scan))
            free = (torch.as_tensor(rng.integers(len(scan.free), size=settings.points_per_scan // 2)) if len(scan.free)
                    else torch.zeros(0, dtype=torch.long))
            losses.append(occupancy_loss(model.coarse, scan.occupancy, rows, codes.shape[i], scan.shapes)
                          + free_space_loss(model.coarse, scan.free, free, codes.shape[i], scan.shapes))
        else:
            rows = torch.as_tensor(rng.integers(len(scan.normals.normals), size=settings.points_per_scan))
            colour_code = None if codes.colour is None else codes.colour[i]
            normal, colour = surface_losses(model, scan.normals, rows, codes.shape[i].detach(), codes.detail[i],
                                            colour_code, scan.shapes)
            losses.append(normal if colour is None else normal + settings.colour_weight * colour)
    used = torch.as_tensor(np.asarray(chosen, dtype=np.int64))
    prior = prior_loss((codes.shape if coarse else codes.detail)[used], settings.prior_weight)
    if not coarse and codes.colour is not None:
        prior = prior + prior_loss(codes.colour[used], settings.prior_weight)
    return torch.stack(losses).mean() + prior


def train(model: GenerativeModel, codes: LatentCodes, optimizers: Optimizers, state: TrainState,
          scans: list[PreparedScan], settings: TrainSettings, save, *, context: DistributedContext = DistributedContext(),
          progress: bool = True) -> TrainState:
    """Train until ``settings.steps``; ``save(state)`` writes a checkpoint (rank 0 only calls it)."""
    if not scans:
        raise ValueError("train: no training scans")
    usable = [i for i, s in enumerate(scans) if len(s.normals.normals) > 0]
    model.train()
    started, last_save, spent_before = time.perf_counter(), time.perf_counter(), state.spent_s
    bar = progress_bar(total=settings.steps, initial=state.step, enabled=progress and context.is_main, desc="gdna",
                       unit="step")
    with bar:
        while state.step < settings.steps:
            coarse = state.step < settings.coarse_steps
            rng = np.random.default_rng([settings.seed, context.rank, state.step])
            pool = np.arange(len(scans)) if coarse else np.asarray(usable)
            chosen = rng.choice(pool, size=min(settings.scans_per_step, len(pool)), replace=False)
            model.coarse.requires_grad_(coarse)
            optimizer = optimizers.coarse if coarse else optimizers.detail
            loss = step_loss(model, codes, scans, chosen, rng, settings, coarse)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients([p for group in optimizer.param_groups for p in group["params"]], context)
            optimizer.step()
            state.step += 1
            state.last_loss = float(loss.detach())
            state.spent_s = spent_before + time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(stage="coarse" if coarse else "detail", loss=f"{state.last_loss:.4f}")
            if context.is_main and time.perf_counter() - last_save > settings.checkpoint_every_s:
                save(state)
                last_save = time.perf_counter()
    model.coarse.requires_grad_(True)
    log.info("gdna: %d steps, %.0f s, last loss %.4f", state.step, state.spent_s, state.last_loss)
    if context.is_main:
        save(state)
    return state
