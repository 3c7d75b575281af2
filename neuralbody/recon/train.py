"""The training loop of ``neuralbody train-recon``: one pixel-aligned implicit function for everyone in a corpus.

Each step draws ``batch`` training frames (the corpus's ``train`` split), a number of views ``k``
(``view_counts``, weighted by ``view_weights``) and ``k`` random cameras per frame, and minimises
the binary cross-entropy between the predicted occupancy and the labels of ``points`` samples per
frame (PIFu regresses the probability with a squared error; both the models here use the
cross-entropy). Adam, learning rate decayed exponentially to ``lr * lr_final_ratio`` over the
run's progress (the largest of the step and budget fractions), gradient norm clipped at 1.

Budgets: ``steps``; ``minutes`` of wall clock (the steps' own time, ``elapsed_s``); and
``cpu_minutes`` of the training process's CPU time (``cpu_s``: :func:`time.process_time` over the
training loop, every thread of the process, the next batch's decoding, validation and checkpoints
included; rank 0's under torchrun). The CPU budget is the one to use on a shared machine: other
jobs slow the wall clock, not the work a run gets. The first budget reached ends the run; both
times are saved in the checkpoint and carried on by ``resume``.

The run folder holds ``config.json`` (this :class:`ReconTrainConfig`), ``checkpoint.pt`` (model
configuration and weights, optimiser, step, elapsed wall and CPU seconds; atomic, every ``ckpt_every`` steps
and at the end; ``resume`` carries on from it), ``log.csv`` (every ``log_every`` steps) and
``val.csv``: every ``val_every`` steps, the occupancy IoU and accuracy on ``val_samples`` frames of
the held-out people, seen from ``max(view_counts)`` evenly spread cameras, carved as
``reconstruct`` carves (a point outside any of the views' masks is empty).

Under torchrun (:mod:`neuralbody.training.distributed`) every rank draws its own batches (seed,
rank, step), gradients are averaged after backward, and rank 0 alone writes; all ranks stop at
rank 0's clock.

A model with a body prior (``mvms-body``: :mod:`neuralbody.recon.body_prior`) reads its points'
features against each frame's true body (the corpus's ``vertices/``, Anny's faces), perturbed
in training, exact in validation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuralbody.io.csv_log import append_csv_row
from neuralbody.data.corpus import read_corpus
from neuralbody.io.atomic import atomic_write_text
from neuralbody.evaluation.mesh_extraction import carve_mask
from neuralbody.recon.body_prior import BodyMeshes, BodyPrior, body_model_faces
from neuralbody.recon.dataset import ExampleSettings, ReconBatch, make_batch, spread_views
from neuralbody.recon.model import PRESETS, PixelAlignedOccupancy, ReconModelConfig
from neuralbody.training.checkpoint import load_checkpoint
from neuralbody.training.run_trainer import CHECKPOINT_NAME, CONFIG_NAME, RunTrainer, check_budget  # noqa: F401

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "elapsed_s", "lr", "loss", "accuracy", "views", "cpu_s")
VAL_FIELDS = ("step", "elapsed_s", "iou", "accuracy", "views")
DEFAULT_VIEWS = {"pifu": ((1,), (1.0,)), "mvms": ((1, 2, 3, 4), (0.1, 0.2, 0.2, 0.5))}


@dataclasses.dataclass
class ReconTrainConfig:
    """A training run (saved as ``config.json``).

    Attributes:
        corpus: the corpus folder.
        out: the run folder.
        model: preset name (:data:`neuralbody.recon.model.PRESETS`).
        model_options: overrides of the preset's :class:`ReconModelConfig` fields.
        steps: optimisation steps (the budget ends the run first when set).
        minutes: wall-clock budget, minutes (None: none).
        cpu_minutes: budget of the training process's CPU time, minutes (None: none).
        batch: frames per step (per rank).
        points: occupancy samples per frame.
        view_counts, view_weights: how many views a step uses, and how often.
        lr, lr_final_ratio: Adam's learning rate and its final fraction.
        seed: seeds the model and the batches.
        log_every, ckpt_every, val_every: intervals, steps.
        val_samples: held-out frames scored at each validation.
        device: "cpu", "cuda[:i]" or "auto".
    """

    corpus: str
    out: str
    model: str = "mvms"
    model_options: dict = dataclasses.field(default_factory=dict)
    steps: int = 3000
    minutes: float | None = None
    cpu_minutes: float | None = None
    batch: int = 4
    points: int = 2048
    view_counts: tuple[int, ...] = ()
    view_weights: tuple[float, ...] = ()
    lr: float = 1e-3
    lr_final_ratio: float = 0.1
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    val_every: int = 200
    val_samples: int = 8
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.model not in PRESETS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(PRESETS)}")
        if not self.view_counts:
            counts, weights = DEFAULT_VIEWS["pifu" if self.model == "pifu" else "mvms"]
            self.view_counts, self.view_weights = counts, self.view_weights or weights
        self.view_counts, self.view_weights = tuple(self.view_counts), tuple(self.view_weights or [1.0] * len(self.view_counts))
        if len(self.view_weights) != len(self.view_counts) or min(self.view_counts) < 1 or min(self.view_weights) < 0:
            raise ValueError(f"view counts {self.view_counts} need as many non-negative weights, got {self.view_weights}")
        for name in ("steps", "batch", "points", "log_every", "ckpt_every", "val_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        check_budget(self.minutes, self.cpu_minutes)

    def model_config(self) -> ReconModelConfig:
        values = dict(PRESETS[self.model].to_dict(), **self.model_options)
        return ReconModelConfig.from_dict(values)

    def to_json(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: Path) -> "ReconTrainConfig":
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no run configuration; start a run without --resume")
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


@dataclasses.dataclass
class ReconTrainResult:
    run_dir: Path
    step: int
    elapsed_s: float
    cpu_s: float
    last_loss: float
    val_iou: float | None


def occupancy_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Mean binary cross-entropy of logits (B, N) against labels (B, N) in {0, 1}, and the accuracy."""
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    accuracy = float(((logits > 0).float() == labels).float().mean())
    return loss, accuracy


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[PixelAlignedOccupancy, dict]:
    """The trained model of a run folder (eval mode, on ``device``) and its checkpoint's metadata."""
    payload = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME, device=device)
    if "model_config" not in payload:
        raise ValueError(f"{Path(run_dir) / CHECKPOINT_NAME}: not a train-recon checkpoint")
    model = PixelAlignedOccupancy(ReconModelConfig.from_dict(payload["model_config"]))
    model.load_state_dict(payload["model"])
    meta = {k: payload[k] for k in ("step", "elapsed_s", "model_config")}
    meta["cpu_s"] = float(payload.get("cpu_s", 0.0))  # runs saved before the CPU budget existed: 0
    return model.to(device).eval(), meta


