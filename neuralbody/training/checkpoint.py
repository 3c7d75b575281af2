"""Saving and loading training runs.

A run folder holds ``config.json`` (the :class:`TrainConfig`, human-readable) and
``checkpoint.pt`` (model and optimiser state, step, elapsed seconds, random states, model
construction arguments). Checkpoints are written atomically (:func:`neuralbody.io.atomic.atomic_path`),
so a crash mid-write never leaves a partial checkpoint.

A checkpoint holds only tensors, dicts, lists, tuples, strings, numbers and None (random
states included: numpy's generator state is a dict of ints, Python's a tuple of ints) and is
read with ``torch.load(weights_only=True)``: a file crafted to run code is refused, and a
damaged or foreign one is reported in one line naming it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from neuralbody.io.atomic import atomic_path
from neuralbody.io.errors import InputError, one_line
from neuralbody.io.safe_load import load_torch
from neuralbody.training.config import TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"
CHECKPOINT_FIX = (
    "train the run again (or re-save its checkpoint with this version), or restore checkpoint.pt from a copy"
)
RUN_KEYS = ("model", "step", "model_kind", "model_options", "num_vertices", "num_frames")  # what load_run reads
RESUME_KEYS = (*RUN_KEYS, "optimizer", "elapsed_s", "torch_rng", "numpy_rng", "python_rng")  # and a resumed run


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write ``payload`` (tensors and plain values only) with ``torch.save`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, device=None, *, required: tuple[str, ...] = ()) -> dict:
    """Read a checkpoint payload (tensors mapped to ``device``).

    Raises FileNotFoundError when missing and InputError naming the file when it is refused
    (anything but tensors and plain values), damaged, not a dict, or lacks a ``required`` key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; train first (`neuralbody train DATA --out RUN`)")
    payload = load_torch(path, map_location=device, fix=CHECKPOINT_FIX)
    if not isinstance(payload, dict):
        raise InputError(path, f"holds a {type(payload).__name__}, not a checkpoint dict", CHECKPOINT_FIX)
    missing = [key for key in required if key not in payload]
    if missing:
        raise InputError(path, f"not a training checkpoint (no {', '.join(missing)})", CHECKPOINT_FIX)
    return payload


def resolve_device(name: str | None) -> torch.device:
    """"auto"/None -> cuda when available, else cpu; otherwise the named device."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclasses.dataclass
class LoadedRun:
    """A trained run ready for rendering and evaluation.

    Attributes:
        model: the model in eval mode on ``device``.
        capture: the run's capture read at the run's image scale.
        config: the run's :class:`TrainConfig`.
        train_frames, train_views: what it was trained on.
        step: optimisation steps done.
        device: where the model lives.
    """

    model: torch.nn.Module
    capture: object
    config: TrainConfig
    train_frames: list[int]
    train_views: list[int]
    step: int
    device: torch.device

    def render_settings(self, **overrides):
        return self.config.render_settings(**overrides)

    @property
    def background(self) -> torch.Tensor:
        return torch.tensor(self.config.background, dtype=torch.float32, device=self.device)


# Neural Body state that runs trained before the reference-pose texture do not have.
PRE_TEXTURE_KEYS = frozenset({"reference_vertices", "has_reference", "texture_grid.tables"})


def load_run(run_dir: str | Path, device=None) -> LoadedRun:
    """Load RUN/config.json and RUN/checkpoint.pt; the model is in eval mode on ``device``."""
    from neuralbody.data.capture import read_capture
    from neuralbody.models import build_model

    run_dir = Path(run_dir)
    config = TrainConfig.from_json(run_dir / CONFIG_NAME)
    device = resolve_device(device if device is not None else config.device)
    path = run_dir / CHECKPOINT_NAME
    payload = load_checkpoint(path, device=device, required=RUN_KEYS)
    options = dict(payload["model_options"] or {})
    model = build_model(payload["model_kind"], num_vertices=payload["num_vertices"],
                        num_frames=payload["num_frames"], options=options)
    missing = set(model.state_dict()) - set(payload["model"])
    legacy = payload["model_kind"] == "neuralbody" and bool(missing) and missing <= PRE_TEXTURE_KEYS
    if legacy:  # a run from before the reference-pose texture: rebuild the model it was trained as
        options.update(texture_cells=[], canonical_freqs=0)
        model = build_model(payload["model_kind"], num_vertices=payload["num_vertices"],
                            num_frames=payload["num_frames"], options=options)
    try:  # legacy: the unused reference buffers are absent
        model.load_state_dict(payload["model"], strict=not legacy)
    except RuntimeError as error:  # missing / unexpected keys, shape mismatches: the file does not fit its config
        raise InputError(path, f"does not match its model ({one_line(error)[:300]})", CHECKPOINT_FIX) from None
    model.to(device).eval()
    capture = read_capture(config.data, scale=config.scale)
    return LoadedRun(
        model=model,
        capture=capture,
        config=config,
        train_frames=list(config.train_frames),
        train_views=list(config.train_views),
        step=int(payload["step"]),
        device=device,
    )
