"""Deterministic procedural motions for any body model with named joints.

A motion is a sequence of joint rotations, written in *anatomical* terms in the body's
canonical frame (z up, ``front`` from the hips' left-right axis: ``front = left x up``):

* flex (about ``flex = (-up) x front``): positive swings a downward limb forwards;
* abduct (about ``front`` for left limbs, ``-front`` for right ones): positive raises a
  downward limb sideways;
* twist (about ``up``) and bend (about ``front``) for the spine, neck and head.

Body models parameterise each joint's rotation in their own local frame, so the
anatomical axis is converted per joint: rotating joint j alone by a local rotation vector
``w`` turns its world skinning transform by ``exp([M_j w])`` for a fixed matrix ``M_j`` (the
joint's rest frame). :func:`joint_frames` measures ``M_j`` by posing each joint alone about
each local axis, and a world-axis rotation ``theta a`` becomes ``w = theta M_j^{-1} a``.
Composed down the kinematic chain this is "about the canonical axis as carried by the parent".

Motions ('walk', 'wave', 'sway', 'dance') are sums of sinusoids of time ``t = frame / fps`` with
seeded phases; the body turns slowly about z (``Rh``) and, for 'walk', moves along an arc
(``Th``). 'sway' is small; 'dance' is large: arms swung overhead in turn, deep knee bends,
a leg kicked forwards, a big torso twist, a full turn about z in about 10 s and a side-to-side
step (the body is lowered by the knee bend so the feet stay near the floor).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from neuralbody.body.base import BodyModel
from neuralbody.geometry.rotations import matrix_to_axis_angle

MOTIONS = ("sway", "wave", "walk", "dance", "arms_overhead", "squat", "kick", "turn")
# motions far outside the everyday ones: for testing animation out of distribution (feet kept on the ground)
GROUNDED_MOTIONS = ("squat", "kick")
FPS = 10.0


@dataclasses.dataclass
class Motion:
    """Per-frame body parameters.

    Attributes:
        name: motion name.
        poses: (T, P) axis-angle per joint, radians (the body model's pose vector).
        Rh: (T, 3) global rotation, axis-angle, radians.
        Th: (T, 3) global translation, metres.
    """

    name: str
    poses: torch.Tensor
    Rh: torch.Tensor
    Th: torch.Tensor

    @property
    def num_frames(self) -> int:
        return self.poses.shape[0]


def joint_names_of(body: BodyModel) -> list[str]:
    names = getattr(body, "joint_names", None)
    if names is None:
        raise ValueError(
            f"body model {body.name!r} does not expose joint_names; procedural motions need named joints"
        )
    return list(names)


def joint_frames(body: BodyModel, joint_ids: list[int], shapes: torch.Tensor | None = None) -> torch.Tensor:
    """(n, 3, 3) matrices ``M_j``: world rotation vector of joint j's skinning transform per local one.

    Poses each listed joint alone by 0.1 rad about each of its local axes (3 n poses in one
    batch) and reads the rotation of ``bone_transforms[:, j]``.
    """
    eps = 0.1
    count = len(joint_ids)
    poses = torch.zeros(3 * count, body.pose_dim)
    for k, joint in enumerate(joint_ids):
        for axis in range(3):
            poses[3 * k + axis, 3 * joint + axis] = eps
    if shapes is not None:
        shapes = shapes.reshape(1, -1).expand(3 * count, -1).float()
    with torch.no_grad():
        out = body(poses, shapes)
    rows = torch.arange(3 * count)
    rotations = out.bone_transforms[rows, torch.tensor(joint_ids).repeat_interleave(3), :3, :3].double().cpu()
    world = matrix_to_axis_angle(rotations) / eps  # (3n, 3): column `axis` of M_j
    return world.reshape(count, 3, 3).transpose(1, 2)


@dataclasses.dataclass(frozen=True)
class BodyAxes:
    """Canonical anatomical axes (unit, world = body frame at rest)."""

    up: np.ndarray
    front: np.ndarray
    left: np.ndarray
    flex: np.ndarray


def body_axes(rest_joints: np.ndarray, names: list[str]) -> BodyAxes:
    """Anatomical axes from the rest joints (hips give left, z is up). rest_joints: (J, 3) metres."""
    up = np.array([0.0, 0.0, 1.0])
    left = rest_joints[names.index("upperleg01.L")] - rest_joints[names.index("upperleg01.R")]
    left[2] = 0.0
    left /= np.linalg.norm(left)
    front = np.cross(left, up)
    flex = np.cross(-up, front)
    return BodyAxes(up=up, front=front, left=left, flex=flex)


def _series(t: np.ndarray, terms: list[tuple[float, float, float]]) -> np.ndarray:
    """sum a sin(2 pi f t + phase) over terms (a, f Hz, phase)."""
    return sum(a * np.sin(2 * math.pi * f * t + phase) for a, f, phase in terms)


def _anatomy_sway(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    ph = rng.uniform(0, 2 * math.pi, 16)
    knees = 0.18 + _series(t, [(0.14, 0.23, ph[0]), (0.05, 0.61, ph[1])])
    arm_l = _series(t, [(0.35, 0.29, ph[2]), (0.1, 0.71, ph[3])])
    arm_r = _series(t, [(0.35, 0.31, ph[4]), (0.1, 0.67, ph[5])])
    return {
        "spine04": [("bend", _series(t, [(0.10, 0.21, ph[6])])), ("twist", _series(t, [(0.15, 0.17, ph[7])]))],
        "spine02": [("bend", _series(t, [(0.07, 0.21, ph[6])])), ("flex", 0.05 + _series(t, [(0.05, 0.37, ph[8])]))],
        "neck02": [("flex", _series(t, [(0.15, 0.41, ph[9])])), ("twist", _series(t, [(0.3, 0.19, ph[10])]))],
        "upperarm01.L": [("flex", arm_l), ("abduct", -0.2 + _series(t, [(0.15, 0.37, ph[11])]))],
        "upperarm01.R": [("flex", arm_r), ("abduct", -0.2 + _series(t, [(0.15, 0.33, ph[12])]))],
        "lowerarm01.L": [("flex", 0.45 + _series(t, [(0.35, 0.43, ph[13])]))],
        "lowerarm01.R": [("flex", 0.45 + _series(t, [(0.35, 0.47, ph[14])]))],
        "upperleg01.L": [("flex", 0.8 * knees), ("abduct", _series(t, [(0.08, 0.23, ph[15])]))],
        "upperleg01.R": [("flex", 0.8 * knees), ("abduct", -_series(t, [(0.08, 0.23, ph[15])]))],
        "lowerleg01.L": [("flex", -1.6 * knees)],
        "lowerleg01.R": [("flex", -1.6 * knees)],
        "foot.L": [("flex", 0.8 * knees)],
        "foot.R": [("flex", 0.8 * knees)],
    }


def _anatomy_wave(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    ph = rng.uniform(0, 2 * math.pi, 8)
    raise_arm = 1.55 + _series(t, [(0.12, 0.2, ph[0])])
    wave = 1.3 + 0.45 * np.sin(2 * math.pi * 0.9 * t + ph[1])
    return {
        "upperarm01.R": [("abduct", raise_arm)],
        "lowerarm01.R": [("abduct", wave)],
        "upperarm01.L": [("flex", _series(t, [(0.25, 0.3, ph[2])])), ("abduct", -0.3)],
        "lowerarm01.L": [("flex", 0.5 + _series(t, [(0.2, 0.37, ph[3])]))],
        "spine03": [("bend", _series(t, [(0.08, 0.25, ph[4])])), ("twist", _series(t, [(0.12, 0.15, ph[5])]))],
        "neck02": [("twist", _series(t, [(0.25, 0.22, ph[6])])), ("bend", _series(t, [(0.1, 0.3, ph[7])]))],
    }


def _anatomy_walk(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    step = 2 * math.pi * 0.85 * t + rng.uniform(0, 2 * math.pi)  # stride frequency 0.85 Hz
    hip = lambda s: 0.42 * np.sin(s)  # noqa: E731
    knee = lambda s: -(0.1 + 0.9 * np.clip(np.sin(s - 1.2), 0.0, None) ** 1.5)  # noqa: E731
    ankle = lambda s: 0.2 * np.sin(s - 0.6)  # noqa: E731
    return {
        "upperleg01.L": [("flex", hip(step))],
        "upperleg01.R": [("flex", hip(step + math.pi))],
        "lowerleg01.L": [("flex", knee(step))],
        "lowerleg01.R": [("flex", knee(step + math.pi))],
        "foot.L": [("flex", ankle(step))],
        "foot.R": [("flex", ankle(step + math.pi))],
        "upperarm01.L": [("flex", 0.35 * np.sin(step + math.pi)), ("abduct", -0.4)],
        "upperarm01.R": [("flex", 0.35 * np.sin(step)), ("abduct", -0.4)],
        "lowerarm01.L": [("flex", 0.35 + 0.15 * np.sin(step + math.pi))],
        "lowerarm01.R": [("flex", 0.35 + 0.15 * np.sin(step))],
        "spine03": [("twist", 0.08 * np.sin(step)), ("flex", 0.05)],
    }


def _dance_knees(t: np.ndarray, phase: float) -> np.ndarray:
    """(T,) knee-bend amount of 'dance' in [0, 1.1] radians (deep bends at 0.35 Hz)."""
    return 0.55 + 0.55 * np.sin(2 * math.pi * 0.35 * t + phase)


def _anatomy_dance(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    ph = rng.uniform(0, 2 * math.pi, 10)
    knees = _dance_knees(t, ph[0])
    beat = 2 * math.pi * 0.45 * t
    raise_l = 1.3 + 1.15 * np.sin(beat + ph[1])  # 0.15 .. 2.45 rad: down to overhead
    raise_r = 1.3 + 1.15 * np.sin(beat + ph[1] + math.pi)
    kick = np.clip(np.sin(2 * math.pi * 0.3 * t + ph[2]), 0.0, None) ** 2  # one leg forwards now and then
    return {
        "upperarm01.L": [("abduct", raise_l), ("flex", 0.4 * np.sin(beat * 0.5 + ph[3]))],
        "upperarm01.R": [("abduct", raise_r), ("flex", 0.4 * np.sin(beat * 0.5 + ph[3] + 1.0))],
        "lowerarm01.L": [("flex", 0.8 + 0.7 * np.sin(beat * 1.5 + ph[4]))],
        "lowerarm01.R": [("flex", 0.8 + 0.7 * np.sin(beat * 1.5 + ph[4] + 2.0))],
        "spine04": [("twist", 0.45 * np.sin(2 * math.pi * 0.25 * t + ph[5])), ("bend", 0.2 * np.sin(beat + ph[6]))],
        "spine02": [("flex", 0.15 + 0.15 * np.sin(2 * math.pi * 0.2 * t + ph[7]))],
        "neck02": [("twist", 0.5 * np.sin(2 * math.pi * 0.3 * t + ph[8])), ("flex", 0.2 * np.sin(beat + ph[9]))],
        "upperleg01.L": [("flex", 0.8 * knees + 1.0 * kick), ("abduct", 0.15 + 0.1 * np.sin(beat))],
        "upperleg01.R": [("flex", 0.8 * knees), ("abduct", 0.15 - 0.1 * np.sin(beat))],
        "lowerleg01.L": [("flex", -1.6 * knees - 0.4 * kick)],
        "lowerleg01.R": [("flex", -1.6 * knees)],
        "foot.L": [("flex", 0.8 * knees)],
        "foot.R": [("flex", 0.8 * knees)],
    }


def _anatomy_arms_overhead(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Both arms raised from the sides to straight overhead and back (about 3 s a cycle)."""
    phase = rng.uniform(0, 2 * math.pi)
    lift = 0.5 - 0.5 * np.cos(2 * math.pi * 0.33 * t + phase)  # 0 .. 1
    return {
        "upperarm01.L": [("abduct", -0.2 + 2.9 * lift)],
        "upperarm01.R": [("abduct", -0.2 + 2.9 * lift)],
        "lowerarm01.L": [("flex", 0.3 * (1 - lift))],
        "lowerarm01.R": [("flex", 0.3 * (1 - lift))],
        "spine03": [("flex", -0.1 * lift)],
        "neck02": [("flex", -0.2 * lift)],
    }


def _anatomy_squat(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Deep knee bends (hips to knee height), arms forward for balance."""
    phase = rng.uniform(0, 2 * math.pi)
    depth = 0.5 - 0.5 * np.cos(2 * math.pi * 0.3 * t + phase)  # 0 .. 1
    return {
        "upperleg01.L": [("flex", 1.7 * depth), ("abduct", 0.15 * depth)],
        "upperleg01.R": [("flex", 1.7 * depth), ("abduct", 0.15 * depth)],
        "lowerleg01.L": [("flex", -2.1 * depth)],
        "lowerleg01.R": [("flex", -2.1 * depth)],
        "foot.L": [("flex", 0.45 * depth)],
        "foot.R": [("flex", 0.45 * depth)],
        "spine03": [("flex", 0.45 * depth)],
        "upperarm01.L": [("flex", 1.4 * depth), ("abduct", -0.2)],
        "upperarm01.R": [("flex", 1.4 * depth), ("abduct", -0.2)],
    }


def _anatomy_kick(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Front kicks with the right leg to hip height, arms swinging against it."""
    phase = rng.uniform(0, 2 * math.pi)
    kick = np.clip(np.sin(2 * math.pi * 0.25 * t + phase), 0.0, None) ** 2  # 0 .. 1, rests between kicks
    chamber = np.clip(np.sin(2 * math.pi * 0.25 * t + phase - 0.5), 0.0, None)
    return {
        "upperleg01.R": [("flex", 1.5 * kick)],
        "lowerleg01.R": [("flex", -1.4 * chamber * (1 - kick))],
        "upperleg01.L": [("flex", 0.1 * kick)],
        "lowerleg01.L": [("flex", -0.2 * kick)],
        "spine03": [("flex", -0.2 * kick)],
        "upperarm01.L": [("flex", 0.8 * kick), ("abduct", -0.3)],
        "upperarm01.R": [("flex", -0.6 * kick), ("abduct", -0.3)],
    }


def _anatomy_turn(t: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Standing, arms out to the sides, turning on the spot (the turn itself is the global yaw)."""
    ph = rng.uniform(0, 2 * math.pi, 2)
    return {
        "upperarm01.L": [("abduct", 1.2 + _series(t, [(0.2, 0.3, ph[0])]))],
        "upperarm01.R": [("abduct", 1.2 + _series(t, [(0.2, 0.3, ph[1])]))],
        "spine03": [("twist", 0.25 * np.sin(2 * math.pi * 0.25 * t))],
    }


_ANATOMY = {
    "sway": _anatomy_sway,
    "wave": _anatomy_wave,
    "walk": _anatomy_walk,
    "dance": _anatomy_dance,
    "arms_overhead": _anatomy_arms_overhead,
    "squat": _anatomy_squat,
    "kick": _anatomy_kick,
    "turn": _anatomy_turn,
}


def grounding_offsets(body: BodyModel, poses: np.ndarray, shapes: torch.Tensor | None = None) -> np.ndarray:
    """(T,) vertical offsets (metres) that keep each posed frame's lowest vertex at the rest pose's height.

    Args:
        body: the body model.
        poses: (T, P) axis-angle pose vectors.
        shapes: (S,) shape parameters; None: the mean shape.
    """
    with torch.no_grad():
        batch = torch.as_tensor(poses, dtype=torch.float32)
        zeros = torch.zeros(1, body.pose_dim)
        shape = None if shapes is None else shapes.reshape(1, -1).float()
        rest_low = body(zeros, shape).vertices[0, :, 2].min()
        shape = None if shape is None else shape.expand(batch.shape[0], -1)
        low = body(batch, shape).vertices[..., 2].min(dim=1).values
    return (rest_low - low).double().numpy()


def anatomical_poses(
    body: BodyModel,
    program: dict[str, list[tuple[str, np.ndarray]]],
    *,
    num_frames: int,
    shapes: torch.Tensor | None = None,
) -> tuple[np.ndarray, BodyAxes]:
    """Body-model pose vectors from anatomical joint rotations.

    Args:
        body: a body model exposing ``joint_names``.
        program: joint name -> list of (kind, angle) with kind in flex / abduct / twist / bend
            and angle a float or (T,) radians; a joint's terms are summed as one rotation vector.
        num_frames: T.
        shapes: (S,) shape parameters; None: the mean shape.

    Returns:
        poses (T, P) axis-angle, and the body's anatomical axes.
    """
    names = joint_names_of(body)
    missing = [joint for joint in program if joint not in names]
    if missing:
        raise ValueError(f"body model {body.name!r} lacks joints {missing}")
    with torch.no_grad():
        rest = body(torch.zeros(1, body.pose_dim), None if shapes is None else shapes.reshape(1, -1).float())
    axes = body_axes(rest.rest_joints[0].double().cpu().numpy(), names)
    joint_ids = [names.index(joint) for joint in program]
    frames = joint_frames(body, joint_ids, shapes).numpy()  # (n, 3, 3)
    poses = np.zeros((num_frames, body.pose_dim))
    for k, (joint, terms) in enumerate(program.items()):
        side = -1.0 if joint.endswith(".R") else 1.0
        axis_of = {"flex": axes.flex, "abduct": side * axes.front, "twist": axes.up, "bend": axes.front}
        unknown = {kind for kind, _ in terms} - set(axis_of)
        if unknown:
            raise ValueError(f"unknown rotation kinds {sorted(unknown)} for joint {joint!r}; use {sorted(axis_of)}")
        world = sum(
            np.broadcast_to(np.asarray(angle, dtype=np.float64), (num_frames,))[:, None] * axis_of[kind][None, :]
            for kind, angle in terms
        )  # (T, 3)
        poses[:, 3 * joint_ids[k] : 3 * joint_ids[k] + 3] = np.linalg.solve(frames[k], world.T).T
    return poses, axes


def make_motion(
    name: str, *, body: BodyModel, num_frames: int, seed: int = 0, shapes: torch.Tensor | None = None
) -> Motion:
    """A deterministic motion of ``num_frames`` frames at :data:`FPS` frames a second.

    Args:
        name: one of :data:`MOTIONS`.
        body: a body model exposing ``joint_names`` (Anny naming).
        num_frames: T.
        seed: seeds the phases.
        shapes: (S,) shape parameters (rest joints for the axes); None: the mean shape.
    """
    if name not in _ANATOMY:
        raise ValueError(f"unknown motion {name!r}; choose one of {', '.join(MOTIONS)}")
    if num_frames < 1:
        raise ValueError(f"make_motion: num_frames must be >= 1, got {num_frames}")
    rng = np.random.default_rng([seed, 31337])
    t = np.arange(num_frames) / FPS
    program = _ANATOMY[name](t, rng)
    poses, axes = anatomical_poses(body, program, num_frames=num_frames, shapes=shapes)
    yaw = _series(t, [(0.6, 0.05, rng.uniform(0, 6.3))]) + 0.25 * t
    if name == "turn":  # a whole turn on the spot every 4 s
        yaw = 2 * math.pi * t / 4.0 + rng.uniform(0, 2 * math.pi)
    Rh = np.stack([np.zeros_like(t), np.zeros_like(t), yaw], axis=1)
    Th = np.zeros((num_frames, 3))
    if name in GROUNDED_MOTIONS:
        Th[:, 2] = grounding_offsets(body, poses, shapes)
    if name == "walk":  # walk along an arc of radius 0.6 m, facing along it (front turns with yaw)
        radius, speed = 0.6, 0.35
        arc = speed * t / radius
        yaw = arc
        Rh[:, 2] = yaw
        front = axes.front[:2]
        base_angle = math.atan2(front[1], front[0])
        heading = base_angle + yaw
        centre_offset = radius * np.array([math.cos(base_angle + math.pi / 2), math.sin(base_angle + math.pi / 2)])
        Th[:, 0] = radius * np.cos(heading - math.pi / 2) + centre_offset[0]
        Th[:, 1] = radius * np.sin(heading - math.pi / 2) + centre_offset[1]
        Th[:, 2] = 0.015 * np.abs(np.sin(2 * math.pi * 0.85 * t))
    if name == "dance":  # a full turn in ~10 s, a side step, lowered by the knee bend (~0.9 m of leg)
        Rh[:, 2] = yaw + 0.6 * t
        Th[:, 0] = 0.2 * np.sin(2 * math.pi * 0.15 * t + rng.uniform(0, 2 * math.pi))
        knee_phase = np.random.default_rng([seed, 31337]).uniform(0, 2 * math.pi, 10)[0]  # _anatomy_dance's ph[0]
        knees = _dance_knees(t, knee_phase)
        Th[:, 2] = -0.9 * (1.0 - np.cos(0.8 * knees))
    return Motion(
        name=name,
        poses=torch.tensor(poses, dtype=torch.float32),
        Rh=torch.tensor(Rh, dtype=torch.float32),
        Th=torch.tensor(Th, dtype=torch.float32),
    )
