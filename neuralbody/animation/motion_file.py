"""Motion files: a sequence of body-model poses in one ``.npz`` (what ``neuralbody animate`` plays).

Format (``numpy.savez``; read with ``allow_pickle=False``, so a file cannot run code)::

    poses       (T, P) float   axis-angle per joint, radians, root first (the body model's pose
                               vector: Anny P = 312, SMPL P = 72)
    Rh          (T, 3) float   global rotation, axis-angle, radians     (optional: zeros)
    Th          (T, 3) float   global translation, metres               (optional: zeros)
    body_model  ()     str     "anny" or "smpl"                         (optional: "anny")
    fps         ()     float   frames per second                        (optional: 10)

``x_world = R(Rh) x_body + Th`` as in ZJU-MoCap params. A motion carries no body shape: it is
played on the person of the run that animates it. :func:`write_motion_file` writes one (e.g.
a capture's fits, or a procedural motion, to edit elsewhere).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np

from neuralbody.io.atomic import atomic_write_bytes
from neuralbody.io.errors import InputError

DEFAULT_FPS = 10.0
MOTION_FIX = "write poses (T, P), Rh (T, 3), Th (T, 3) with numpy.savez (see docs/animation.md)"


@dataclasses.dataclass
class MotionClip:
    """Per-frame body-model parameters of a motion.

    Attributes:
        poses: (T, P) float32 axis-angle per joint, radians.
        Rh: (T, 3) float32 global rotation, axis-angle, radians.
        Th: (T, 3) float32 global translation, metres.
        body_model: which body model the poses drive ("anny", "smpl").
        fps: frames per second.
        name: where it came from (for messages and file names).
    """

    poses: np.ndarray
    Rh: np.ndarray
    Th: np.ndarray
    body_model: str = "anny"
    fps: float = DEFAULT_FPS
    name: str = "motion"

    def __post_init__(self) -> None:
        count = self.poses.shape[0] if self.poses.ndim == 2 else -1
        if count < 1 or self.Rh.shape != (count, 3) or self.Th.shape != (count, 3):
            raise ValueError(f"MotionClip: poses must be (T, P) with T >= 1 and Rh, Th (T, 3); got "
                             f"{self.poses.shape}, {self.Rh.shape}, {self.Th.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


def _array(data, key: str, path: Path, shape: tuple, default=None) -> np.ndarray:
    """data[key] as float32 of ``shape`` (-1: any length), finite; ``default`` when absent (None: required)."""
    if key not in data:
        if default is None:
            raise InputError(path, f"no {key!r} array", MOTION_FIX)
        return default
    value = data[key]
    if value.dtype.kind not in "fiu" or value.ndim != len(shape) or any(
            want not in (-1, got) for want, got in zip(shape, value.shape)):
        want = "(" + ", ".join("T" if n == -1 and i == 0 else ("P" if n == -1 else str(n))
                               for i, n in enumerate(shape)) + ")"
        raise InputError(path, f"{key!r} must be a {want} array of numbers, got {value.dtype} {value.shape}", MOTION_FIX)
    if not np.all(np.isfinite(value)):
        raise InputError(path, f"{key!r} contains NaN or inf", MOTION_FIX)
    return value.astype(np.float32)


def read_motion_file(path: str | Path) -> MotionClip:
    """A :class:`MotionClip` from a motion file (module docstring); InputError naming the file when it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            poses = _array(data, "poses", path, (-1, -1))
            count = poses.shape[0]
            zeros = np.zeros((count, 3), dtype=np.float32)
            rh = _array(data, "Rh", path, (count, 3), zeros)
            th = _array(data, "Th", path, (count, 3), zeros)
            body_model = str(data["body_model"]) if "body_model" in data else "anny"
            fps = float(_array(data, "fps", path, (), np.float32(DEFAULT_FPS)))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        if isinstance(error, (InputError, FileNotFoundError)):
            raise
        raise InputError(path, f"is not a readable motion file ({type(error).__name__})", MOTION_FIX) from None
    if count < 1:
        raise InputError(path, "holds no frames", MOTION_FIX)
    if not fps > 0:
        raise InputError(path, f"fps must be positive, got {fps}", MOTION_FIX)
    return MotionClip(poses, rh, th, body_model=body_model.lower(), fps=fps, name=path.stem)


def write_motion_file(path: str | Path, clip: MotionClip) -> Path:
    """Write ``clip`` as a motion file (atomically); returns the path."""
    buffer = io.BytesIO()
    np.savez(buffer, poses=clip.poses.astype(np.float32), Rh=clip.Rh.astype(np.float32),
             Th=clip.Th.astype(np.float32), body_model=np.array(clip.body_model), fps=np.float32(clip.fps))
    return atomic_write_bytes(path, buffer.getvalue())
