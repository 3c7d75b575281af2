"""The training loop of ``neuralbody train-keypoint``: one KeypointNeRF for everyone in a corpus.

Each step draws ``batch`` training frames (the corpus's ``train`` split; held-out people never
enter), ``num_inputs`` random input cameras and another target camera per frame
(:mod:`neuralbody.keypoint_nerf.dataset`), renders ``rays`` target pixels with ``samples``
stratified samples inside the box (:mod:`neuralbody.keypoint_nerf.render`) and minimises

    loss = mean |C(r) - C_gt(r)|^2 + mask_weight mean |opacity(r) - mask(r)|^2

Adam, learning rate decayed exponentially to ``lr * lr_final_ratio`` over the run, gradient norm
clipped at 1. The keypoint regressor (vertices -> keypoints) is fitted once at the start on the
training people's frames (:func:`~neuralbody.keypoint_nerf.keypoints.fit_joint_regressor`) and
saved with the weights.

The run folder: ``config.json`` (this :class:`KeypointTrainConfig`), ``checkpoint.pt`` (model
configuration and weights, regressor, optimiser, step, elapsed seconds; atomic, every
``ckpt_every`` steps and at the end; ``resume`` carries on from it) and ``log.csv``. Under torchrun
every rank draws its own batches (seed, rank, step), gradients are averaged, rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.io.csv_log import append_csv_row
from neuralbody.data.corpus import Corpus, read_corpus
from neuralbody.io.atomic import atomic_write_text
from neuralbody.io.errors import InputError
from neuralbody.io.progress import progress_bar
from neuralbody.keypoint_nerf.dataset import TrainingExample, training_example
from neuralbody.keypoint_nerf.inputs import condition
from neuralbody.keypoint_nerf.keypoints import JointRegressor, fit_joint_regressor, select_joints
from neuralbody.keypoint_nerf.model import ENCODINGS, KeypointNeRF, KeypointNeRFConfig, preset
from neuralbody.keypoint_nerf.render import render_rays
from neuralbody.training.checkpoint import load_checkpoint, resolve_device, save_checkpoint
from neuralbody.training.distributed import DistributedContext, average_gradients, barrier, broadcast_state, rank_device

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.pt"
LOG_FIELDS = ("step", "elapsed_s", "lr", "loss", "psnr")
REGRESSOR_FRAMES = 32
CHECKPOINT_KEYS = ("model_config", "model", "regressor", "step")


@dataclasses.dataclass
class KeypointTrainConfig:
    """A training run (saved as ``config.json``).

    Attributes:
        corpus, out: the corpus and run folders.
        encoding: "relative" (KeypointNeRF) or "global" (the pixelNeRF-style baseline).
        model_options: overrides of the encoding's :func:`~neuralbody.keypoint_nerf.model.preset` fields.
        steps: optimisation steps.
        batch: frames per step (per rank).
        rays: target rays per frame.
        samples: samples per ray.
        num_inputs: input views per frame.
        mask_weight: weight of the opacity-mask term.
        lr, lr_final_ratio: Adam's learning rate and its final fraction.
        seed: seeds the model and the batches.
        log_every, ckpt_every: intervals, steps.
        device: "cpu", "cuda[:i]" or "auto".
    """

    corpus: str
    out: str
    encoding: str = "relative"
    model_options: dict = dataclasses.field(default_factory=dict)
    steps: int = 2000
    batch: int = 1
    rays: int = 1024
    samples: int = 48
    num_inputs: int = 3
    mask_weight: float = 0.1
    lr: float = 1e-3
    lr_final_ratio: float = 0.1
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"--encoding {self.encoding!r}: choose one of {', '.join(ENCODINGS)}")
        for name in ("steps", "batch", "rays", "samples", "num_inputs", "log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        self.model_config()  # unknown or bad options fail here, before any work

    def model_config(self) -> KeypointNeRFConfig:
        return KeypointNeRFConfig.from_dict(dict(preset(self.encoding).to_dict(), **self.model_options))

    def to_json(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: Path) -> "KeypointTrainConfig":
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no run configuration; start a run without --resume")
        try:
            return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as error:
            raise InputError(path, f"not a train-keypoint configuration ({error})", "start a new run without --resume") from None


@dataclasses.dataclass
class TrainedRun:
    """A trained model (eval mode) with its keypoint regressor, its step and training seconds."""

    model: KeypointNeRF
    regressor: JointRegressor
    step: int
    elapsed_s: float = 0.0


def fit_corpus_regressor(corpus: Corpus, count: int = REGRESSOR_FRAMES) -> JointRegressor:
    """The vertices -> keypoints regressor fitted on up to ``count`` training frames, spread over the split."""
    samples = corpus.samples("train")
    picks = np.unique(np.linspace(0, len(samples) - 1, min(count, len(samples))).round().astype(int))
    names = list(corpus.index.get("joint_names", []))
    vertices, joints = [], []
    for i in picks:
        sample = samples[i]
        vertices.append(corpus.capture(sample.subject).load_vertices(sample.frame))
        joints.append(select_joints(corpus.load_joints(sample), names))
    return fit_joint_regressor(np.stack(vertices), np.stack(joints))


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedRun:
    """The model and regressor of a run folder's checkpoint."""
    path = Path(run_dir) / CHECKPOINT_NAME
    payload = load_checkpoint(path, device=device, required=CHECKPOINT_KEYS)
    try:
        model = KeypointNeRF(KeypointNeRFConfig.from_dict(payload["model_config"]))
        model.load_state_dict(payload["model"])
        regressor = JointRegressor.from_dict(payload["regressor"])
    except (ValueError, TypeError, KeyError, RuntimeError) as error:
        raise InputError(path, f"not a train-keypoint checkpoint ({str(error)[:120]})",
                         "train one with neuralbody train-keypoint") from None
    return TrainedRun(model.to(device).eval(), regressor, int(payload["step"]), float(payload.get("elapsed_s", 0.0)))


