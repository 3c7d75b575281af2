"""Training and evaluation of the Neural Body Fitting network on an :class:`~nbf_data.NBFDataset`.

Adam with a cosine learning-rate decay over a fixed number of steps (the budget is counted in
steps and batch size, so runs on a shared machine are comparable), mini-batches drawn with a
seeded generator (the same batches for every input kind), an atomic checkpoint (a temporary
file renamed over the old one) every ``checkpoint_every`` steps and at the end; a run resumes
from its checkpoint when asked. The checkpoint is also the weights file of
``neuralbody fit --init nbf --nbf-weights PATH`` (:func:`load_nbf`).

Inputs (values in [-1, 1], (B, 3, H, W)): ``segmentation`` = the colour-coded part map
(:data:`~nbf_parts.PART_COLOURS`), ``rgb`` = the rendered image.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.body.base import BodyModel
from neuralbody.fitting import nbf_parts
from neuralbody.fitting.nbf_data import NBF_BONES, NBF_JOINTS, NBFDataset
from neuralbody.io.errors import InputError
from neuralbody.io.safe_load import load_torch
from neuralbody.fitting.nbf_network import (
    INPUT_KINDS,
    BodyJoints,
    LossWeights,
    NBFNetwork,
    NBFOutput,
    NBFTargets,
    mpjpe_mm,
    nbf_losses,
)
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.io.atomic import atomic_path
from neuralbody.io.progress import progress_bar

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NBFTrainConfig:
    """Training settings. steps x batch is the budget; lr decays as a cosine to 0 over ``steps``."""

    input_kind: str = "segmentation"
    steps: int = 2000
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    width: int = 32
    hidden: int = 256
    weights: LossWeights = LossWeights()
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"NBFTrainConfig: input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"NBFTrainConfig: steps and batch must be >= 1, got {self.steps}, {self.batch}")


@dataclasses.dataclass
class NBFTrainResult:
    """model (eval mode); history: rows (step, total, params, joints3d m, joints2d); seconds / cpu_seconds of training."""

    model: NBFNetwork
    history: list[tuple[float, ...]]
    seconds: float
    cpu_seconds: float
    steps: int


def network_input(dataset: NBFDataset, index, kind: str) -> torch.Tensor:
    """(B, 3, H, W) float32 in [-1, 1] of the samples ``index``: colour-coded part maps or RGB."""
    if kind == "segmentation":
        pixels = nbf_parts.colour_code(dataset.parts[index])
    elif kind == "rgb":
        pixels = dataset.rgb[index]
    else:
        raise ValueError(f"network_input: kind must be one of {INPUT_KINDS}, got {kind!r}")
    return images_to_input(pixels)


def images_to_input(pixels: np.ndarray) -> torch.Tensor:
    """(B, 3, H, W) float32 in [-1, 1] from (B, H, W, 3) uint8 images."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"images_to_input: expected (B, H, W, 3) uint8 images, got {pixels.shape}")
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def dataset_targets(dataset: NBFDataset, index) -> NBFTargets:
    """Ground truth of the samples ``index`` as float32 tensors."""
    return NBFTargets(
        bone_rotations=axis_angle_to_matrix(torch.from_numpy(dataset.bone_poses[index]).double()).float(),
        global_rotation=torch.from_numpy(dataset.global_rotation[index]).float(),
        shapes=torch.from_numpy(dataset.shapes[index]).float(),
        joints3d=torch.from_numpy(dataset.joints3d[index]).float(),
        joints2d=torch.from_numpy(dataset.joints2d[index]).float(),
    )


def make_network(body: BodyModel, config: NBFTrainConfig, resolution: int) -> NBFNetwork:
    return NBFNetwork(BodyJoints(body), in_channels=3, resolution=resolution, width=config.width, hidden=config.hidden)


def save_checkpoint(path: str | Path, model: NBFNetwork, optimizer, step: int, config: NBFTrainConfig) -> None:
    """Atomically write model + optimizer + step + config (``torch.save`` into :func:`neuralbody.io.atomic.atomic_path`)."""
    state = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "step": step,
        "config": {**dataclasses.asdict(config), "weights": dataclasses.asdict(config.weights)},
        "resolution": model.resolution,
        "bones": list(NBF_BONES),
        "joints": list(NBF_JOINTS),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _config_from(saved: dict) -> NBFTrainConfig:
    saved = dict(saved)
    saved["weights"] = LossWeights(**saved.get("weights", {}))
    return NBFTrainConfig(**saved)


