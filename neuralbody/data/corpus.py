"""A multi-person corpus: one capture in ZJU-MoCap layout a person, plus an index with the splits.

For methods trained on many people (PIFu, the multi-view multi-scale implicit function,
KeypointNeRF). On disk (``neuralbody synth-corpus`` writes it; paths relative to the corpus)::

    corpus.json                    the index (below), written last and atomically: a corpus is
                                   complete when it exists
    <subject>/                     a capture (:func:`neuralbody.data.capture.read_capture` reads it):
                                   annots.npy, images, mask_cihp/, depth/, params/, vertices/ (the
                                   body model, unclothed), neuralbody.json
    <subject>/gt_meshes/{i}.npz    the clothed surface of frame i: vertices (N, 3) float32 metres,
                                   faces (M, 3) int32, colours (N, 3) uint8 RGB albedo (corpora
                                   written before colours have none)
    <subject>/occupancy/{i}.npz    points (N, 3) float32 world metres, inside (N,) bool,
                                   box_min (3,), box_max (3,) float32 (the box of the uniform points)
    <subject>/joints/{i}.npy       (J, 3) float32 posed joints (the body model's bone heads), world metres

The index::

    {"format": "neuralbody.corpus/1",
     "body_model": "anny", "joint_names": [...J names],
     "config": {...how it was made},
     "subjects": [{"id": "s0000", "path": "s0000", "split": "train" | "heldout_people",
                   "frame_splits": ["train", "train", "heldout_poses"], ...description}, ...],
     "splits": {"train": [["s0000", 0], ...], "heldout_poses": [...], "heldout_people": [...]}}

``train`` holds the training frames of the training people, ``heldout_poses`` their frames in
poses of another motion, ``heldout_people`` every frame of the people no model trains on. Images
and samples are read from disk when asked for (:meth:`Corpus.load_occupancy`, the captures'
``load_image``), so a corpus larger than memory streams.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from neuralbody.data.capture import Capture, read_capture
from neuralbody.data.writer import save_npy, save_npz_reproducible
from neuralbody.io.atomic import atomic_write_text

CORPUS_INDEX = "corpus.json"
CORPUS_FORMAT = "neuralbody.corpus/1"
SPLITS = ("train", "heldout_poses", "heldout_people")
OCCUPANCY_DIR = "occupancy"
JOINTS_DIR = "joints"
GT_MESH_DIR = "gt_meshes"


@dataclasses.dataclass(frozen=True)
class CorpusSample:
    """One frame of one person: ``subject`` id and ``frame`` index in its capture."""

    subject: str
    frame: int


@dataclasses.dataclass
class OccupancyArrays:
    """Labelled points of one frame: points (N, 3) float32 world metres, inside (N,) bool,
    box_min / box_max (3,) float32 metres."""

    points: np.ndarray
    inside: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray


def occupancy_path(subject_root: Path, frame: int) -> Path:
    return Path(subject_root) / OCCUPANCY_DIR / f"{frame}.npz"


def joints_path(subject_root: Path, frame: int) -> Path:
    return Path(subject_root) / JOINTS_DIR / f"{frame}.npy"


def gt_mesh_path(subject_root: Path, frame: int) -> Path:
    return Path(subject_root) / GT_MESH_DIR / f"{frame}.npz"


def save_frame_extras(subject_root: Path, frame: int, *, occupancy: OccupancyArrays, joints: np.ndarray) -> None:
    """Write a frame's occupancy samples and joints (reproducible bytes)."""
    save_npz_reproducible(
        occupancy_path(subject_root, frame),
        points=np.asarray(occupancy.points, dtype=np.float32),
        inside=np.asarray(occupancy.inside, dtype=bool),
        box_min=np.asarray(occupancy.box_min, dtype=np.float32),
        box_max=np.asarray(occupancy.box_max, dtype=np.float32),
    )
    save_npy(joints_path(subject_root, frame), np.asarray(joints, dtype=np.float32))


def write_corpus_index(root: Path, index: dict) -> Path:
    """Write ``corpus.json`` atomically (sorted keys, so equal indices give equal bytes)."""
    document = dict(index, format=CORPUS_FORMAT)
    return atomic_write_text(Path(root) / CORPUS_INDEX, json.dumps(document, indent=1, sort_keys=True) + "\n")


