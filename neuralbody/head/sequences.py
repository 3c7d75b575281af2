"""Facial-action, jaw and neck sequences of the synthetic head videos.

Actions come in groups (a symmetric pair, or one action). Three kinds of sequence:

* ``train`` and ``test`` (training-like): key frames every ``key_every`` frames, each with ONE
  group at an amplitude in [0.2, 0.6], the jaw opened by up to 0.12 rad and the neck and head
  turned by up to 0.2 rad about each axis; frames between keys blend the two keys with a
  smoothstep (so neighbouring keys' groups overlap only while fading);
* ``strong`` (held out): every frame draws TWO groups at amplitudes in [0.8, 1.0] (pairs that
  training never holds at full strength together), the jaw opened by 0.15-0.3 rad.

Poses are (F, 4, 3) axis-angle per bone of :data:`neuralbody.head.rig.BONES` (radians; base
stays zero); expressions (F, 52) in [0, 1] ordered as the rig's action labels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralbody.head.rig import BONES, NUM_ACTIONS

ACTION_GROUPS = (
    ("jawOpen",), ("mouthSmileLeft", "mouthSmileRight"), ("browInnerUp",), ("eyeBlinkLeft", "eyeBlinkRight"),
    ("mouthPucker",), ("browDownLeft", "browDownRight"), ("mouthFunnel",), ("cheekPuff",),
    ("mouthFrownLeft", "mouthFrownRight"), ("eyeWideLeft", "eyeWideRight"), ("mouthStretchLeft", "mouthStretchRight"),
    ("browOuterUpLeft", "browOuterUpRight"), ("mouthLeft",), ("mouthRight",), ("mouthRollLower", "mouthRollUpper"),
)
KINDS = ("train", "test", "strong")


@dataclasses.dataclass
class ParameterSequence:
    """Per-frame parameters of the head.

    Attributes:
        expression: (F, 52) facial actions in [0, 1].
        pose: (F, 4, 3) axis-angle per bone, radians.
    """

    expression: np.ndarray
    pose: np.ndarray

    def __post_init__(self) -> None:
        frames = self.expression.shape[0]
        if self.expression.shape != (frames, NUM_ACTIONS) or self.pose.shape != (frames, len(BONES), 3):
            raise ValueError(f"ParameterSequence: expression must be (F, {NUM_ACTIONS}) and pose (F, {len(BONES)}, 3), "
                             f"got {self.expression.shape}, {self.pose.shape}")


def _group_vector(labels: list[str], groups: list[int], amplitudes: np.ndarray) -> np.ndarray:
    out = np.zeros(NUM_ACTIONS)
    for group, amplitude in zip(groups, amplitudes):
        for name in ACTION_GROUPS[group]:
            out[labels.index(name)] = amplitude
    return out


def _key_pose(rng: np.random.Generator, jaw: tuple[float, float], turn: float) -> np.ndarray:
    pose = np.zeros((len(BONES), 3))
    pose[1] = rng.uniform(-turn, turn, 3) * 0.5
    pose[2] = rng.uniform(-turn, turn, 3)
    pose[3, 0] = rng.uniform(*jaw)
    return pose


def training_like(labels: list[str], frames: int, seed: int, key_every: int = 6) -> ParameterSequence:
    """Smooth sequence of single-group expressions (the module docstring's ``train`` kind)."""
    if frames < 1 or key_every < 1:
        raise ValueError(f"training_like: frames and key_every must be >= 1, got {frames}, {key_every}")
    rng = np.random.default_rng([seed, 20])
    keys = frames // key_every + 2
    key_expr = np.stack([_group_vector(labels, [int(rng.integers(len(ACTION_GROUPS)))], rng.uniform(0.2, 0.6, 1))
                         for _ in range(keys)])
    key_pose = np.stack([_key_pose(rng, (0.0, 0.12), 0.2) for _ in range(keys)])
    t = np.arange(frames) / key_every
    index = np.floor(t).astype(int)
    s = t - index
    s = (s * s * (3.0 - 2.0 * s))[:, None]
    expression = key_expr[index] * (1.0 - s) + key_expr[index + 1] * s
    pose = key_pose[index] * (1.0 - s[:, :, None]) + key_pose[index + 1] * s[:, :, None]
    return ParameterSequence(expression=expression, pose=pose)


def strong(labels: list[str], frames: int, seed: int) -> ParameterSequence:
    """Independent frames of two full-strength groups each (the module docstring's ``strong`` kind)."""
    if frames < 1:
        raise ValueError(f"strong: frames must be >= 1, got {frames}")
    rng = np.random.default_rng([seed, 30])
    expression, pose = [], []
    for _ in range(frames):
        groups = rng.choice(len(ACTION_GROUPS), size=2, replace=False)
        expression.append(_group_vector(labels, list(groups), rng.uniform(0.8, 1.0, 2)))
        pose.append(_key_pose(rng, (0.15, 0.3), 0.2))
    return ParameterSequence(expression=np.stack(expression), pose=np.stack(pose))


def make_sequence(kind: str, labels: list[str], frames: int, seed: int) -> ParameterSequence:
    """The sequence of a kind in :data:`KINDS` (train and test draw from different seeds)."""
    if kind == "train":
        return training_like(labels, frames, seed)
    if kind == "test":
        return training_like(labels, frames, seed + 7919)
    if kind == "strong":
        return strong(labels, frames, seed)
    raise ValueError(f"make_sequence: kind must be one of {KINDS}, got {kind!r}")
