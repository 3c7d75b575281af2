"""Training configuration: one dataclass, stored human-readable as RUN/config.json.

Two presets set the model and training sizes together:

* ``fast`` (default): compact Neural Body (1 cm voxels, 128-wide MLPs, its 32 samples a ray
  spread over the band within a few cm of the body only), 512 rays a step: tuned for
  minutes of CPU training (bench/README.md has the measurements behind these choices).
* ``faithful``: the original sizes (5 mm voxels, 256-wide MLPs, 64 samples everywhere in the
  box padded 5 cm, 1024 rays a step, lr 5e-4).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from neuralbody.io.atomic import atomic_write_text
from neuralbody.io.errors import InputError

PRESETS = {
    "fast": {"rays_per_step": 512, "lr": 5e-3, "code_lr_scale": 5.0, "num_samples": 32, "lr_final_ratio": 0.1},
    "faithful": {"rays_per_step": 1024, "lr": 5e-4, "code_lr_scale": 1.0, "num_samples": 64, "lr_final_ratio": 0.1},
}
# Per model kind, preset values that differ: the frame-conditioned NeRF baseline has no occupancy
# band to put its samples in, so it keeps 64 samples over the box and 1024 rays a step.
# Per-model departures from a preset. The baseline samples exactly like Neural Body (same
# rays, same occupancy band), but at 5e-3 its density collapses to zero within minutes.
MODEL_PRESETS = {
    "frame_nerf": {"fast": {"lr": 2e-3}},
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (paths as given; units in the names).

    Attributes:
        data: capture folder (ZJU-MoCap layout).
        out: run folder (config.json, checkpoint.pt, log.csv, val/).
        model_kind: "neuralbody" or "frame_nerf".
        preset: "fast" or "faithful" (also passed to the model as options["preset"]).
        model_options: model option overrides (see :func:`neuralbody.models.build_model`).
        steps: optimisation steps (the run stops at the first of steps / minutes).
        minutes: wall-clock budget in minutes of training (None: no limit).
        rays_per_step: rays in one step (from all training views of one frame).
        lr: initial Adam learning rate.
        code_lr_scale: learning-rate multiplier of the latent codes (per vertex, per frame).
        lr_final_ratio: the rate decays exponentially to lr * this at the end of the run
            (progress = max(step / steps, elapsed / minutes)).
        scale: image scale factor (0.5: half resolution, intrinsics scaled).
        train_frames: frame indices to train on.
        train_views: camera indices to train on.
        val_view: held-out camera index for validation renders (None: none available).
        seed: random seed.
        device: "auto", "cpu" or "cuda[:i]".
        val_every, ckpt_every, log_every: intervals in steps.
        num_samples: samples per ray.
        acc_loss_weight: weight of the MSE between accumulated opacity and the mask.
        distortion_loss_weight: weight of the mean distortion loss of the rays (1/metres;
            :func:`~neuralbody.rendering.volrend.distortion_loss`): pulls each ray's weight into
            one short stretch, i.e. a sharper surface (0: off).
        border_px: half-width of the excluded band around the mask border, pixels (None:
            0 where the capture's meta says ``exact_masks`` (synthetic captures), else the
            masks are judged from the data, see ``mask_trust``). Excluding the band guards
            against noisy masks but leaves the silhouette unsupervised there: with exact masks
            it fattens the body by about the band's width.
        mask_trust: the masks judged against the posed bodies when ``border_px`` is None and
            the capture does not declare exact masks
            (:class:`~neuralbody.training.mask_trust.MaskQuality` as a dict: offset, spread,
            holes and the colour band, pixels); filled in by the trainer
            and kept, so a resumed run decodes its images the same way. None: not judged.
        grad_clip: gradient values are clipped to [-grad_clip, grad_clip].
        background: (3,) background colour in [0, 1].
        image_source: "auto" (preload the training images when their decoded size is below
            ``preload_budget_gb``, else stream them), "preload" or "stream".
        preload_budget_gb: decoded-size limit of preloading in "auto" mode, GB.
        cache_gb: size of the streaming image cache, GB (at least two frames' views).
    """

    data: str
    out: str
    model_kind: str = "neuralbody"
    preset: str = "fast"
    model_options: dict = dataclasses.field(default_factory=dict)
    steps: int = 20000
    minutes: float | None = None
    rays_per_step: int = 1024
    lr: float = 2e-3
    lr_final_ratio: float = 0.1
    code_lr_scale: float = 1.0
    scale: float = 1.0
    train_frames: list[int] = dataclasses.field(default_factory=list)
    train_views: list[int] = dataclasses.field(default_factory=list)
    val_view: int | None = None
    seed: int = 0
    device: str = "auto"
    val_every: int = 500
    ckpt_every: int = 250
    log_every: int = 10
    num_samples: int = 64
    acc_loss_weight: float = 0.1
    distortion_loss_weight: float = 0.0
    border_px: int | None = None
    mask_trust: dict | None = None
    grad_clip: float = 40.0
    background: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    image_source: str = "auto"
    preload_budget_gb: float = 1.5
    cache_gb: float = 1.0

    @classmethod
    def from_preset(cls, preset: str, **fields) -> "TrainConfig":
        """A config with the preset's training sizes (``MODEL_PRESETS`` for the model kind), then ``fields`` on top."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        model_values = MODEL_PRESETS.get(fields.get("model_kind", "neuralbody"), {}).get(preset, {})
        return cls(preset=preset, **{**PRESETS[preset], **model_values, **fields})

    def validate(self) -> "TrainConfig":
        """Raise :class:`InputError` for values no run can use (each message names the field and its flag)."""
        positive = {"steps": "--steps", "rays_per_step": "--rays", "num_samples": "--samples", "lr": "--lr",
                    "scale": "--scale", "code_lr_scale": "--code-lr-scale", "preload_budget_gb": "--preload-budget-gb",
                    "cache_gb": "--cache-gb", "grad_clip": "grad_clip"}  # fmt: skip
        if self.minutes is not None:
            positive["minutes"] = "--minutes"
        for name, flag in positive.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise InputError(flag, f"must be a positive number, got {value!r}", f"pass {flag} > 0")
        non_negative = {"val_every": "--val-every", "ckpt_every": "--ckpt-every", "log_every": "log_every",
                        "acc_loss_weight": "--acc-loss-weight", "distortion_loss_weight": "--distortion-loss-weight",
                        "lr_final_ratio": "lr_final_ratio", "border_px": "--border-px"}  # fmt: skip
        for name, flag in non_negative.items():
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
                raise InputError(flag, f"must be >= 0, got {value!r}", f"pass {flag} >= 0")
        return self

    def full_model_options(self) -> dict:
        """Options passed to build_model: the preset (for Neural Body) plus overrides."""
        if self.model_kind == "neuralbody":
            return {"preset": self.preset, **self.model_options}
        return dict(self.model_options)

    def render_settings(self, **overrides):
        """The :class:`RenderSettings` matching training (deterministic samples)."""
        from neuralbody.rendering.render import RenderSettings

        return RenderSettings(num_samples=self.num_samples, **overrides)

    def to_json(self, path: str | Path) -> None:
        """Write as indented JSON (atomically, :func:`neuralbody.io.atomic.atomic_write_text`)."""
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        """Read a run's config.json (InputError naming the file when it is not a valid config)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no run config here; is this a folder written by `neuralbody train`?")
        fix = "restore it from a copy, or train the run again"
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(path, f"not valid JSON ({error})", fix) from None
        if not isinstance(values, dict):
            raise InputError(path, f"must hold a JSON object, got {type(values).__name__}", fix)
        names = {field.name for field in dataclasses.fields(cls)}
        try:
            return cls(**{key: value for key, value in values.items() if key in names})
        except TypeError as error:  # a required field (data, out) is missing
            raise InputError(path, f"not a run config ({error})", fix) from None
