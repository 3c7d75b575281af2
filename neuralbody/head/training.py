"""Training a head avatar from the monocular video (the ``train`` split seen by the moving camera).

Each step takes one random training frame and ``rays`` of its pixels inside the frame's posed
box (half drawn from the head's mask, half from the whole box, so empty space is seen too),
renders them (:func:`neuralbody.head.raymarch.render_rays`, jittered samples) and minimises

    L = |rgb - rgb_gt|^2 + mask_weight |opacity - mask|^2 + tv_weight TV(avatar.smoothed_grid()) + the avatar's regularisation

with Adam (``lr`` for the grids, ``deform_lr`` for IMAvatar's deformation grid, ``mlp_lr`` for
the baseline's MLP). The opacity term is the mask loss that keeps the density from collapsing
(REFERENCE.md's feasibility notes). Before the first step IMAvatar starts from the face model
(:func:`start_from_face_model`: density from the rest mesh, deformation grid from its closest
points; :mod:`neuralbody.head.canonical_init`), then fits its deformation grid to the face-model
prior alone (``prior_warmup`` steps).

A run folder holds ``config.json`` (model, data, settings), ``rig.npz`` (the face model, so a
run animates without its capture), ``checkpoint.pt`` (weights, optimiser, step; written
atomically every ``checkpoint_every`` steps and at the end) and ``log.json`` (loss per step).
``--resume`` continues from the checkpoint to the total step count asked for; the log's
``seconds`` (time in the training loop, the prior warm-up excluded) count on across resumes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import torch

from neuralbody.data.cameras import pixel_rays, ray_box_intersection
from neuralbody.head.avatar import MODELS, AvatarSettings, make_avatar
from neuralbody.head.canonical_init import mesh_density_raw, surface_deformation_grid
from neuralbody.head.capture import HeadCapture, read_rig_npz, rig_arrays, write_npz
from neuralbody.head.frame import HeadFrame, head_frame
from neuralbody.head.raymarch import render_rays
from neuralbody.head.rig import HeadRig
from neuralbody.io.atomic import atomic_path, atomic_write_text
from neuralbody.io.errors import InputError
from neuralbody.io.progress import progress_bar
from neuralbody.io.safe_load import load_torch
from neuralbody.metrics import psnr_from_mse

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Settings of a training run (saved in config.json).

    Attributes:
        model: one of :data:`neuralbody.head.avatar.MODELS`.
        steps: total optimisation steps.
        rays: rays per step.
        samples: samples per ray.
        lr, deform_lr, mlp_lr: Adam learning rates of the density/colour (feature) grids, of
            IMAvatar's deformation grid and of the baseline's MLP.
        mask_weight, tv_weight: loss weights.
        checkpoint_every: steps between checkpoints.
        seed: seeds ray sampling.
        prior_warmup: IMAvatar only: steps fitting the deformation fields to the face-model
            prior alone before the first image step (no rendering; cheap).
        mesh_density: IMAvatar only: the canonical density starts at this many 1/metres inside
            the face model's rest mesh (:mod:`neuralbody.head.canonical_init`); 0: uniform at the
            avatar's ``initial_raw``.
        mesh_outside_raw: IMAvatar only, with ``mesh_density``: the raw density outside the rest mesh
            at the start (-6: sigma 0.25/m).
        surface_prior: IMAvatar only: the deformation grid starts at the face model's fields
            of each node's closest rest-mesh point (before the warm-up).
    """

    model: str = "imavatar"
    steps: int = 500
    rays: int = 512
    samples: int = 32
    lr: float = 0.05
    deform_lr: float = 0.0001
    mlp_lr: float = 0.002
    mask_weight: float = 0.1
    tv_weight: float = 1e-4
    checkpoint_every: int = 50
    seed: int = 0
    prior_warmup: int = 300
    mesh_density: float = 300.0
    mesh_outside_raw: float = -6.0
    surface_prior: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"TrainSettings: model must be one of {MODELS}, got {self.model!r}")
        if self.mesh_density < 0:
            raise ValueError(f"TrainSettings: mesh_density must be >= 0, got {self.mesh_density}")
        if min(self.steps, self.rays, self.checkpoint_every) < 1 or self.samples < 2:
            raise ValueError(f"TrainSettings: steps, rays, checkpoint_every >= 1 and samples >= 2 needed, got {self}")


