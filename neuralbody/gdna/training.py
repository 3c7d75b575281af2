"""Training the generative model: the coarse stage, then the detail stage, by auto-decoding.

Each step draws ``scans_per_step`` training scans and, for each, ``points_per_scan`` of its
prepared targets (:mod:`neuralbody.gdna.training_data`); draws are seeded by
``(seed, rank, step)``, so a resumed run draws what an uninterrupted one would.

* coarse stage (the first ``steps - detail_steps`` steps): the coarse network and the shape
  latents minimise ``L_occ + L_free + L_prior(z_shape)`` (free space: half as many points;
  :mod:`neuralbody.gdna.losses`, :mod:`neuralbody.gdna.latents`);
* with the learned skinning (a model with a skinning correction network), the coarse stage also
  trains that network through the correspondences: the drawn labelled points are searched again
  each step (warm, and cold every ``research_every`` steps: :mod:`neuralbody.gdna.learned_targets`),
  their occupancy's implicit gradients reach the weights, and SNARF's regulariser
  ``skinning_weight * L_skin`` (``skinning_points`` rest vertices a scan) keeps the weights at the
  body's surface the body model's; on cold steps the drawn scans' free space is tested again
  under the current weights;
* detail stage: the coarse network and shape latents frozen, the detail network and the
  detail latents minimise ``L_normal + L_prior(z_detail)``; with colour (a model with a colour
  network, scans with colours) the colour network and colour latents are trained in the same
  steps on the same surface points, ``+ colour_weight L_colour + L_prior(z_colour)``; with
  ``adversarial_weight > 0`` (scans prepared with views, an :class:`~neuralbody.gdna.adversarial.Adversary`)
  the detail network and latents also get ``adversarial_weight L_G`` on normal-map windows, and the
  discriminator is stepped on ``L_D`` after them (:mod:`neuralbody.gdna.adversarial`; its windows
  are drawn from a generator of their own, seeded by ``(seed, rank, step, 1)``, so the normal
  loss's draws are those of a run without it).

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

from neuralbody.gdna.adversarial import Adversary, adversarial_maps
from neuralbody.gdna.discriminator import discriminator_loss, generator_loss
from neuralbody.gdna.latents import LatentCodes, prior_loss
from neuralbody.gdna.learned_targets import (relabelled_free_space, relearn_normal_targets, search_occupancy,
                                             skinning_regulariser)
from neuralbody.gdna.losses import free_space_loss, occupancy_loss, posed_logits, surface_losses
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
        skinning_lr: learning rate of the skinning correction network (learned skinning).
        skinning_weight: weight of the skinning regulariser ``L_skin``.
        skinning_points: rest vertices a scan a step in ``L_skin``.
        research_every: a cold correspondence search every this many coarse steps (warm between).
        adversarial_weight: weight of the adversarial loss ``L_G`` in the detail stage (0: off).
        adversarial_crop: side of the normal-map windows the discriminator sees, pixels.
        adversarial_r1: weight of the discriminator's R1 penalty.
        discriminator_lr: learning rate of the discriminator.
        adversarial_sigma: the discriminator sees the normal maps less their Gaussian blur of this many pixels
            (0: the raw normals).
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
    skinning_lr: float = 1e-3
    skinning_weight: float = 1.0
    skinning_points: int = 256
    research_every: int = 10
    adversarial_weight: float = 0.0
    adversarial_crop: int = 48
    adversarial_r1: float = 0.01
    discriminator_lr: float = 1e-3
    adversarial_sigma: float = 2.0

    def __post_init__(self) -> None:
        if self.steps < 0 or not 0.0 <= self.detail_fraction <= 1.0:
            raise ValueError(f"TrainSettings: steps >= 0 and detail_fraction in [0, 1], got {self.steps}, "
                             f"{self.detail_fraction}")
        if self.scans_per_step < 1 or self.points_per_scan < 1 or not (self.lr > 0 and self.latent_lr > 0):
            raise ValueError(f"TrainSettings: scans_per_step, points_per_scan >= 1, lr, latent_lr > 0; got {self}")
        if self.prior_weight < 0 or self.colour_weight < 0 or not self.checkpoint_every_s > 0:
            raise ValueError(f"TrainSettings: prior_weight >= 0, checkpoint_every_s > 0; got {self}")
        if not self.skinning_lr > 0 or self.skinning_weight < 0 or self.skinning_points < 1 or self.research_every < 1:
            raise ValueError(f"TrainSettings: skinning_lr > 0, skinning_weight >= 0, skinning_points and "
                             f"research_every >= 1; got {self}")
        if self.adversarial_weight < 0 or self.adversarial_crop < 1 or self.adversarial_r1 < 0 or \
                not self.discriminator_lr > 0 or self.adversarial_sigma < 0:
            raise ValueError(f"TrainSettings: adversarial_weight, adversarial_r1 >= 0, adversarial_crop >= 1, "
                             f"discriminator_lr > 0, adversarial_sigma >= 0; got {self}")

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
    """Where training stands: ``step`` done, ``spent_s`` wall seconds, the last step's losses (``last_adversarial``:
    the discriminator's ``L_D``, NaN without one)."""

    step: int = 0
    spent_s: float = 0.0
    last_loss: float = float("nan")
    last_adversarial: float = float("nan")