def load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` (no pickles); errors name the file and what is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; regenerate the corpus (neuralbody synth-corpus)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npz ({error}); regenerate the corpus") from error
    with archive:
        missing = [key for key in keys if key not in archive]
        if missing:
            raise ValueError(f"{path}: lacks {missing}; regenerate the corpus (neuralbody synth-corpus)")
        return {key: archive[key] for key in keys}


class Corpus:
    """A corpus on disk (build it with :func:`read_corpus`); captures are read on first use and kept.

    Attributes:
        root: the corpus folder.
        index: the parsed ``corpus.json``.
        subjects: subject id -> its index entry.
    """

    def __init__(self, root: Path, index: dict) -> None:
        self.root = Path(root)
        self.index = index
        self.subjects = {entry["id"]: entry for entry in index["subjects"]}
        self._splits = {name: [CorpusSample(str(s), int(f)) for s, f in index["splits"].get(name, [])] for name in SPLITS}
        self._captures: dict[str, Capture] = {}

    def __repr__(self) -> str:
        counts = ", ".join(f"{name} {len(samples)}" for name, samples in self._splits.items())
        return f"Corpus({str(self.root)!r}, {len(self.subjects)} people; {counts})"

    def samples(self, split: str) -> list[CorpusSample]:
        """The frames of a split (one of :data:`SPLITS`)."""
        if split not in SPLITS:
            raise ValueError(f"unknown corpus split {split!r}; choose one of {SPLITS}")
        return list(self._splits[split])

    def subject_root(self, subject: str) -> Path:
        if subject not in self.subjects:
            raise ValueError(f"{self.root / CORPUS_INDEX}: no subject {subject!r}")
        return self.root / self.subjects[subject]["path"]

    def capture(self, subject: str) -> Capture:
        """The subject's capture (read once, then kept)."""
        if subject not in self._captures:
            self._captures[subject] = read_capture(self.subject_root(subject))
        return self._captures[subject]

    def load_occupancy(self, sample: CorpusSample) -> OccupancyArrays:
        path = occupancy_path(self.subject_root(sample.subject), sample.frame)
        arrays = load_npz(path, ("points", "inside", "box_min", "box_max"))
        points, inside = arrays["points"], arrays["inside"]
        if points.ndim != 2 or points.shape[1] != 3 or inside.shape != points.shape[:1]:
            raise ValueError(f"{path}: points must be (N, 3) and inside (N,), got {points.shape} and {inside.shape}")
        return OccupancyArrays(points.astype(np.float32), inside.astype(bool), arrays["box_min"], arrays["box_max"])

    def load_joints(self, sample: CorpusSample) -> np.ndarray:
        """(J, 3) float32 posed joints, world metres."""
        path = joints_path(self.subject_root(sample.subject), sample.frame)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; regenerate the corpus (neuralbody synth-corpus)")
        joints = np.load(path, allow_pickle=False)
        if joints.ndim != 2 or joints.shape[1] != 3:
            raise ValueError(f"{path}: joints must be (J, 3) metres, got {joints.shape}")
        return joints.astype(np.float32)

    def load_gt_mesh(self, sample: CorpusSample) -> tuple[np.ndarray, np.ndarray]:
        """The clothed surface: vertices (N, 3) float64 metres, faces (M, 3) int64."""
        arrays = load_npz(gt_mesh_path(self.subject_root(sample.subject), sample.frame), ("vertices", "faces"))
        return arrays["vertices"].astype(np.float64), arrays["faces"].astype(np.int64)


def _check_index(index, path: Path) -> None:
    if not isinstance(index, dict) or index.get("format") != CORPUS_FORMAT:
        raise ValueError(f"{path}: not a neuralbody corpus index (format {CORPUS_FORMAT!r}); "
                         "make one with neuralbody synth-corpus")  # fmt: skip
    subjects = index.get("subjects")
    if not isinstance(subjects, list) or not all(isinstance(s, dict) and "id" in s and "path" in s for s in subjects):
        raise ValueError(f"{path}: 'subjects' must be a list of objects with 'id' and 'path'")
    frames = {s["id"]: len(s.get("frame_splits", [])) for s in subjects}
    splits = index.get("splits")
    if not isinstance(splits, dict) or set(splits) - set(SPLITS):
        raise ValueError(f"{path}: 'splits' must map some of {SPLITS} to lists of [subject, frame]")
    for name, samples in splits.items():
        for item in samples:
            ok = isinstance(item, list) and len(item) == 2 and item[0] in frames and isinstance(item[1], int)
            if not ok or not 0 <= item[1] < frames[item[0]]:
                raise ValueError(f"{path}: split {name!r} lists {item!r}, not a [subject, frame] of the corpus")
    for subject in subjects:
        if Path(subject["path"]).is_absolute() or ".." in Path(subject["path"]).parts:
            raise ValueError(f"{path}: subject path {subject['path']!r} must lie inside the corpus folder")


def read_corpus(root) -> Corpus:
    """Read and check ``root/corpus.json``; errors name the file and the fix."""
    root = Path(root)
    path = root / CORPUS_INDEX
    if not path.is_file():
        raise FileNotFoundError(f"not a corpus folder: {path} not found (make one with neuralbody synth-corpus)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); regenerate the corpus") from error
    _check_index(index, path)
    return Corpus(root, index)