def body_prior_for(model: PixelAlignedOccupancy) -> BodyMeshes | None:
    """The frames' bodies a model reads (Anny's faces, the model's scales), or None for a model without a body prior."""
    if not model.uses_body:
        return None
    return BodyMeshes(BodyPrior(faces=body_model_faces(), scales=model.config.body_scales))


def _on(tensor: torch.Tensor | None, device) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(device)


class ReconTrainer(RunTrainer):
    """Owns the model, optimiser and run folder of one train-recon run
    (:class:`~neuralbody.training.run_trainer.RunTrainer`: budget, checkpoints, resume, loop)."""

    label = "train-recon"
    log_fields = LOG_FIELDS
    config: ReconTrainConfig

    def open_data(self) -> None:
        """The corpus, its training frames and the held-out frames scored at each validation."""
        config = self.config
        self.corpus = read_corpus(config.corpus)
        self.train_samples = self.corpus.samples("train")
        self.val_samples = self.corpus.samples("heldout_people")[: config.val_samples]
        if not self.train_samples:
            raise ValueError(f"{config.corpus}: the corpus has no training frames")
        self.last_val, self.last_loss = None, float("nan")

    def build_model(self) -> PixelAlignedOccupancy:
        model = PixelAlignedOccupancy(self.config.model_config())
        self.settings = ExampleSettings(size=model.config.input_size, points=self.config.points)
        self.body_prior = body_prior_for(model)
        return model

    def batch_for(self, step: int) -> ReconBatch:
        """The training batch of ``step`` on this rank (a pure function of seed, rank and step)."""
        rng = np.random.default_rng([self.config.seed, self.context.rank, step])
        weights = np.asarray(self.config.view_weights, dtype=np.float64)
        count = int(rng.choice(self.config.view_counts, p=weights / weights.sum()))
        picks = rng.choice(len(self.train_samples), size=self.config.batch, replace=len(self.train_samples) < self.config.batch)
        return make_batch(self.corpus, [self.train_samples[i] for i in picks], count, self.settings, rng, self.body_prior)

    def accumulate_gradients(self, batch: ReconBatch) -> dict[str, float]:
        """Gradients of the batch's occupancy loss; returns the loss, the accuracy and the views used."""
        logits = self.model(batch.views.to(self.device), batch.centre.to(self.device), batch.points.to(self.device),
                            _on(batch.body, self.device))  # fmt: skip
        loss, accuracy = occupancy_loss(logits, batch.labels.to(self.device))
        loss.backward()
        self.last_loss = loss.item()
        return {"loss": self.last_loss, "accuracy": accuracy, "views": batch.views.images.shape[1]}

    def validate(self) -> dict | None:
        """Occupancy IoU and accuracy on the held-out people (rank 0; None without held-out frames)."""
        if not self.val_samples or not self.context.is_main:
            return None
        count = max(self.config.view_counts)
        settings = dataclasses.replace(self.settings, points=4096)
        hits = union = correct = total = 0
        self.model.eval()
        with torch.no_grad():
            for sample in self.val_samples:
                batch = make_batch(self.corpus, [sample], count, settings, None, self.body_prior)
                logits = self.model(batch.views.to(self.device), batch.centre.to(self.device), batch.points.to(self.device),
                                    _on(batch.body, self.device))  # fmt: skip
                capture = self.corpus.capture(sample.subject)
                view_ids = spread_views(capture.num_views, min(count, capture.num_views))  # make_batch's choice
                kept = carve_mask(batch.points[0].numpy(), [capture.cameras[v] for v in view_ids],
                                  [capture.load_mask(sample.frame, v) for v in view_ids])  # fmt: skip
                predicted, labels = (logits.cpu() > 0) & torch.from_numpy(kept)[None], batch.labels > 0.5
                hits += int((predicted & labels).sum())
                union += int((predicted | labels).sum())
                correct += int((predicted == labels).sum())
                total += labels.numel()
        return {"iou": hits / max(union, 1), "accuracy": correct / total, "views": count}

    def after_step(self) -> None:
        if self.context.is_main and self.step % self.config.val_every == 0:
            self._validate_and_log()

    def _validate_and_log(self) -> None:
        result = self.validate()
        if result is not None:
            self.last_val = result
            row = {"step": self.step, "elapsed_s": round(self.elapsed_s, 2), "iou": f"{result['iou']:.4f}",
                   "accuracy": f"{result['accuracy']:.4f}", "views": result["views"]}
            append_csv_row(self.run_dir / "val.csv", VAL_FIELDS, row)
            log.info("step %d: held-out occupancy IoU %.4f, accuracy %.4f (%d views)", self.step, result["iou"],
                     result["accuracy"], result["views"])  # fmt: skip

    def run(self) -> ReconTrainResult:
        """Train until the step count or a time budget is reached; validate; save; return a summary."""
        super().run()
        if self.context.is_main and self.step % self.config.val_every != 0:
            self._validate_and_log()
        val = self.last_val["iou"] if self.last_val else None
        return ReconTrainResult(self.run_dir, self.step, self.elapsed_s, self.cpu_s, self.last_loss, val)
