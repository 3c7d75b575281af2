"""Where a new motion comes from, and the posed bodies it gives a trained run.

A motion source (``neuralbody animate --motion SRC``) is one of:

* a procedural motion by name (:data:`neuralbody.synth.motion.MOTIONS`), made for the run's
  person (their shape) by :func:`neuralbody.synth.motion.make_motion`;
* a motion file (``.npz``, :mod:`neuralbody.animation.motion_file`);
* a capture folder in ZJU-MoCap layout (``annots.npy``): its ``params/`` (and ``vertices/``),
  e.g. another capture of the same person;
* a ``params/`` folder (``{n}.npy`` dicts with poses, Rh, Th, as ZJU-MoCap stores them) or a
  ``vertices/`` folder (``{n}.npy`` posed vertices, world, metres), frames in number order.

:func:`posed_bodies` turns it into one :class:`~neuralbody.body.frame_body.FrameBody` per
frame: poses are posed with the run's body model and shape (vertices for the occupancy and
the box, and for Neural Body, which reads vertices only); a source's own vertices are used
as they are. A vertices-only source has no poses: it animates Neural Body runs only.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import torch

from neuralbody.animation.motion_file import MotionClip, read_motion_file
from neuralbody.body.frame_body import BodyPose, FrameBody
from neuralbody.io.errors import InputError
from neuralbody.io.safe_load import load_npy, load_npy_object

SOURCE_FIX = ("pass a procedural motion name, a motion file (.npz), a capture folder, or a params/ or "
              "vertices/ folder")


@dataclasses.dataclass
class MotionSource:
    """A motion to play: poses, vertices, or both (T frames).

    Attributes:
        name: for messages and file names.
        clip: the body-model parameters (None for a vertices-only source).
        vertices: (T, V, 3) posed vertices, world, metres, when the source has them (else None).
        capture: the source capture when ``SRC`` is one (its cameras and images), else None.
        placed: whether the motion stands where it was recorded (capture fits) rather than at
            its own origin (procedural motions, motion files).
        frames: which frames of the source these are (its capture's frame indices), None: all.
    """

    name: str
    clip: MotionClip | None
    vertices: np.ndarray | None = None
    capture: object = None
    placed: bool = True
    frames: list[int] | None = None

    def select(self, frames: list[int]) -> "MotionSource":
        """The source restricted to ``frames`` (indices into its frames, in the order given)."""
        clip = self.clip
        if clip is not None:
            clip = dataclasses.replace(clip, poses=clip.poses[frames], Rh=clip.Rh[frames], Th=clip.Th[frames])
        vertices = None if self.vertices is None else self.vertices[frames]
        chosen = frames if self.frames is None else [self.frames[f] for f in frames]
        return dataclasses.replace(self, clip=clip, vertices=vertices, frames=chosen)

    @property
    def num_frames(self) -> int:
        return self.clip.num_frames if self.clip is not None else int(self.vertices.shape[0])


def _numbered_files(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.glob("*.npy") if re.fullmatch(r"\d+", p.stem)), key=lambda p: int(p.stem))
    if not files:
        raise InputError(folder, "holds no numbered .npy files (0.npy, 1.npy, ...)", SOURCE_FIX)
    return files


def _clip_from_params(params: list[dict], paths: list[Path], body_model: str | None, name: str) -> MotionClip:
    """A clip from per-frame params dicts (poses, Rh, Th), checked per file."""
    poses, rh, th = [], [], []
    for path, value in zip(paths, params):
        if not isinstance(value, dict) or any(key not in value for key in ("poses", "Rh", "Th")):
            raise InputError(path, "expected a dict with 'poses', 'Rh' and 'Th'", SOURCE_FIX)
        arrays = [np.asarray(value[key]) for key in ("poses", "Rh", "Th")]
        if any(a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)) for a in arrays) or arrays[1].size != 3 or (
                arrays[2].size != 3):
            raise InputError(path, "poses, Rh (3) and Th (3) must be finite numbers", SOURCE_FIX)
        poses.append(arrays[0].reshape(-1))
        rh.append(arrays[1].reshape(3))
        th.append(arrays[2].reshape(3))
    if len({p.size for p in poses}) != 1:
        raise InputError(paths[0].parent, f"frames have poses of different lengths {sorted({p.size for p in poses})}",
                         "every frame must use one body model")
    size = poses[0].size
    name_model = body_model or ("smpl" if size == 72 else "anny")
    return MotionClip(np.stack(poses).astype(np.float32), np.stack(rh).astype(np.float32),
                      np.stack(th).astype(np.float32), body_model=name_model, name=name)


def _from_capture(root: Path) -> MotionSource:
    from neuralbody.data.capture import read_capture

    capture = read_capture(root)
    chosen = list(range(capture.num_frames))
    clip = None
    if capture.has_params:
        params = [capture.load_params(f) for f in chosen]
        clip = _clip_from_params(params, [capture.params_path(f) for f in chosen], capture.meta.get("body_model"),
                                 root.name)
        if isinstance(capture.meta.get("fps"), (int, float)) and capture.meta["fps"] > 0:
            clip.fps = float(capture.meta["fps"])
    vertices = np.stack([capture.load_vertices(f) for f in chosen]) if capture.has_vertices else None
    if clip is None and vertices is None:
        raise InputError(root, "the capture has neither params/ nor vertices/", SOURCE_FIX)
    return MotionSource(root.name, clip, vertices, capture=capture, placed=True, frames=chosen)


def load_motion_source(src: str) -> MotionSource | str:
    """The motion of ``src`` (motion name, motion file, capture folder, params/ or vertices/ folder;
    see the module docstring); a procedural motion's name is returned as is (it is made for the
    run's person by :func:`procedural_source`)."""
    from neuralbody.synth.motion import MOTIONS

    path = Path(src)
    if not path.exists():
        if src in MOTIONS:
            return src
        raise InputError(f"--motion {src}", f"is neither a file or folder nor a procedural motion ({', '.join(MOTIONS)})",
                         SOURCE_FIX)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise InputError(path, "is not a motion file (.npz)", SOURCE_FIX)
        return MotionSource(path.stem, read_motion_file(path), placed=False)
    if (path / "annots.npy").is_file():
        return _from_capture(path)
    files = _numbered_files(path)
    if isinstance(load_npy_object(files[0]), dict):
        clip = _clip_from_params([load_npy_object(f) for f in files], files, None, path.parent.name or path.name)
        return MotionSource(clip.name, clip, placed=True)
    vertices = [load_npy(f) for f in files]
    if any(v.ndim != 2 or v.shape[1] != 3 or v.dtype.kind not in "fiu" or v.shape != vertices[0].shape
           for v in vertices):
        raise InputError(path, "vertices files must all be (V, 3) arrays of one V", SOURCE_FIX)
    return MotionSource(path.parent.name or path.name, None, np.stack(vertices).astype(np.float32), placed=True)


def procedural_source(name: str, body_model, shapes: torch.Tensor | None, *, num_frames: int, seed: int) -> MotionSource:
    """A procedural motion for the person of ``shapes`` (S,) on ``body_model``, at its own origin."""
    from neuralbody.synth.motion import FPS, make_motion

    motion = make_motion(name, body=body_model, num_frames=num_frames, seed=seed, shapes=shapes)
    clip = MotionClip(motion.poses.numpy(), motion.Rh.numpy(), motion.Th.numpy(), body_model=body_model.name,
                      fps=FPS, name=name)
    return MotionSource(name, clip, placed=False)


def place_at(source: MotionSource, anchor: torch.Tensor) -> MotionSource:
    """The source moved (translation only) so its first frame's Th is ``anchor`` (3,) metres, when it
    is not already placed (procedural motions and motion files start at their own origin)."""
    if source.placed or source.clip is None:
        return source
    offset = anchor.detach().cpu().numpy().reshape(3).astype(np.float32) - source.clip.Th[0]
    clip = dataclasses.replace(source.clip, Th=source.clip.Th + offset)
    return dataclasses.replace(source, clip=clip, placed=True)


def posed_bodies(source: MotionSource, *, body_model=None, shapes: torch.Tensor | None = None,
                 needs_pose: bool, batch: int = 16) -> list[FrameBody]:
    """One FrameBody per frame of ``source`` (see the module docstring).

    Args:
        source: the motion.
        body_model: the run's body model (needed to pose a clip without vertices); its name and
            pose size must match the clip's.
        shapes: (S,) the run's person (None: the body model's mean shape).
        needs_pose: the model is posed by the body-model pose (the canonical avatar): a source
            without poses is refused.
        batch: frames posed at once.
    """
    clip = source.clip
    if clip is None and needs_pose:
        raise InputError(f"--motion {source.name}", "has vertices only, but this run's model (the canonical avatar) is "
                         "posed by body-model poses", "give a params/ folder, a capture with params/, a motion file "
                         "or a procedural motion")  # fmt: skip
    if clip is None:
        return [FrameBody(torch.from_numpy(v), torch.zeros(3), torch.from_numpy(v.mean(axis=0))) for v in source.vertices]
    vertices = source.vertices
    if vertices is None:
        if body_model is None:
            raise ValueError("posed_bodies: a clip without vertices needs the body model")
        vertices = _pose(clip, body_model, shapes, batch)
    if body_model is not None and clip.poses.shape[1] != body_model.pose_dim:
        raise InputError(f"--motion {source.name}", f"has {clip.poses.shape[1]} pose values per frame ({clip.body_model}), "
                         f"the run's body model {body_model.name} takes {body_model.pose_dim}",
                         "animate with motions of the run's body model")  # fmt: skip
    bodies = []
    for frame in range(clip.num_frames):
        pose = BodyPose(clip.body_model, torch.from_numpy(clip.poses[frame]), shapes)
        bodies.append(FrameBody(torch.from_numpy(np.ascontiguousarray(vertices[frame])),
                                torch.from_numpy(clip.Rh[frame]), torch.from_numpy(clip.Th[frame]), pose))
    return bodies


def _pose(clip: MotionClip, body_model, shapes: torch.Tensor | None, batch: int) -> np.ndarray:
    """(T, V, 3) world vertices of a clip on the body model with ``shapes`` (S,)."""
    if clip.body_model != body_model.name:
        raise InputError(f"--motion {clip.name}", f"drives the {clip.body_model} body model, the run's is {body_model.name}",
                         "animate with motions of the run's body model")  # fmt: skip
    if clip.poses.shape[1] != body_model.pose_dim:
        raise InputError(f"--motion {clip.name}", f"has {clip.poses.shape[1]} pose values per frame, {body_model.name} "
                         f"takes {body_model.pose_dim}", "animate with motions of the run's body model")
    chunks = []
    with torch.no_grad():
        for start in range(0, clip.num_frames, batch):
            stop = min(start + batch, clip.num_frames)
            count = stop - start
            shape = None if shapes is None else shapes.reshape(1, -1).float().expand(count, -1)
            out = body_model(torch.from_numpy(clip.poses[start:stop]), shape, torch.from_numpy(clip.Rh[start:stop]),
                             torch.from_numpy(clip.Th[start:stop]))
            chunks.append(out.vertices.float().cpu().numpy())
    return np.concatenate(chunks)
