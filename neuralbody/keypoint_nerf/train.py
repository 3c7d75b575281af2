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
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.corpus import Corpus, read_corpus
from neuralbody.io.atomic import atomic_write_text
from neuralbody.io.errors import InputError
from neuralbody.keypoint_nerf.dataset import TrainingExample, training_example
from neuralbody.keypoint_nerf.inputs import condition
from neuralbody.keypoint_nerf.keypoints import JointRegressor, fit_joint_regressor, select_joints
from neuralbody.keypoint_nerf.model import ENCODINGS, KeypointNeRF, KeypointNeRFConfig, preset
from neuralbody.keypoint_nerf.render import render_rays
from neuralbody.training.checkpoint import load_checkpoint
from neuralbody.training.run_trainer import CHECKPOINT_NAME, CONFIG_NAME, RunTrainer, check_budget  # noqa: F401

log = logging.getLogger(__name__)

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
        minutes, cpu_minutes: optional budgets of training wall clock and of the process's CPU
            time, minutes; the run stops at the first of them and ``steps``.
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
    minutes: float | None = None
    cpu_minutes: float | None = None

    def __post_init__(self) -> None:
        check_budget(self.minutes, self.cpu_minutes)
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


class KeypointTrainer(RunTrainer):
    """Owns the model, regressor, optimiser and run folder of one train-keypoint run
    (:class:`~neuralbody.training.run_trainer.RunTrainer`: budget, checkpoints, resume, loop)."""

    label = "train-keypoint"
    log_fields = LOG_FIELDS
    config: KeypointTrainConfig

    def open_data(self) -> None:
        """Read the training data (here the corpus and its training frames)."""
        self.corpus = read_corpus(self.config.corpus)
        self.samples = self.corpus.samples("train")
        if not self.samples:
            raise ValueError(f"{self.config.corpus}: the corpus has no training frames")

    def build_model(self) -> KeypointNeRF:
        return KeypointNeRF(self.config.model_config())

    def start(self) -> None:
        """A new run's starting state beyond the seeded model (here the keypoint regressor fitted on the corpus)."""
        self.regressor = fit_corpus_regressor(self.corpus)

    def extra_state(self) -> dict:
        return {"regressor": self.regressor.to_dict()}

    def load_extra_state(self, payload: dict) -> None:
        if "regressor" not in payload:
            raise InputError(self.run_dir / CHECKPOINT_NAME, "no keypoint regressor in the checkpoint",
                             "train one with neuralbody train-keypoint")  # fmt: skip
        self.regressor = JointRegressor.from_dict(payload["regressor"])

    def batch_for(self, step: int) -> list[TrainingExample]:
        """The examples of ``step`` on this rank (a pure function of seed, rank and step)."""
        rng = np.random.default_rng([self.config.seed, self.context.rank, step])
        picks = rng.choice(len(self.samples), size=self.config.batch, replace=len(self.samples) < self.config.batch)
        return [training_example(self.corpus, self.samples[i], self.regressor, rng, num_inputs=self.config.num_inputs,
                                 rays=self.config.rays, size=self.model.config.input_size) for i in picks]  # fmt: skip

    def accumulate_gradients(self, examples: list[TrainingExample]) -> dict[str, float]:
        """Gradients of the examples' mean loss; returns the loss and the colour PSNR (dB) of the step's rays."""
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed * 1_000_003 + self.step)
        total, mse = 0.0, 0.0
        for example in examples:
            loss, colour = rays_loss(self.model, example, self.config, self.device, generator)
            (loss / len(examples)).backward()
            total, mse = total + float(loss.detach()) / len(examples), mse + colour / len(examples)
        return {"loss": total, "psnr": -10.0 * float(np.log10(max(mse, 1e-10)))}
