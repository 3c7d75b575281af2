"""Scoring a trained run on frames of a folder of posed meshes (:mod:`neuralbody.snarf.metrics`).

The frames must show the run's person (the same shape parameters); their poses may be
anything: held-out frames of the training motion (in distribution) or another motion (out
of distribution). :func:`default_frames` picks what is scored when the caller does not say.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from neuralbody.io.progress import progress_bar
from neuralbody.snarf.metrics import EvalSettings, FrameScores, score_frame
from neuralbody.snarf.posed_meshes import PosedMeshes, read_posed_meshes
from neuralbody.snarf.run_files import LoadedRun, load_frames


@dataclasses.dataclass
class EvalResult:
    """Scores of a run on one folder.

    Attributes:
        data: the folder scored on.
        frames: per-frame scores.
    """

    data: str
    frames: list[FrameScores]

    def mean(self, name: str) -> float:
        """The mean over frames of one :class:`FrameScores` field (inf if any is inf)."""
        values = [getattr(f, name) for f in self.frames]
        return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.inf

    def to_dict(self) -> dict:
        """Plain values for JSON; an infinite Chamfer distance (no surface extracted) becomes None."""

        def finite(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {
            "data": self.data,
            "mean": {name: finite(self.mean(name)) for name in ("iou", "near_surface_iou", "chamfer_l2")},
            "frames": [{k: finite(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(f).items()}
                       for f in self.frames],
        }


def default_frames(data: PosedMeshes, trained_on: str, count: int) -> list[int]:
    """Up to ``count`` evenly spread frame indices to score.

    On the folder the run was trained on (``trained_on``, a resolved path): its "novel_pose"
    split (frames held out from training), else every frame; on any other folder: every frame.
    """
    if count < 1:
        raise ValueError(f"default_frames: count must be >= 1, got {count}")
    held_out = data.splits.get("novel_pose")
    same = str(Path(data.root).resolve()) == trained_on
    pool = list(range(*held_out)) if same and held_out and held_out[1] > held_out[0] else list(range(data.num_frames))
    if len(pool) <= count:
        return pool
    return [pool[int(i)] for i in np.linspace(0, len(pool) - 1, count).round()]


def evaluate_run(run: LoadedRun, data_root: str | Path, frames: list[int] | None = None, *,
                 settings: EvalSettings = EvalSettings(), max_frames: int = 5, progress: bool = True) -> EvalResult:
    """Scores of ``run`` on ``frames`` of ``data_root`` (default: :func:`default_frames`, ``max_frames`` of them)."""
    data = read_posed_meshes(data_root)
    if frames is None:
        frames = default_frames(data, run.payload["data"], max_frames)
    prepared = load_frames(data, run.subject, frames)
    scores = [score_frame(run.model, frame, settings)
              for frame in progress_bar(prepared, enabled=progress, desc=f"scoring {run.spec.kind}", unit="frame")]
    return EvalResult(str(data.root), scores)
