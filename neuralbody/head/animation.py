"""Driving a trained head avatar with a parameter file.

A parameter file is an ``.npz`` (no pickles) holding ``expression`` (F, 52) facial actions
(ARKit's names, in the order of ``head.json``'s ``action_labels``) and ``pose`` (F, 4, 3)
axis-angle per bone (base, neck, head, jaw; radians); ``bone_transforms`` (F, 4, 4, 4) is
optional (computed from the pose with the run's face model when absent). ``synth-head``
writes one per split into ``OUT/animation/`` (``strong.npz``: the held-out strong expressions).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from neuralbody.head.capture import FrameParams, load_npz
from neuralbody.head.rig import BONES, NUM_ACTIONS, HeadRig, bone_transforms
from neuralbody.io.errors import InputError

FIX = "give an .npz with expression (F, 52) and pose (F, 4, 3) (e.g. OUT/animation/strong.npz of synth-head)"


def read_params_file(path: str | os.PathLike, rig: HeadRig) -> list[FrameParams]:
    """The frames of a parameter file (module docstring), checked; an InputError names the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "not found", FIX)
    data = load_npz(path, ("expression", "pose"), FIX)
    expression, pose = data["expression"].astype(np.float32), data["pose"].astype(np.float32)
    frames = expression.shape[0] if expression.ndim == 2 else -1
    if frames < 1 or expression.shape != (frames, NUM_ACTIONS) or pose.shape != (frames, len(BONES), 3):
        raise InputError(path, f"expression must be (F, {NUM_ACTIONS}) and pose (F, {len(BONES)}, 3) with F >= 1, got "
                         f"{expression.shape}, {pose.shape}", FIX)
    if not (np.isfinite(expression).all() and np.isfinite(pose).all()):
        raise InputError(path, "holds non-finite values", FIX)
    with np.load(path, allow_pickle=False) as handle:
        given = np.asarray(handle["bone_transforms"], dtype=np.float32) if "bone_transforms" in handle.files else None
    if given is not None and given.shape != (frames, len(BONES), 4, 4):
        raise InputError(path, f"bone_transforms must be ({frames}, {len(BONES)}, 4, 4), got {given.shape}", FIX)
    transforms = given if given is not None else bone_transforms(rig.rest_joints, torch.from_numpy(pose)).numpy()
    return [FrameParams(expression=expression[i], pose=pose[i], bone_transforms=transforms[i]) for i in range(frames)]


def write_params_file(path: str | os.PathLike, expression: np.ndarray, pose: np.ndarray,
                      transforms: np.ndarray | None = None) -> Path:
    """Write a parameter file: expression (F, 52), pose (F, 4, 3) and optionally bone_transforms (F, 4, 4, 4)."""
    from neuralbody.head.capture import write_npz

    arrays = {"expression": np.asarray(expression, np.float32), "pose": np.asarray(pose, np.float32)}
    if transforms is not None:
        arrays["bone_transforms"] = np.asarray(transforms, np.float32)
    write_npz(Path(path), **arrays)
    return Path(path)