NBF_KEYS = ("model", "optimizer", "step", "config", "resolution", "bones", "joints")


def _load_state(path: str | Path) -> dict:
    """A saved NBF state (tensors and plain values only: ``weights_only``); InputError naming the file otherwise."""
    fix = "train the NBF weights again with this version (bench/bench_nbf.py or nbf_train.train_nbf)"
    state = load_torch(path, map_location="cpu", fix=fix)
    missing = [key for key in NBF_KEYS if key not in state] if isinstance(state, dict) else list(NBF_KEYS)
    if missing:
        raise InputError(path, f"not NBF weights (no {', '.join(missing)})", fix)
    return state


def load_nbf(path: str | Path, body: BodyModel) -> tuple[NBFNetwork, NBFTrainConfig]:
    """The trained network (eval mode) and its training config from a checkpoint / weights file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NBF weights at {path}; train them with bench/bench_nbf.py or nbf_train.train_nbf")
    state = _load_state(path)
    if state.get("bones") != list(NBF_BONES) or state.get("joints") != list(NBF_JOINTS):
        raise ValueError(f"{path}: trained for other bones/joints than this version's NBF_BONES / NBF_JOINTS")
    config = _config_from(state["config"])
    model = make_network(body, config, int(state["resolution"]))
    model.load_state_dict(state["model"])
    return model.eval(), config


def _learning_rate(config: NBFTrainConfig, step: int) -> float:
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * min(step, config.steps) / config.steps))


def train_nbf(
    dataset: NBFDataset,
    body: BodyModel,
    config: NBFTrainConfig,
    *,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> NBFTrainResult:
    """Train a network on ``dataset`` for ``config.steps`` steps of ``config.batch`` samples."""
    torch.manual_seed(config.seed)
    model = make_network(body, config, dataset.parts.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = _load_state(checkpoint)
        model.load_state_dict(state["model"])
        if state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
        log.info("resumed NBF training from %s at step %d", checkpoint, start)
    generator = np.random.default_rng([config.seed, 55])
    for _ in range(start):  # the same batches as an uninterrupted run
        generator.integers(0, len(dataset), config.batch)
    history = []
    model.train()
    wall, cpu = time.perf_counter(), time.process_time()
    bar = progress_bar(range(start, config.steps), enabled=progress, desc=f"NBF training ({config.input_kind})")
    for step in bar:
        index = np.sort(generator.integers(0, len(dataset), config.batch))
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step)
        output = model(network_input(dataset, index, config.input_kind))
        losses = nbf_losses(output, dataset_targets(dataset, index), config.weights)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        values = tuple(float(losses[k].detach()) for k in ("total", "params", "joints3d", "joints2d"))
        history.append((step + 1, *values))
        if step % 25 == 0:
            bar.set_postfix(loss=f"{values[0]:.3f}", mpjpe_mm=f"{1000 * values[2]:.0f}")
        if checkpoint is not None and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
            save_checkpoint(checkpoint, model, optimizer, step + 1, config)
    bar.close()
    return NBFTrainResult(model.eval(), history, time.perf_counter() - wall, time.process_time() - cpu, config.steps)


@torch.no_grad()
def predict(model: NBFNetwork, dataset: NBFDataset, kind: str, *, batch: int = 256) -> NBFOutput:
    """Predictions (eval mode) for every sample of ``dataset`` from input ``kind``."""
    model.eval()
    outputs = [model(network_input(dataset, np.arange(i, min(i + batch, len(dataset))), kind))
               for i in range(0, len(dataset), batch)]  # fmt: skip
    return NBFOutput(*(torch.cat([getattr(o, f.name) for o in outputs]) for f in dataclasses.fields(NBFOutput)))


def evaluate_mpjpe(model: NBFNetwork, dataset: NBFDataset, kind: str) -> np.ndarray:
    """(N,) root-aligned MPJPE of each sample, millimetres, over :data:`NBF_JOINTS`."""
    output = predict(model, dataset, kind)
    root = NBF_JOINTS.index("root")
    return mpjpe_mm(output.joints3d, torch.from_numpy(dataset.joints3d).float(), root).numpy()