@dataclasses.dataclass
class Optimizers:
    """One Adam a stage: ``coarse`` (coarse network, shape codes, and the skinning correction network when the
    model has one), ``detail`` (detail network, detail codes, and the colour network and colour codes when the
    model has them)."""

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
    coarse = [{"params": list(model.coarse.parameters()), "lr": settings.lr},
              {"params": [codes.shape], "lr": settings.latent_lr}]
    if model.skinning is not None:
        coarse.append({"params": list(model.skinning.parameters()), "lr": settings.skinning_lr})
    return Optimizers(torch.optim.Adam(coarse), torch.optim.Adam(detail))


def learned_coarse_loss(model: GenerativeModel, scan: PreparedScan, rows: torch.Tensor, shape_code: torch.Tensor,
                        settings: TrainSettings, cold: bool, generator: torch.Generator) -> torch.Tensor:
    """``L_occ + skinning_weight L_skin`` of one scan under the learned skinning, the labelled ``rows`` (M,) int64
    searched again (warm, or ``cold``)."""
    if scan.skinning is None or scan.transforms is None:
        raise ValueError("learned_coarse_loss: the scan has no skinning (prepare it with prepare_scans)")
    found = search_occupancy(scan.skinning, scan.transforms, scan.occupancy, rows, cold=cold)
    logits = posed_logits(model.coarse, found.points.float(), found.valid, shape_code, scan.shapes)
    occupancy = torch.nn.functional.binary_cross_entropy_with_logits(logits, scan.occupancy.inside[rows])
    return occupancy + settings.skinning_weight * skinning_regulariser(scan.skinning, settings.skinning_points, generator)