def rays_loss(model: KeypointNeRF, example: TrainingExample, config: KeypointTrainConfig, device,
              generator: torch.Generator) -> tuple[torch.Tensor, float]:  # fmt: skip
    """The loss of one example (module docstring) and its colour MSE."""
    inputs = condition(model, example.frame, device)
    out = render_rays(model, inputs, example.rays_o.to(device), example.rays_d.to(device), num_samples=config.samples,
                      background=torch.zeros(3, device=device), perturb=True, generator=generator)  # fmt: skip
    colour = (out.rgb - example.colours.to(device)).square().mean()
    mask = (out.opacity - example.masks.to(device)).square().mean()
    return colour + config.mask_weight * mask, float(colour.detach())


class KeypointTrainer:
    """Owns the model, regressor, optimiser and run folder of one train-keypoint run."""

    def __init__(self, config: KeypointTrainConfig, *, resume: bool = False, progress: bool = True,
                 distributed: DistributedContext | None = None) -> None:  # fmt: skip
        self.config = config
        self.context = distributed or DistributedContext()
        self.device = rank_device(resolve_device(config.device), self.context)
        self.progress = progress and self.context.is_main
        self.run_dir = Path(config.out)
        self.open_data()
        torch.manual_seed(config.seed)
        self.model = KeypointNeRF(config.model_config()).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step, self.elapsed_s = 0, 0.0
        if resume and (self.run_dir / CHECKPOINT_NAME).is_file():
            self._load()
        else:
            self.start()
            if self.context.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                config.to_json(self.run_dir / CONFIG_NAME)
        broadcast_state(self.model, self.context)

    def open_data(self) -> None:
        """Read the training data (here the corpus and its training frames)."""
        self.corpus = read_corpus(self.config.corpus)
        self.samples = self.corpus.samples("train")
        if not self.samples:
            raise ValueError(f"{self.config.corpus}: the corpus has no training frames")

    def start(self) -> None:
        """A new run's starting state beyond the seeded model (here the keypoint regressor fitted on the corpus)."""
        self.regressor = fit_corpus_regressor(self.corpus)

    def fraction(self) -> float:
        """How far the run is, 0 .. 1 (>= 1: done): here step / steps."""
        return self.step / self.config.steps

    def progress_total(self) -> int | None:
        """The progress bar's total, steps (None: unknown, a counter)."""
        return self.config.steps

    def _load(self) -> None:
        payload = load_checkpoint(self.run_dir / CHECKPOINT_NAME, device=self.device, required=CHECKPOINT_KEYS)
        if payload["model_config"] != self.model.config.to_dict():
            raise InputError(self.run_dir / CHECKPOINT_NAME, "the checkpoint's model differs from config.json's",
                             "resume with the run's own config.json, or start a new --out")  # fmt: skip
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.regressor = JointRegressor.from_dict(payload["regressor"])
        self.step, self.elapsed_s = int(payload["step"]), float(payload["elapsed_s"])
        log.info("resumed %s at step %d (%.1f min)", self.run_dir, self.step, self.elapsed_s / 60)

    def save(self) -> None:
        """Write checkpoint.pt atomically (rank 0)."""
        if self.context.is_main:
            save_checkpoint(self.run_dir / CHECKPOINT_NAME, {
                "model_config": self.model.config.to_dict(), "model": self.model.state_dict(),
                "regressor": self.regressor.to_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "elapsed_s": self.elapsed_s,
            })  # fmt: skip

    def examples_for(self, step: int) -> list[TrainingExample]:
        """The examples of ``step`` on this rank (a pure function of seed, rank and step)."""
        rng = np.random.default_rng([self.config.seed, self.context.rank, step])
        picks = rng.choice(len(self.samples), size=self.config.batch, replace=len(self.samples) < self.config.batch)
        return [training_example(self.corpus, self.samples[i], self.regressor, rng, num_inputs=self.config.num_inputs,
                                 rays=self.config.rays, size=self.model.config.input_size) for i in picks]  # fmt: skip

    def train_step(self, examples: list[TrainingExample]) -> tuple[float, float]:
        """One optimisation step; returns (loss, colour PSNR in dB of the step's rays)."""
        lr = self.config.lr * self.config.lr_final_ratio ** min(1.0, self.fraction())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed * 1_000_003 + self.step)
        self.optimizer.zero_grad(set_to_none=True)
        total, mse = 0.0, 0.0
        for example in examples:
            loss, colour = rays_loss(self.model, example, self.config, self.device, generator)
            (loss / len(examples)).backward()
            total, mse = total + float(loss.detach()) / len(examples), mse + colour / len(examples)
        average_gradients(self.model.parameters(), self.context)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return total, -10.0 * float(np.log10(max(mse, 1e-10)))

    def run(self) -> int:
        """Train until :meth:`fraction` reaches 1 (``config.steps``), checkpointing; returns the final step."""
        bar = progress_bar(total=self.progress_total(), initial=self.step, enabled=self.progress, desc="train-keypoint", unit="step")
        while self.fraction() < 1.0:
            started = time.perf_counter()
            loss, psnr = self.train_step(self.examples_for(self.step))
            self.step += 1
            self.elapsed_s += time.perf_counter() - started
            if self.context.is_main and self.step % self.config.log_every == 0:
                lr = self.optimizer.param_groups[0]["lr"]
                append_csv_row(self.run_dir / "log.csv", LOG_FIELDS, {"step": self.step, "elapsed_s": round(self.elapsed_s, 2),
                            "lr": f"{lr:.3g}", "loss": f"{loss:.5f}", "psnr": f"{psnr:.2f}"})  # fmt: skip
            if self.step % self.config.ckpt_every == 0:
                self.save()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", psnr=f"{psnr:.1f}")
        bar.close()
        self.save()
        barrier(self.context)
        return self.step
