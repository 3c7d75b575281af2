"""Saving and loading training runs.

A run folder holds ``config.json`` (the :class:`TrainConfig`, human-readable) and
``checkpoint.pt`` (model and optimiser state, step, elapsed seconds, random states, model
construction arguments). Both are written atomically (:mod:`neuralbody.io.atomic`: a temporary
file in the same folder moved into place), so a crash mid-write never leaves a partial file.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from neuralbody.io.atomic import atomic_path
from neuralbody.training.config import TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write ``payload`` with ``torch.save`` atomically (into :func:`neuralbody.io.atomic.atomic_path`'s temporary)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, device=None) -> dict:
    """Read a checkpoint payload (tensors mapped to ``device``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; train first (`neuralbody train DATA --out RUN`)")
    return torch.load(path, map_location=device, weights_only=False)


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
    payload = load_checkpoint(run_dir / CHECKPOINT_NAME, device=device)
    options = dict(payload["model_options"] or {})
    model = build_model(payload["model_kind"], num_vertices=payload["num_vertices"],
                        num_frames=payload["num_frames"], options=options)
    missing = set(model.state_dict()) - set(payload["model"])
    legacy = payload["model_kind"] == "neuralbody" and bool(missing) and missing <= PRE_TEXTURE_KEYS
    if legacy:  # a run from before the reference-pose texture: rebuild the model it was trained as
        options.update(texture_cells=[], canonical_freqs=0)
        model = build_model(payload["model_kind"], num_vertices=payload["num_vertices"],
                            num_frames=payload["num_frames"], options=options)
    model.load_state_dict(payload["model"], strict=not legacy)  # legacy: the unused reference buffers are absent
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
