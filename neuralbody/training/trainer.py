"""The training loop of ``neuralbody train``.

Each step: pick a training frame, ``prepare_frame`` (Neural Body: pose + code diffusion; the
frame's differentiable field), draw
rays from all training views of that frame (:class:`RaySampler`), render them with stratified
jitter, and minimise::

    loss = wmean |rgb - rgb_gt|^2 + acc_loss_weight * mean (acc - mask)^2
           + distortion_loss_weight * mean distortion   (Mip-NeRF 360's, metres; off by default)

(colour alone lets the density collapse on dark backgrounds; ``wmean``: the mean over the rays
whose colour is trusted, all of them unless the masks were judged ragged from the data, see
:mod:`neuralbody.training.mask_trust`). Adam with exponential decay
``lr(p) = lr * lr_final_ratio^p`` where p in [0, 1] is the run's progress (the larger of the
step and time fractions), gradient values clipped at ``grad_clip``.

The run folder gets config.json, checkpoint.pt (atomic, every ``ckpt_every`` steps and at the
end; ``resume=True`` carries on with optimiser, step, elapsed time and random states),
log.csv (per ``log_every`` steps), val.csv and val/step_XXXXXX.png (held-out camera: ground
truth | render). Before anything is written there, the configuration, the frame and view
indices and the training frames' data (vertices, masks, cameras; see
:func:`neuralbody.data.checks.validate_frames`) are checked, so bad input fails in one line
without leaving a folder that looks like a run. Starting or resuming removes the temporaries
of killed checkpoint writes and the log rows after the checkpoint's step (a resumed run
logs those steps again).

Training images are preloaded or streamed through a bounded cache (``config.image_source``,
see :mod:`neuralbody.training.image_source`); when streaming, the next step's frame is
decoded in the background while the current step trains (the next frame is read off a copy
of the step generator, so the random stream is the same either way).

Under torchrun (a :class:`DistributedContext` with several ranks, see
:mod:`neuralbody.training.distributed`) every rank draws its own rays (seed + rank),
gradients are averaged after backward, buffers (BatchNorm running statistics) follow rank 0,
and rank 0 alone writes the run folder. ``save`` is collective (it gathers every rank's
random states).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.io.csv_log import append_csv_row
from neuralbody.data.cameras import project_box_mask
from neuralbody.data.checks import validate_frames
from neuralbody.geometry.box import body_box
from neuralbody.io.atomic import atomic_write_text, remove_stale_temporaries
from neuralbody.io.progress import progress_bar
from neuralbody.io.errors import InputError, one_line
from neuralbody.metrics import psnr, psnr_from_mse
from neuralbody.models import build_model
from neuralbody.rendering.render import RenderSettings, render_rays, render_view
from neuralbody.training.checkpoint import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    RESUME_KEYS,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
)
from neuralbody.training.config import TrainConfig
from neuralbody.training.distributed import (
    DistributedContext,
    average_gradients,
    barrier,
    broadcast_float,
    broadcast_state,
    gather_objects,
    rank_device,
)
from neuralbody.training.mask_trust import MaskQuality, estimate_mask_quality
from neuralbody.training.rays import RaySampler, default_border_px

log = logging.getLogger(__name__)

ZJU_TRAIN_CAMERAS = (0, 6, 12, 18)
LOG_FIELDS = ("step", "elapsed_s", "lr", "loss", "color_mse", "psnr", "acc_mse", "rays_per_s")
VAL_FIELDS = ("step", "elapsed_s", "frame", "view", "psnr_box", "psnr_full")


@dataclasses.dataclass
class TrainResult:
    """Summary of a finished (or budget-stopped) run.

    ``new_steps``: steps trained by this call (0 when a resumed run had already spent its
    budget; then the losses are NaN and the checkpoint was left as it was).
    """

    run_dir: Path
    step: int
    elapsed_s: float
    last_loss: float
    last_psnr: float
    val_psnr: float | None
    new_steps: int = 0


def default_split(capture, *, num_default_frames: int = 300) -> tuple[list[int], list[int], int | None]:
    """Training frames, training views and a held-out validation view, ZJU-MoCap style.

    From ``capture.meta`` (``frames.train`` = [start, end), ``train_cameras``,
    ``test_cameras``) when present; else cameras 0, 6, 12, 18 (those that exist) and the
    first ``num_default_frames`` frames.
    """
    meta = capture.meta or {}
    frames_meta = meta.get("frames", {}) if isinstance(meta.get("frames"), dict) else {}
    if "train" in frames_meta:
        start, end = frames_meta["train"]
        frames = list(range(int(start), min(int(end), capture.num_frames)))
    else:
        frames = list(range(min(num_default_frames, capture.num_frames)))
    views = [int(v) for v in meta.get("train_cameras", [])] or [
        v for v in ZJU_TRAIN_CAMERAS if v < capture.num_views
    ] or [0]
    tests = [int(v) for v in meta.get("test_cameras", [])] or [v for v in range(capture.num_views) if v not in views]
    return frames, views, (tests[0] if tests else None)


def truncate_log(path: Path, fields: tuple[str, ...], step: int) -> int:
    """Drop the rows of a log CSV after ``step`` (and torn ones); returns how many were dropped.

    A run killed after its last checkpoint logged steps that a resumed run does again.
    """
    if not path.is_file():
        return 0
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))

    def kept(row: dict) -> bool:
        value = row.get("step")
        return value is not None and value.isdigit() and int(value) <= step and None not in row.values()

    keep = [row for row in rows if kept(row)]
    if len(keep) == len(rows):
        return 0
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(keep)
    atomic_write_text(path, buffer.getvalue())
    return len(rows) - len(keep)


def _save_side_by_side(path: Path, target: np.ndarray, rendered: np.ndarray) -> None:
    from PIL import Image

    both = np.concatenate([target, rendered], axis=1)
    Image.fromarray(np.clip(np.round(both * 255), 0, 255).astype(np.uint8)).save(path)


class Trainer:
    """Owns the model, optimiser, sampler and run folder of one training run."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        progress: bool = True,
        capture=None,
        distributed: DistributedContext | None = None,
    ) -> None:
        from neuralbody.data.capture import read_capture

        self.config = config.validate()
        self.dist = distributed if distributed is not None else DistributedContext()
        self.progress = progress and self.dist.is_main
        self.run_dir = Path(config.out)
        checkpoint_path = self.run_dir / CHECKPOINT_NAME
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise InputError(f"--out {self.run_dir}", "is an existing file, not a folder", "choose a folder path")
        if self.dist.is_main and (checkpoint_path.exists() or (self.run_dir / CONFIG_NAME).exists()):
            remove_stale_temporaries(self.run_dir)  # of killed atomic writes (checkpoint, config, logs)
        if checkpoint_path.exists() and not resume:
            raise ValueError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --out")
        self.device = rank_device(resolve_device(config.device), self.dist)
        self.step, self.elapsed, payload = 0, 0.0, None
        if resume and checkpoint_path.exists():  # read first: a damaged checkpoint fails before images are decoded
            payload = load_checkpoint(checkpoint_path, device=self.device, required=RESUME_KEYS)
            self.step, self.elapsed = int(payload["step"]), float(payload["elapsed_s"])
        self.capture = capture if capture is not None else read_capture(config.data, scale=config.scale)
        self._choose_split()
        background = (self.capture.meta or {}).get("background")
        if background is not None:
            config.background = [float(x) for x in background]
        self.background = torch.tensor(config.background, dtype=torch.float32, device=self.device)
        checked_views = list(dict.fromkeys([*config.train_views, *([] if config.val_view is None else [config.val_view])]))
        validate_frames(self.capture, config.train_frames, checked_views)  # before anything is decoded or written
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.rng = np.random.default_rng(config.seed + self.dist.rank)
        if config.border_px is None and (self.capture.meta or {}).get("exact_masks"):
            config.border_px = 0  # exact masks (synthetic captures): the silhouette is supervised to the pixel
        self.sampler = RaySampler(
            self.capture, frames=config.train_frames, views=config.train_views,
            border_px=config.border_px, trust=self._mask_trust(), progress=self.progress, image_source=config.image_source,
            preload_budget_bytes=int(config.preload_budget_gb * 1e9), cache_bytes=int(config.cache_gb * 1e9),
        )
        num_vertices = int(self.sampler.bodies[config.train_frames[0]].vertices.shape[0])
        self.num_frames = max(config.train_frames) + 1
        self.model = build_model(
            config.model_kind, num_vertices=num_vertices, num_frames=self.num_frames,
            options=config.full_model_options(),
        ).to(self.device)
        self.model.set_reference(self.sampler.bodies[config.train_frames[0]])  # the first training frame's pose
        broadcast_state(self.model, self.dist)
        if self.dist.rank > 0:  # own stratified jitter per rank; rank 0 keeps the single-process stream
            torch.manual_seed(config.seed + self.dist.rank)
        self.optimizer = torch.optim.Adam(self._param_groups(), lr=config.lr)
        if payload is not None:
            self._restore(payload)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "val").mkdir(exist_ok=True)
            for name, fields in (("log.csv", LOG_FIELDS), ("val.csv", VAL_FIELDS)):
                if truncate_log(self.run_dir / name, fields, self.step):
                    log.info("%s: dropped the rows after step %d (the checkpoint's)", self.run_dir / name, self.step)
            config.to_json(self.run_dir / CONFIG_NAME)
        barrier(self.dist)

    def _choose_split(self) -> None:
        """Training frames and views (the config's, else the capture's split) and the validation view, checked."""
        config, capture = self.config, self.capture
        frames, views, val_view = default_split(capture)
        config.train_frames = list(config.train_frames) or frames
        config.train_views = list(config.train_views) or views
        if config.val_view is None:
            held_out = [v for v in range(capture.num_views) if v not in config.train_views]
            fallback = held_out[0] if held_out else None
            config.val_view = val_view if val_view not in (None, *config.train_views) else fallback
        val_views = [] if config.val_view is None else [config.val_view]
        for name, values, limit in (("frames", config.train_frames, capture.num_frames),
                                    ("views", config.train_views, capture.num_views),
                                    ("val-view", val_views, capture.num_views)):  # fmt: skip
            bad = [v for v in values if not (isinstance(v, int) and 0 <= v < limit)]
            if bad:
                raise InputError(f"--{name}", f"{bad} not in 0..{limit - 1} of {config.data}",
                                 f"pass --{name} within 0..{limit - 1}")  # fmt: skip
        if not config.train_frames or not config.train_views:
            raise InputError(config.data, "no training frames or views", "pass --frames and --views")

    def _mask_trust(self) -> MaskQuality | None:
        """The masks judged against the bodies when the capture declares nothing and ``border_px`` is
        unset (stored in the config, so a resumed run reuses it); None otherwise."""
        config = self.config
        if config.border_px is not None:
            return None
        if config.mask_trust is None:
            limit = 2 * default_border_px(self.capture.cameras[config.train_views[0]].width)
            quality = estimate_mask_quality(self.capture, frames=config.train_frames, views=config.train_views,
                                            limit_px=float(limit))
            config.mask_trust = dataclasses.asdict(quality)
        return MaskQuality(**config.mask_trust)

    def _param_groups(self) -> list[dict]:
        """Latent codes (``codes_per_vertex``, ``appearance``, the hash-grid texture) get ``code_lr_scale`` times the rate."""
        codes, others = [], []
        for name, parameter in self.model.named_parameters():
            (codes if name.split(".")[0] in ("codes_per_vertex", "appearance", "texture_grid") else others).append(parameter)
        groups = [{"params": others, "lr_scale": 1.0}]
        if codes:
            groups.append({"params": codes, "lr_scale": self.config.code_lr_scale})
        return groups

    # ------------------------------------------------------------------------------------------
    def _random_states(self) -> dict:
        return {
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "python_rng": random.getstate(),
        }

    def _payload(self) -> dict:
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed,
            "model_kind": self.config.model_kind,
            "model_options": self.config.full_model_options(),
            "num_vertices": self.model.num_vertices,
            "num_frames": self.num_frames,
            **self._random_states(),
        }
        if self.dist.enabled:
            payload["world_size"] = self.dist.world_size
            payload["rank_random_states"] = gather_objects(self._random_states(), self.dist)
        return payload

    def _restore(self, payload: dict) -> None:
        try:
            self._restore_states(payload)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:  # the file, not our code
            raise InputError(self.run_dir / CHECKPOINT_NAME, f"does not fit this run ({type(error).__name__}: "
                             f"{one_line(error)[:300]})", "resume with the data and options the run was "
                             "trained with, or train a new run in another --out") from None  # fmt: skip
        log.info("resumed %s at step %d (%.1f min trained)", self.run_dir, self.step, self.elapsed / 60)

    def _restore_states(self, payload: dict) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.step = int(payload["step"])
        self.elapsed = float(payload["elapsed_s"])
        states = payload
        if self.dist.enabled:
            ranks = payload.get("rank_random_states") or []
            states = ranks[self.dist.rank] if len(ranks) == self.dist.world_size else None
        if states is not None:
            torch.set_rng_state(states["torch_rng"].cpu())
            self.rng.bit_generator.state = states["numpy_rng"]
            random.setstate(states["python_rng"])
        else:  # another world size saved this run: fresh, distinct streams per rank
            torch.manual_seed(self.config.seed + 7919 * self.step + self.dist.rank)
            self.rng = np.random.default_rng([self.config.seed, self.step, self.dist.rank])

    def save(self) -> None:
        """Write the checkpoint (rank 0; collective under torchrun: call on every rank)."""
        payload = self._payload()
        if self.dist.is_main:
            save_checkpoint(self.run_dir / CHECKPOINT_NAME, payload)
        barrier(self.dist)  # nobody reads the checkpoint before it is complete

    def progress_fraction(self) -> float:
        fraction = self.step / max(self.config.steps, 1)
        if self.config.minutes:
            fraction = max(fraction, self.elapsed / (60.0 * self.config.minutes))
        return min(fraction, 1.0)

    def done(self) -> bool:
        if self.step >= self.config.steps:
            return True
        return bool(self.config.minutes) and self.elapsed >= 60.0 * self.config.minutes

    # ------------------------------------------------------------------------------------------
    def train_step(self) -> dict:
        """One optimisation step; returns its losses."""
        config = self.config
        self.model.train()
        lr = config.lr * config.lr_final_ratio ** self.progress_fraction()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        frame = config.train_frames[int(self.rng.integers(len(config.train_frames)))]
        batch = self.sampler.sample(frame, config.rays_per_step, self.rng)
        if self.sampler.streaming:  # the next step draws its frame first: read it off a copy
            peek = copy.deepcopy(self.rng)
            self.sampler.prefetch(config.train_frames[int(peek.integers(len(config.train_frames)))])
        field = self.model.prepare_frame(frame, self.sampler.bodies[frame])
        settings = RenderSettings(num_samples=config.num_samples, chunk_rays=1 << 30, perturb=True,
                                  distortion=config.distortion_loss_weight > 0)
        out = render_rays(
            field, batch.rays_o.to(self.device), batch.rays_d.to(self.device),
            settings=settings, background=self.background,
        )
        squared = (out.rgb - batch.rgb.to(self.device)) ** 2
        weight = batch.colour_weight.to(self.device)  # 0 where the mask's outline makes the colour untrusted
        if bool(weight.all()):
            color_mse = torch.mean(squared)
        else:
            color_mse = torch.sum(weight[:, None] * squared) / (3 * weight.sum().clamp_min(1.0))
        acc_mse = torch.mean((out.acc - batch.mask.to(self.device)) ** 2)
        loss = color_mse + config.acc_loss_weight * acc_mse
        if out.distortion is not None:
            loss = loss + config.distortion_loss_weight * out.distortion.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.model.parameters(), self.dist)
        torch.nn.utils.clip_grad_value_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        broadcast_state(self.model, self.dist, parameters=False)
        color = color_mse.item()
        return {
            "lr": lr,
            "loss": loss.item(),
            "color_mse": color,
            "psnr": psnr_from_mse(color),
            "acc_mse": acc_mse.item(),
        }

    def validate(self) -> float | None:
        """Render the held-out camera at a middle training frame; save PNG; return box PSNR (dB)."""
        config = self.config
        if config.val_view is None:
            return None
        frame = config.train_frames[len(config.train_frames) // 2]
        camera = self.capture.cameras[config.val_view]
        body = self.capture.load_body(frame)
        self.model.eval()
        field = self.model.compile_frame(frame, body)
        image = render_view(field, camera, settings=config.render_settings(), background=self.background)
        rendered = image.rgb.float().cpu().numpy()
        target = np.asarray(self.capture.load_image(frame, config.val_view), dtype=np.float32)
        box_min, box_max = body_box(body.vertices.detach().cpu().double().numpy())
        region = project_box_mask(camera, box_min, box_max)
        if region.any():
            box = psnr(rendered, target, mask=region)
        else:
            log.warning("step %d: the body box does not project into held-out camera %d; no box PSNR", self.step,
                        config.val_view)
            box = math.nan
        full = psnr(rendered, target)
        _save_side_by_side(self.run_dir / "val" / f"step_{self.step:06d}.png", target, rendered)
        append_csv_row(self.run_dir / "val.csv", VAL_FIELDS, {
            "step": self.step, "elapsed_s": round(self.elapsed, 2), "frame": frame, "view": config.val_view,
            "psnr_box": round(box, 3), "psnr_full": round(full, 3),
        })
        return box

    def run(self) -> TrainResult:
        """Train until ``steps`` or ``minutes`` is reached; checkpoint at the end (when anything was trained)."""
        config = self.config
        first_step = self.step
        # a time budget ends the run before its step count: a counter then, not a bar with a false total
        bar = progress_bar(total=None if config.minutes else config.steps, initial=self.step, desc="train", unit="step",
                           enabled=self.progress)  # fmt: skip
        metrics = {"loss": float("nan"), "psnr": float("nan")}
        val_psnr = None
        rays_window, time_window = 0, 0.0
        while not self.done():
            started = time.perf_counter()
            metrics = self.train_step()
            self.step += 1
            spent = time.perf_counter() - started
            self.elapsed += spent
            if config.minutes:  # every rank must stop at the same step
                self.elapsed = broadcast_float(self.elapsed, self.dist, device=self.device)
            rays_window += config.rays_per_step
            time_window += spent
            if self.dist.is_main and (self.step % config.log_every == 0 or self.step == 1):
                rays_per_s = rays_window / max(time_window, 1e-9)
                rays_window, time_window = 0, 0.0
                append_csv_row(self.run_dir / "log.csv", LOG_FIELDS, {
                    "step": self.step, "elapsed_s": round(self.elapsed, 3), "lr": f"{metrics['lr']:.3e}",
                    "loss": f"{metrics['loss']:.6f}", "color_mse": f"{metrics['color_mse']:.6f}",
                    "psnr": f"{metrics['psnr']:.3f}", "acc_mse": f"{metrics['acc_mse']:.6f}",
                    "rays_per_s": f"{rays_per_s:.0f}",
                })
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", psnr=f"{metrics['psnr']:.2f}", rays_s=f"{rays_per_s:.0f}")
            bar.update(1)
            if config.val_every and self.step % config.val_every == 0 and self.dist.is_main:
                started = time.perf_counter()
                val_psnr = self.validate()
                self.elapsed += time.perf_counter() - started
                if val_psnr is not None:
                    log.info("step %d: held-out camera %d box PSNR %.2f dB", self.step, config.val_view, val_psnr)
            if config.ckpt_every and self.step % config.ckpt_every == 0:
                self.save()
        bar.close()
        if self.step > first_step:
            self.save()
        else:  # a resumed run whose budget is spent: its checkpoint stays as it is
            log.info("%s is already at step %d (%.1f min): nothing to train", self.run_dir, self.step, self.elapsed / 60)
        self.sampler.close()
        return TrainResult(
            run_dir=self.run_dir, step=self.step, elapsed_s=self.elapsed, last_loss=metrics["loss"],
            last_psnr=metrics["psnr"], val_psnr=val_psnr, new_steps=self.step - first_step,
        )


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    capture=None,
    distributed: DistributedContext | None = None,
) -> TrainResult:
    """Run training as configured (see :class:`Trainer`)."""
    return Trainer(config, resume=resume, progress=progress, capture=capture, distributed=distributed).run()
