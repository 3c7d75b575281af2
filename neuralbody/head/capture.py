"""The head-capture layout (written by ``neuralbody synth-head``) and its reader.

Close to the ZJU-MoCap layout of :mod:`neuralbody.data.capture`, with per-frame cameras
(the training camera moves) and the face model's parameters per frame::

    OUT/
      head.json                     format, resolution, camera names, the training camera,
                                    frame splits {train, test, strong}, the cameras rendered
                                    per split, bone names and parents, action labels, seed
      rig.npz                       the face model (the tracker's output for a real video):
                                    rest_vertices (V,3), faces (F,3), expression_basis (52,V,3),
                                    weights (V,4), rest_joints (4,3), eye_centres (2,3)
      cameras.npz                   K (N,C,3,3) pixels, R (N,C,3,3), T (N,C,3) world-to-camera
                                    (OpenCV axes, metres) for every frame N and camera C
      params/000000.npz             expression (52,) in [0,1], pose (4,3) axis-angle (radians),
                                    bone_transforms (4,4,4) canonical -> world, per frame
      images/cam00/000000.png       RGB, black background
      mask/cam00/000000.png         0 / 255
      depth/cam00/000000.npy        float32 camera z, metres, 0 = background
      animation/{train,test,strong}.npz   each split's parameters stacked, for animate-head

Frames are numbered through all splits (train first). Every file is read without running
code (``np.load(allow_pickle=False)``); a missing or malformed one raises
:class:`~neuralbody.io.errors.InputError` naming it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.cameras import Camera
from neuralbody.data.images import read_image, read_mask
from neuralbody.head.rig import BONES, NUM_ACTIONS, HeadRig
from neuralbody.io.errors import InputError

FORMAT = "neuralbody.head/1"
SPLITS = ("train", "test", "strong")
_RIG_KEYS = ("rest_vertices", "faces", "expression_basis", "weights", "rest_joints", "eye_centres")


@dataclasses.dataclass
class FrameParams:
    """The face model's parameters of one frame.

    Attributes:
        expression: (52,) facial actions.
        pose: (4, 3) axis-angle per bone, radians.
        bone_transforms: (4, 4, 4) canonical-to-world transforms of the four bones.
    """

    expression: np.ndarray
    pose: np.ndarray
    bone_transforms: np.ndarray

    def __post_init__(self) -> None:
        if (self.expression.shape != (NUM_ACTIONS,) or self.pose.shape != (len(BONES), 3)
                or self.bone_transforms.shape != (len(BONES), 4, 4)):
            raise ValueError(f"FrameParams: expression (52,), pose (4, 3), bone_transforms (4, 4, 4) needed, got "
                             f"{self.expression.shape}, {self.pose.shape}, {self.bone_transforms.shape}")


def frame_name(frame: int) -> str:
    return f"{frame:06d}"


def load_npz(path: Path, keys: tuple[str, ...], fix: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz file (no pickles), or an InputError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise InputError(path, f"lacks the arrays {missing}", fix)
            return {k: np.asarray(data[k]) for k in keys}
    except (OSError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(path, f"cannot be read as .npz ({error})", fix) from None


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    from neuralbody.io.atomic import atomic_path

    with atomic_path(path, keep_suffix=True) as tmp:
        np.savez(tmp, **arrays)


def rig_arrays(rig: HeadRig) -> dict[str, np.ndarray]:
    """rig.npz's arrays of a face model."""
    return {"rest_vertices": rig.rest_vertices.numpy(), "faces": rig.faces.numpy(),
            "expression_basis": rig.expression_basis.numpy(), "weights": rig.weights.numpy(),
            "rest_joints": rig.rest_joints.numpy(), "eye_centres": rig.eye_centres.numpy()}