def step_loss(model: GenerativeModel, codes: LatentCodes, scans: list[PreparedScan], chosen: np.ndarray,
              rng: np.random.Generator, settings: TrainSettings, coarse: bool, *, cold: bool = False) -> torch.Tensor:
    """The loss of one step on the scans ``chosen`` (indices), points drawn from ``rng``; ``cold``: a cold
    correspondence search this step (learned skinning)."""
    losses = []
    for index in chosen:
        scan, i = scans[int(index)], int(index)
        if coarse and cold and model.skinning is not None and scan.mesh is not None:
            scan.free = relabelled_free_space(scan.skinning, scan.transforms, scan.mesh, scan.free_candidates)
        if coarse:
            rows = torch.as_tensor(rng.integers(len(scan.occupancy.inside), size=settings.points_per_scan))
            free = (torch.as_tensor(rng.integers(len(scan.free), size=settings.points_per_scan // 2)) if len(scan.free)
                    else torch.zeros(0, dtype=torch.long))
            if model.skinning is None:
                occupancy = occupancy_loss(model.coarse, scan.occupancy, rows, codes.shape[i], scan.shapes)
            else:
                generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
                occupancy = learned_coarse_loss(model, scan, rows, codes.shape[i], settings, cold, generator)
            losses.append(occupancy + free_space_loss(model.coarse, scan.free, free, codes.shape[i], scan.shapes))
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


@dataclasses.dataclass
class DStep:
    """The maps (B, 4, H, W) a discriminator step is taken on: ``real`` and ``fake`` (detached)."""

    real: torch.Tensor
    fake: torch.Tensor


def adversarial_step(model: GenerativeModel, codes: LatentCodes, scans: list[PreparedScan], chosen: np.ndarray,
                     settings: TrainSettings, adversary: Adversary, rng: np.random.Generator) -> tuple[torch.Tensor, DStep]:
    """(``adversarial_weight L_G``, the discriminator's pending step) of one detail step (module docstring)."""
    real, fake = adversarial_maps(model, codes, scans, chosen, settings.adversarial_crop, rng,
                                  settings.adversarial_sigma)
    adversary.discriminator.requires_grad_(False)
    loss = settings.adversarial_weight * generator_loss(adversary.discriminator, fake)
    adversary.discriminator.requires_grad_(True)
    return loss, DStep(real, fake.detach())


def step_discriminator(adversary: Adversary, pending: DStep, settings: TrainSettings, context: DistributedContext) -> float:
    """One Adam step of the discriminator on ``L_D``; returns ``L_D``."""
    loss = discriminator_loss(adversary.discriminator, pending.real, pending.fake, settings.adversarial_r1)
    adversary.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(list(adversary.discriminator.parameters()), context)
    adversary.optimizer.step()
    return float(loss.detach())


def train(model: GenerativeModel, codes: LatentCodes, optimizers: Optimizers, state: TrainState,
          scans: list[PreparedScan], settings: TrainSettings, save, *, context: DistributedContext = DistributedContext(),
          progress: bool = True, adversary: Adversary | None = None) -> TrainState:
    """Train until ``settings.steps``; ``save(state)`` writes a checkpoint (rank 0 only calls it); ``adversary``:
    the discriminator, required when ``settings.adversarial_weight > 0``."""
    if not scans:
        raise ValueError("train: no training scans")
    if (settings.adversarial_weight > 0) != (adversary is not None):
        raise ValueError("train: pass an adversary exactly when settings.adversarial_weight > 0")
    if adversary is not None and any(s.views is None for s in scans):
        raise ValueError("train: the adversarial loss needs scans prepared with views")
    model.train()
    if model.skinning is not None and state.step > settings.coarse_steps:  # resumed in the detail stage
        scans = relearned_surfaces(scans)
    usable = [i for i, s in enumerate(scans) if len(s.normals.normals) > 0]
    started, last_save, spent_before = time.perf_counter(), time.perf_counter(), state.spent_s
    bar = progress_bar(total=settings.steps, initial=state.step, enabled=progress and context.is_main, desc="gdna",
                       unit="step")
    with bar:
        while state.step < settings.steps:
            coarse = state.step < settings.coarse_steps
            if not coarse and model.skinning is not None and state.step == settings.coarse_steps:
                scans = relearned_surfaces(scans)
                usable = [i for i, s in enumerate(scans) if len(s.normals.normals) > 0]
            rng = np.random.default_rng([settings.seed, context.rank, state.step])
            pool = np.arange(len(scans)) if coarse else np.asarray(usable)
            chosen = rng.choice(pool, size=min(settings.scans_per_step, len(pool)), replace=False)
            model.coarse.requires_grad_(coarse)
            optimizer = optimizers.coarse if coarse else optimizers.detail
            if model.skinning is not None:
                model.skinning.requires_grad_(coarse)
            loss = step_loss(model, codes, scans, chosen, rng, settings, coarse,
                             cold=state.step % settings.research_every == 0)
            pending = None
            if adversary is not None and not coarse:
                windows = np.random.default_rng([settings.seed, context.rank, state.step, 1])
                extra, pending = adversarial_step(model, codes, scans, chosen, settings, adversary, windows)
                loss = loss + extra
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients([p for group in optimizer.param_groups for p in group["params"]], context)
            optimizer.step()
            if pending is not None:
                state.last_adversarial = step_discriminator(adversary, pending, settings, context)
            state.step += 1
            state.last_loss = float(loss.detach())
            state.spent_s = spent_before + time.perf_counter() - started
            bar.update(1)
            postfix = {} if pending is None else {"d_loss": f"{state.last_adversarial:.3f}"}
            bar.set_postfix(stage="coarse" if coarse else "detail", loss=f"{state.last_loss:.4f}", **postfix)
            if context.is_main and time.perf_counter() - last_save > settings.checkpoint_every_s:
                save(state)
                last_save = time.perf_counter()
    model.requires_grad_(True)
    log.info("gdna: %d steps, %.0f s, last loss %.4f", state.step, state.spent_s, state.last_loss)
    if context.is_main:
        save(state)
    return state


def relearned_surfaces(scans: list[PreparedScan]) -> list[PreparedScan]:
    """The scans with their surface targets moved to the learned weights (before the detail stage)."""
    out = []
    for scan in scans:
        if scan.skinning is None or scan.transforms is None:
            raise ValueError("relearned_surfaces: the scan has no skinning (prepare it with prepare_scans)")
        out.append(dataclasses.replace(scan, normals=relearn_normal_targets(scan.skinning, scan.transforms,
                                                                            scan.normals)))
    return out