@dataclasses.dataclass
class TrainingFrame:
    """One training frame's rays inside its box.

    Attributes:
        frame: the avatar's inputs.
        rays_o, rays_d: (R, 3) rays, world metres.
        rgb: (R, 3) pixel colours; mask: (R,) float 0/1.
        forward: (3,) camera z axis.
    """

    frame: HeadFrame
    rays_o: torch.Tensor
    rays_d: torch.Tensor
    rgb: torch.Tensor
    mask: torch.Tensor
    forward: torch.Tensor


def load_training_frames(capture: HeadCapture) -> list[TrainingFrame]:
    """The train split's frames, seen by the training camera, as rays inside each frame's box."""
    name = capture.meta["train_camera"]
    frames = []
    for index in capture.split("train"):
        camera = capture.camera(index, name)
        frame = head_frame(capture.rig, capture.params(index))
        o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
        _, _, hit = ray_box_intersection(o, d, frame.box_min, frame.box_max)
        rgb = torch.tensor(capture.image(index, name).reshape(-1, 3), dtype=torch.float32)
        mask = torch.tensor(capture.mask(index, name).reshape(-1), dtype=torch.float32)
        frames.append(TrainingFrame(frame, o[hit], d[hit], rgb[hit], mask[hit],
                                    torch.tensor(camera.R[2], dtype=torch.float32)))
    return frames