@dataclasses.dataclass
class HeadCapture:
    """A head capture on disk (see the module docstring).

    Attributes:
        root: the capture folder.
        meta: head.json's contents.
        rig: the face model.
        K, R, T: (N, C, 3, 3), (N, C, 3, 3), (N, C, 3) cameras of every frame.
    """

    root: Path
    meta: dict
    rig: HeadRig
    K: np.ndarray
    R: np.ndarray
    T: np.ndarray

    @property
    def camera_names(self) -> list[str]:
        return list(self.meta["cameras"])

    def split(self, name: str) -> list[int]:
        if name not in SPLITS:
            raise ValueError(f"HeadCapture.split: one of {SPLITS}, got {name!r}")
        return [int(f) for f in self.meta["splits"][name]]

    def views(self, name: str) -> list[str]:
        return list(self.meta["views"][name])

    def camera(self, frame: int, name: str) -> Camera:
        c = self.camera_names.index(name)
        size = int(self.meta["resolution"])
        return Camera(K=self.K[frame, c], R=self.R[frame, c], T=self.T[frame, c], D=np.zeros(5), width=size,
                      height=size, name=name)

    def params(self, frame: int) -> FrameParams:
        path = self.root / "params" / f"{frame_name(frame)}.npz"
        fix = "rewrite the capture with `neuralbody synth-head`"
        data = load_npz(path, ("expression", "pose", "bone_transforms"), fix)
        try:
            return FrameParams(**{k: v.astype(np.float32) for k, v in data.items()})
        except ValueError as error:
            raise InputError(path, str(error), fix) from None

    def image(self, frame: int, name: str) -> np.ndarray:
        return read_image(self.root / "images" / name / f"{frame_name(frame)}.png")

    def mask(self, frame: int, name: str) -> np.ndarray:
        return read_mask(self.root / "mask" / name / f"{frame_name(frame)}.png")

    def depth(self, frame: int, name: str) -> np.ndarray:
        path = self.root / "depth" / name / f"{frame_name(frame)}.npy"
        try:
            return np.load(path, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as error:
            raise InputError(path, f"cannot be read ({error})", "rewrite the capture") from None


def read_rig_npz(path: Path, action_labels: list[str]) -> HeadRig:
    """The face model saved in an .npz by :func:`rig_arrays` (no pickles), or an InputError naming the file."""
    arrays = load_npz(path, _RIG_KEYS, "rewrite it with `neuralbody synth-head` (or train-head)")
    try:
        return HeadRig(rest_vertices=torch.from_numpy(arrays["rest_vertices"]).float(),
                       faces=torch.from_numpy(arrays["faces"]).long(),
                       expression_basis=torch.from_numpy(arrays["expression_basis"]).float(),
                       weights=torch.from_numpy(arrays["weights"]).float(),
                       rest_joints=torch.from_numpy(arrays["rest_joints"]).float(),
                       action_labels=list(action_labels),
                       eye_centres=torch.from_numpy(arrays["eye_centres"]).float())
    except (ValueError, RuntimeError) as error:
        raise InputError(path, f"holds a malformed face model ({error})", "rewrite it") from None


def _read_meta(root: Path) -> dict:
    path = root / "head.json"
    fix = "give the folder written by `neuralbody synth-head`"
    if not path.is_file():
        raise InputError(root, "has no head.json: not a head capture", fix)
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, f"is not valid JSON ({error})", fix) from None
    missing = [k for k in ("format", "resolution", "cameras", "splits", "views") if k not in meta]
    if missing or meta.get("format") != FORMAT:
        raise InputError(path, f"is not a {FORMAT} file (missing {missing} or format {meta.get('format')!r})", fix)
    return meta


def read_head_capture(root: str | os.PathLike) -> HeadCapture:
    """Read a head capture's metadata, face model and cameras (images load on demand)."""
    root = Path(root)
    meta = _read_meta(root)
    fix = "rewrite the capture with `neuralbody synth-head`"
    rig = read_rig_npz(root / "rig.npz", list(meta["action_labels"]))
    cams = load_npz(root / "cameras.npz", ("K", "R", "T"), fix)
    frames = sum(len(meta["splits"][s]) for s in SPLITS)
    count = len(meta["cameras"])
    if cams["K"].shape != (frames, count, 3, 3) or cams["T"].shape != (frames, count, 3):
        raise InputError(root / "cameras.npz", f"must hold K ({frames}, {count}, 3, 3) and T ({frames}, {count}, 3), got "
                         f"{cams['K'].shape}, {cams['T'].shape}", fix)
    return HeadCapture(root=root, meta=meta, rig=rig, K=cams["K"], R=cams["R"], T=cams["T"])
