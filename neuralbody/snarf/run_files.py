"""A SNARF run folder: training one from a folder of posed meshes, and loading it back.

``RUN/checkpoint.pt`` holds plain values only (read with ``torch.load(weights_only=True)``
through :func:`neuralbody.training.checkpoint.load_checkpoint`)::

    format         "neuralbody.snarf/1"
    spec           the ModelSpec's values (model kind, network sizes, canonical box, skeleton)
    model          the model's state dict;  optimizer  Adam's state dict
    settings       the TrainSettings' values
    step, spent_s, last_loss, numpy_rng   where training stands
    data           the posed-mesh folder trained on (resolved path, as text)
    train_frames   the frame indices trained on
    body_model, body_model_path, shapes   the body model (name, file for SMPL) and the person's shape

:func:`train_run` reads the data (:mod:`neuralbody.snarf.posed_meshes`), poses the body model,
builds a new model (or resumes the folder's) and trains it (:mod:`neuralbody.snarf.training`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from neuralbody.body import load_body_model
from neuralbody.io.errors import InputError, one_line
from neuralbody.snarf.model_spec import ModelSpec, build_model, new_model
from neuralbody.snarf.posed_meshes import PosedMeshes, read_posed_meshes
from neuralbody.snarf.posed_occupancy import PosedOccupancy
from neuralbody.snarf.subject import PreparedFrame, Subject, check_frame, make_subject, prepare_frames
from neuralbody.snarf.training import TrainSettings, TrainState, make_optimizer, new_state, train_model
from neuralbody.training.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

FORMAT = "neuralbody.snarf/1"
CHECKPOINT_NAME = "checkpoint.pt"
RUN_KEYS = ("format", "spec", "model", "step", "data", "train_frames", "body_model", "body_model_path", "shapes")
RESUME_KEYS = (*RUN_KEYS, "optimizer", "settings", "spent_s", "numpy_rng", "last_loss")
RUN_FIX = "train the run again with `neuralbody snarf DATA --out RUN`"


@dataclasses.dataclass
class LoadedRun:
    """A trained run.

    Attributes:
        model: the model, in eval mode.
        spec: its :class:`ModelSpec`.
        subject: the person (body model and shape).
        payload: the checkpoint's other values (step, data, train_frames, settings...).
    """

    model: PosedOccupancy
    spec: ModelSpec
    subject: Subject
    payload: dict


def load_frames(data: PosedMeshes, subject: Subject, indices: list[int]) -> list[PreparedFrame]:
    """Frames ``indices`` of ``data`` read, checked against the subject and prepared."""
    frames = [data.load_frame(i) for i in indices]
    for frame in frames:
        check_frame(subject, frame, data.root)
    return prepare_frames(subject, frames)


def subject_of(data: PosedMeshes, first: int, body_model: str | None, body_model_path: str | None) -> Subject:
    """The person of frame ``first`` of ``data`` with the named body model (default: the data's, else Anny)."""
    name = body_model or data.body_model or "anny"
    body = load_body_model(name, model_path=body_model_path)
    return make_subject(body, data.load_frame(first).shapes)


def _model_from_payload(payload: dict, path: Path) -> tuple[PosedOccupancy, ModelSpec]:
    if payload.get("format") != FORMAT:
        raise InputError(path, f"not a SNARF run (format {payload.get('format')!r})", RUN_FIX)
    try:
        spec = ModelSpec.from_dict(payload["spec"])
        model = build_model(spec)
        model.load_state_dict(payload["model"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise InputError(path, f"does not describe a model ({one_line(error)[:300]})", RUN_FIX) from None
    return model, spec


def load_run(run_dir: str | Path) -> LoadedRun:
    """The run in ``run_dir`` (its model in eval mode, on the CPU)."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no SNARF run here; {RUN_FIX}")
    payload = load_checkpoint(path, device="cpu", required=RUN_KEYS)
    model, spec = _model_from_payload(payload, path)
    body = load_body_model(payload["body_model"], model_path=payload["body_model_path"])
    subject = make_subject(body, torch.tensor(payload["shapes"], dtype=torch.float32))
    if subject.body.pose_dim != spec.pose_dim or len(subject.parents) != spec.num_bones:
        raise InputError(path, f"was trained with another body model than {payload['body_model']!r}", RUN_FIX)
    return LoadedRun(model.eval(), spec, subject, payload)


def _payload(model, spec, optimizer, state: TrainState, settings: TrainSettings, data: PosedMeshes,
             frames: list[int], subject: Subject, body_model_path: str | None) -> dict:
    return {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "settings": settings.to_dict(),
        "step": state.step,
        "spent_s": state.spent_s,
        "last_loss": state.last_loss,
        "numpy_rng": state.rng.bit_generator.state,
        "data": str(Path(data.root).resolve()),
        "train_frames": list(frames),
        "body_model": subject.body.name,
        "body_model_path": body_model_path,
        "shapes": subject.shapes.tolist(),
    }


@dataclasses.dataclass
class TrainedRun:
    """What :func:`train_run` did: the run folder, the model kind and the final state."""

    run_dir: Path
    kind: str
    state: TrainState
    new_steps: int


def train_run(data_root: str | Path, run_dir: str | Path, *, kind: str = "forward",
              settings: TrainSettings = TrainSettings(), frames: list[int] | None = None,
              body_model: str | None = None, body_model_path: str | None = None, resume: bool = False,
              progress: bool = True) -> TrainedRun:
    """Train (or, with ``resume``, continue) a model on posed meshes into ``run_dir``.

    Args:
        data_root: the folder of posed meshes.
        run_dir: the run folder (created).
        kind: "forward" (SNARF) or "backward" (the baseline); a resumed run keeps its own.
        settings: how to train; a resumed run keeps its saved settings but takes this budget,
            clock and step cap.
        frames: training frame indices (default: the data's "train" split, else every frame);
            a resumed run keeps its own.
        body_model, body_model_path: the body model (default: the data's, else Anny) and, for
            SMPL, its model file; a resumed run keeps its own.
        resume: continue the run in ``run_dir``.
        progress: show a progress bar.
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_NAME
    data = read_posed_meshes(data_root)
    if path.exists() and not resume:
        raise ValueError(f"{run_dir} already holds a SNARF run; pass --resume to continue it or choose another --out")
    payload = load_checkpoint(path, device="cpu", required=RESUME_KEYS) if resume and path.exists() else None
    if payload is not None:
        model, spec = _model_from_payload(payload, path)
        saved = TrainSettings.from_dict(payload["settings"])
        settings = dataclasses.replace(saved, budget_s=settings.budget_s, clock=settings.clock,
                                       max_steps=settings.max_steps)
        frames, body_model, body_model_path = payload["train_frames"], payload["body_model"], payload["body_model_path"]
    else:
        split = data.splits.get("train")
        frames = frames if frames is not None else list(range(*split)) if split else list(range(data.num_frames))
    if not frames or any(not 0 <= f < data.num_frames for f in frames):
        raise InputError(data.root, f"training frames {frames[:8]} not within its {data.num_frames} frames",
                         "choose frames with --frames")
    subject = subject_of(data, frames[0], body_model, body_model_path)
    prepared = load_frames(data, subject, frames)
    if payload is None:
        torch.manual_seed(settings.seed)
        model, spec = new_model(subject, kind)
        optimizer, state = make_optimizer(model, settings), new_state(settings)
    else:
        optimizer, state = make_optimizer(model, settings), new_state(settings)
        optimizer.load_state_dict(payload["optimizer"])
        state.step, state.spent_s, state.last_loss = payload["step"], payload["spent_s"], payload["last_loss"]
        state.rng.bit_generator.state = payload["numpy_rng"]
        log.info("resumed %s at step %d (%.0f s spent)", run_dir, state.step, state.spent_s)
    run_dir.mkdir(parents=True, exist_ok=True)
    steps_before = state.step

    def save(current: TrainState) -> None:
        save_checkpoint(path, _payload(model, spec, optimizer, current, settings, data, frames, subject,
                                       body_model_path))

    log.info("training %s on %d frames of %s (%d points a step, budget %.0f s %s)", spec.kind, len(frames),
             data.root, settings.points_per_step, settings.budget_s, settings.clock)
    state = train_model(model, optimizer, state, subject, prepared, settings, save, progress=progress)
    return TrainedRun(run_dir, spec.kind, state, state.step - steps_before)
