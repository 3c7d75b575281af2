"""The corpus's posed meshes as scans: a clothed person in one pose, with the body model's shape and pose.

A scan is one frame of one person of a corpus (:mod:`neuralbody.data.corpus`, written by
``neuralbody synth-corpus``): each person's folder is a folder of posed meshes
(:mod:`neuralbody.snarf.posed_meshes`: ``gt_meshes/<n>.npz``, ``params/<n>.npy``), read with
SNARF's reader. :func:`corpus_scans` lists the scans of a split (``train``: the training
frames of the training people; ``heldout_people``: every frame of the people held out);
:func:`load_scan` reads one and moves its mesh to the frame's body frame
(:func:`~neuralbody.snarf.frame_pose.world_to_body`), where the bone transforms take the
person's canonical (rest) pose. When the mesh file also holds ``colours`` ((V, 3) uint8 RGB
albedo, what ``synth-corpus`` writes), the scan carries them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.corpus import CORPUS_INDEX, SPLITS
from neuralbody.io.errors import InputError
from neuralbody.snarf.frame_pose import world_to_body
from neuralbody.snarf.posed_meshes import MESH_DIR, read_posed_meshes

CORPUS_FIX = "give a corpus folder written by `neuralbody synth-corpus`"


@dataclasses.dataclass(frozen=True)
class ScanRef:
    """Where a scan is: the person's folder (relative to the corpus) and the frame index there."""

    subject: str
    frame: int


@dataclasses.dataclass
class Scan:
    """A posed mesh in its body frame with the body model's parameters.

    Attributes:
        vertices: (V, 3) float32 posed mesh, body frame, metres.
        faces: (F, 3) int64 triangles.
        poses: (P,) float32 the body model's pose, radians.
        shapes: (S,) float32 the body model's shape parameters.
        colours: (V, 3) float32 vertex albedo in [0, 1], or None when the mesh has no colours.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    poses: torch.Tensor
    shapes: torch.Tensor
    colours: torch.Tensor | None = None


def corpus_scans(corpus: str | Path, split: str) -> list[ScanRef]:
    """The scans of ``split`` ("train", "heldout_poses" or "heldout_people") of a corpus, in index order."""
    import json

    if split not in SPLITS:
        raise ValueError(f"corpus_scans: split must be one of {SPLITS}, got {split!r}")
    path = Path(corpus) / CORPUS_INDEX
    if not path.is_file():
        raise InputError(path, "not found (a corpus has an index)", CORPUS_FIX)
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        pairs = index["splits"][split]
        refs = [ScanRef(str(subject), int(frame)) for subject, frame in pairs]
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(path, f"not a corpus index ({type(error).__name__}: {error})", CORPUS_FIX) from None
    if any(Path(ref.subject).name != ref.subject or ref.subject in ("", ".", "..") for ref in refs):
        raise InputError(path, "names a subject outside the corpus", CORPUS_FIX)
    return refs


def load_scan(folder: str | Path, frame: int) -> Scan:
    """Frame ``frame`` (an index) of a folder of posed meshes, in its body frame."""
    data = read_posed_meshes(folder)
    if not 0 <= frame < data.num_frames:
        raise InputError(Path(folder), f"has {data.num_frames} frames, no frame {frame}",
                         f"give a frame in 0..{data.num_frames - 1}")
    posed = data.load_frame(frame)
    colours = read_vertex_colours(Path(folder) / MESH_DIR / f"{posed.number}.npz", len(posed.vertices))
    return Scan(world_to_body(posed.vertices.float(), posed.Rh, posed.Th), posed.faces.long(), posed.poses.float(),
                posed.shapes.float(), colours)


def read_vertex_colours(path: Path, count: int) -> torch.Tensor | None:
    """(count, 3) float32 colours in [0, 1] from the ``colours`` (count, 3) uint8 array of a mesh ``.npz``; None
    when it has none (read without pickles; InputError naming the file when they do not fit the vertices)."""
    with np.load(path, allow_pickle=False) as archive:
        if "colours" not in archive.files:
            return None
        colours = np.asarray(archive["colours"])
    if colours.shape != (count, 3) or colours.dtype != np.uint8:
        raise InputError(path, f"colours are {colours.dtype} {colours.shape}, not uint8 ({count}, 3) like the vertices",
                         "write colours as (V, 3) uint8 RGB, one per vertex, or leave them out")
    return torch.from_numpy(colours.astype(np.float32) / 255.0)