def total_variation(grid: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring nodes of a grid (X, Y, Z, C) along each axis."""
    return sum((grid.diff(dim=axis) ** 2).mean() for axis in range(3))


def _pick_rays(frame: TrainingFrame, count: int, generator: torch.Generator) -> torch.Tensor:
    inside = torch.nonzero(frame.mask > 0.5).squeeze(1)
    half = count // 2 if inside.numel() else 0
    some = inside[torch.randint(0, max(1, inside.numel()), (half,), generator=generator)] if half else inside[:0]
    anywhere = torch.randint(0, frame.rgb.shape[0], (count - half,), generator=generator)
    return torch.cat([some, anywhere])


def training_step(avatar, optimiser, frame: TrainingFrame, settings: TrainSettings,
                  generator: torch.Generator) -> float:
    """One step on one frame (module docstring); returns the colour MSE."""
    rows = _pick_rays(frame, settings.rays, generator)
    out = render_rays(avatar, frame.frame, frame.rays_o[rows], frame.rays_d[rows], frame.forward,
                      samples=settings.samples, perturb=True)
    colour = (out.rgb - frame.rgb[rows]).square().mean()
    loss = (colour + settings.mask_weight * (out.opacity - frame.mask[rows]).square().mean()
            + settings.tv_weight * total_variation(avatar.smoothed_grid()) + avatar.regularisation(frame.frame))
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(colour.detach())


def warm_up_prior(avatar, steps: int, lr: float) -> float:
    """Fit IMAvatar's deformation grid to the face-model prior alone for ``steps``; returns the last loss."""
    optimiser = torch.optim.Adam([avatar.deformation], lr=lr)
    loss = torch.zeros(())
    for _ in range(steps):
        loss = avatar.regularisation(None)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return float(loss.detach())


def start_from_face_model(avatar, rig: HeadRig, settings: TrainSettings) -> None:
    """IMAvatar's fields started from the face model as the settings ask (``mesh_density``, ``surface_prior``)."""
    with torch.no_grad():
        if settings.mesh_density > 0:
            avatar.canonical[..., 0] = mesh_density_raw(
                rig, avatar.box, inside_density=settings.mesh_density, outside_raw=settings.mesh_outside_raw,
                scale=avatar.settings.density_scale, width=avatar.settings.voxel)
        if settings.surface_prior:
            avatar.deformation.copy_(surface_deformation_grid(rig, avatar.deform_box))


def make_optimiser(avatar, settings: TrainSettings) -> torch.optim.Optimizer:
    """Adam over the avatar's parameters, one group per kind (the settings' learning rates)."""
    rates = {"mlp": settings.mlp_lr, "deformation": settings.deform_lr}
    groups: dict[float, list] = {}
    for name, parameter in avatar.named_parameters():
        groups.setdefault(rates.get(name.split(".")[0], settings.lr), []).append(parameter)
    return torch.optim.Adam([{"params": params, "lr": lr} for lr, params in groups.items()])


def save_checkpoint(run: Path, avatar, optimiser, step: int) -> None:
    with atomic_path(run / CHECKPOINT) as tmp:
        torch.save({"model": avatar.state_dict(), "optimiser": optimiser.state_dict(), "step": step}, tmp)


def load_run(run: str | Path) -> tuple[torch.nn.Module, HeadRig, TrainSettings, dict]:
    """A trained avatar (eval mode), its face model, settings and checkpoint from a run folder."""
    run = Path(run)
    fix = "give a folder written by `neuralbody train-head`"
    if not (run / "config.json").is_file():
        raise InputError(run, "has no config.json: not a train-head run", fix)
    try:
        config = json.loads((run / "config.json").read_text())
        settings = TrainSettings(**config["settings"])
        avatar_settings = AvatarSettings(**config["avatar"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InputError(run / "config.json", f"is not a train-head config ({error})", fix) from None
    rig = read_rig_npz(run / "rig.npz", config["action_labels"])
    avatar = make_avatar(settings.model, rig, avatar_settings)
    checkpoint = load_torch(run / CHECKPOINT, fix=fix) if (run / CHECKPOINT).is_file() else None
    if checkpoint is not None:
        avatar.load_state_dict(checkpoint["model"])
    return avatar.eval(), rig, settings, checkpoint or {}


def train_head(capture: HeadCapture, run: str | Path, settings: TrainSettings, *,
               avatar_settings: AvatarSettings = AvatarSettings(), resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) an avatar into the run folder; returns the folder."""
    run = Path(run)
    if resume:
        avatar, _, saved, checkpoint = load_run(run)
        settings = dataclasses.replace(saved, steps=settings.steps)
        step = int(checkpoint.get("step", 0))
    else:
        run.mkdir(parents=True, exist_ok=True)
        write_npz(run / "rig.npz", **rig_arrays(capture.rig))
        config = {"data": str(capture.root), "settings": dataclasses.asdict(settings),
                  "avatar": dataclasses.asdict(avatar_settings), "action_labels": capture.rig.action_labels}
        atomic_write_text(run / "config.json", json.dumps(config, indent=1))
        avatar, checkpoint, step = make_avatar(settings.model, capture.rig, avatar_settings), {}, 0
    avatar.train()
    if step == 0 and settings.model == "imavatar":
        start_from_face_model(avatar, capture.rig, settings)
        if settings.prior_warmup > 0:
            log.info("face-model prior warm-up: %d steps, loss %.4g", settings.prior_warmup,
                     warm_up_prior(avatar, settings.prior_warmup, 0.01))
    optimiser = make_optimiser(avatar, settings)
    if checkpoint.get("optimiser"):
        optimiser.load_state_dict(checkpoint["optimiser"])
    frames = load_training_frames(capture)
    generator = torch.Generator().manual_seed(settings.seed * 100003 + step)
    log_path = run / "log.json"
    history = json.loads(log_path.read_text()) if resume and log_path.is_file() else []
    bar = progress_bar(total=settings.steps, initial=step, desc=f"train-head {settings.model}", unit="step",
                       enabled=progress)
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)  # seconds count across resumes
    while step < settings.steps:
        frame = frames[int(torch.randint(0, len(frames), (1,), generator=generator))]
        mse = training_step(avatar, optimiser, frame, settings, generator)
        step += 1
        history.append({"step": step, "mse": mse, "seconds": time.perf_counter() - start})
        bar.set_postfix(psnr=f"{psnr_from_mse(mse):.1f}")
        bar.update(1)
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            save_checkpoint(run, avatar, optimiser, step)
            atomic_write_text(log_path, json.dumps(history))
    bar.close()
    log.info("trained %s for %d steps in %.0f s: %s", settings.model, step, time.perf_counter() - start, run)
    return run
