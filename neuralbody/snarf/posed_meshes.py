"""Reading a folder of posed meshes with their body poses (what ``neuralbody synth`` writes).

On disk (paths relative to the folder; ``<n>`` a frame number, any non-negative integer)::

    gt_meshes/<n>.npz     vertices (V, 3) float, world, metres; faces (F, 3) int, outward winding
                          (closed meshes: inside-ness is decided by winding number)
    params/<n>.npy        np.save of a dict: poses (1, P) or (P,) axis-angle radians of the body
                          model's joints, Rh (1, 3) global rotation, axis-angle radians, Th (1, 3)
                          global translation, metres, shapes (1, S) the body model's shape
    neuralbody.json       optional: {"body_model": "anny" | "smpl",
                                     "frames": {"train": [start, stop], "novel_pose": [start, stop]}}

The posed mesh of frame n must be the person in the pose of ``params/<n>.npy``: the body
model posed with ``poses``, ``shapes``, ``Rh``, ``Th`` (``x_world = R(Rh) x_body + Th``) gives
its skeleton, and the mesh itself can be anything of that person (a scan, clothing, another
topology). Frames are the ``gt_meshes`` files in numeric order; frame *index* i is the i-th.

Files are untrusted: ``.npz`` files are read without pickles, ``params`` through
:func:`neuralbody.io.safe_load.load_npy_object`; problems raise
:class:`~neuralbody.io.errors.InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import torch

from neuralbody.data import meshes
from neuralbody.io.errors import InputError, one_line
from neuralbody.io.safe_load import load_npy_object

MESH_DIR = "gt_meshes"
PARAMS_DIR = "params"
META_NAME = "neuralbody.json"
LAYOUT_FIX = "write gt_meshes/<n>.npz (vertices, faces) and params/<n>.npy (poses, Rh, Th, shapes) per frame"
PARAM_KEYS = ("poses", "Rh", "Th", "shapes")


@dataclasses.dataclass
class PosedMeshFrame:
    """One frame: the posed mesh and the body parameters.

    Attributes:
        number: the frame's number n on disk.
        vertices: (V, 3) float32 posed mesh vertices, world, metres.
        faces: (F, 3) int64 triangles.
        poses: (P,) float32 axis-angle per joint, radians.
        Rh: (3,) float32 global rotation, axis-angle, radians.
        Th: (3,) float32 global translation, metres.
        shapes: (S,) float32 shape parameters.
    """

    number: int
    vertices: torch.Tensor
    faces: torch.Tensor
    poses: torch.Tensor
    Rh: torch.Tensor
    Th: torch.Tensor
    shapes: torch.Tensor


@dataclasses.dataclass
class PosedMeshes:
    """A folder of posed meshes (module docstring).

    Attributes:
        root: the folder.
        numbers: frame numbers in order (frame index i has number ``numbers[i]``).
        body_model: the body model named in ``neuralbody.json``, or None.
        splits: named frame-index ranges ``(start, stop)`` from ``neuralbody.json`` (e.g. "train").
    """

    root: Path
    numbers: list[int]
    body_model: str | None
    splits: dict[str, tuple[int, int]]

    @property
    def num_frames(self) -> int:
        return len(self.numbers)

    def load_frame(self, index: int) -> PosedMeshFrame:
        """Frame ``index`` (0 .. num_frames - 1) read and checked."""
        if not 0 <= index < self.num_frames:
            raise ValueError(f"{self.root}: frame index {index} outside 0..{self.num_frames - 1}")
        number = self.numbers[index]
        vertices, faces = read_mesh_npz(self.root / MESH_DIR / f"{number}.npz")
        params = read_params(self.root / PARAMS_DIR / f"{number}.npy")
        return PosedMeshFrame(number, torch.from_numpy(vertices), torch.from_numpy(faces), *params)


def read_mesh_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float32 metres, faces (F, 3) int64) of a posed mesh (:func:`neuralbody.data.meshes.read_mesh_npz`)."""
    vertices, faces = meshes.read_mesh_npz(path, fix=LAYOUT_FIX)
    return vertices.astype(np.float32), faces


def read_params(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(poses (P,), Rh (3,), Th (3,), shapes (S,)) float32 of a ``params/<n>.npy`` dict, checked."""
    if not path.is_file():
        raise InputError(path, "not found (every posed mesh needs its body parameters)", LAYOUT_FIX)
    value = load_npy_object(path)
    if not isinstance(value, dict):
        raise InputError(path, f"expected np.save of a dict, got {type(value).__name__}", LAYOUT_FIX)
    missing = [key for key in PARAM_KEYS if key not in value]
    if missing:
        raise InputError(path, f"lacks {', '.join(missing)} (keys found: {', '.join(map(str, value)) or 'none'})",
                         LAYOUT_FIX)
    arrays = []
    for key in PARAM_KEYS:
        try:
            array = np.asarray(value[key])
        except ValueError:  # ragged lists
            raise InputError(path, f"{key} is not an array", LAYOUT_FIX) from None
        if array.dtype.kind not in "fiu" or array.size == 0 or not np.isfinite(array).all():
            raise InputError(path, f"{key} must be finite numbers, got {array.dtype} {array.shape}", LAYOUT_FIX)
        if key in ("Rh", "Th") and array.size != 3:
            raise InputError(path, f"{key} must hold 3 numbers, got {array.size}", LAYOUT_FIX)
        arrays.append(torch.from_numpy(array.reshape(-1).astype(np.float32)))
    return tuple(arrays)


def _read_meta(root: Path) -> tuple[str | None, dict[str, tuple[int, int]]]:
    path = root / META_NAME
    if not path.is_file():
        return None, {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, f"not readable JSON ({one_line(error)})", "fix or delete the file") from None
    if not isinstance(meta, dict):
        raise InputError(path, "must hold a JSON object", "fix or delete the file")
    body = meta.get("body_model")
    if body is not None and not isinstance(body, str):
        raise InputError(path, f"body_model must be a name, got {body!r}", "write e.g. \"anny\"")
    frames = meta.get("frames") or {}
    if not isinstance(frames, dict):
        raise InputError(path, f"frames must map split names to [start, stop], got {frames!r}", "fix or delete it")
    splits = {}
    for name, span in frames.items():
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)):
            raise InputError(path, f"frames.{name} must be [start, stop], got {span!r}", "fix or delete it")
        splits[str(name)] = (span[0], span[1])
    return body, splits


def read_posed_meshes(root: str | Path) -> PosedMeshes:
    """The folder's frames (numbers of ``gt_meshes/<n>.npz``), body model name and splits (files read lazily)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of posed meshes")
    folder = root / MESH_DIR
    numbers = sorted(int(p.stem) for p in folder.glob("*.npz") if re.fullmatch(r"\d+", p.stem)) if folder.is_dir() else []
    if not numbers:
        raise InputError(folder, "holds no posed meshes (<n>.npz)", LAYOUT_FIX)
    body, splits = _read_meta(root)
    for name, (start, stop) in splits.items():
        if not 0 <= start <= stop <= len(numbers):
            raise InputError(root / META_NAME, f"frames.{name} = [{start}, {stop}] outside the {len(numbers)} frames",
                             "fix or delete it")
    return PosedMeshes(root, numbers, body, splits)
