"""A tube body for any skeleton: a closed-form stand-in for a body mesh with skinning weights.

Each bone with children gets, per child, a tube (open cylinder of ``radius``) from its head to
the child's head; a leaf bone gets a tube of ``leaf_length`` continuing its parent's direction.
A tube vertex at fraction t along bone b's tube is bound to b, blended over the tube's ends
with b's parent (t < 0.25) and b's child (t > 0.75), so the weights are continuous across
joints as a body model's are. :func:`write_smpl_npz` stores an SMPL-format model file of a
24-joint tube body (no shape or pose blend shapes; the joint regressor picks extra vertices
placed at the joints), to exercise SMPL's 24-bone skeleton without the licensed file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL-like rest joints in a T-pose, metres, y up, facing +z, soles near y = 0.
SMPL_REST_JOINTS = np.array([
    [0.0, 0.95, 0.0], [0.09, 0.87, 0.0], [-0.09, 0.87, 0.0], [0.0, 1.05, 0.0], [0.1, 0.5, 0.02],
    [-0.1, 0.5, 0.02], [0.0, 1.18, 0.0], [0.1, 0.1, 0.0], [-0.1, 0.1, 0.0], [0.0, 1.24, 0.0],
    [0.1, 0.03, 0.12], [-0.1, 0.03, 0.12], [0.0, 1.45, 0.0], [0.07, 1.38, 0.0], [-0.07, 1.38, 0.0],
    [0.0, 1.55, 0.02], [0.18, 1.40, 0.0], [-0.18, 1.40, 0.0], [0.45, 1.40, 0.0], [-0.45, 1.40, 0.0],
    [0.70, 1.40, 0.0], [-0.70, 1.40, 0.0], [0.79, 1.40, 0.0], [-0.79, 1.40, 0.0],
])
SMPL_RADII = np.array([
    0.1, 0.07, 0.07, 0.1, 0.055, 0.055, 0.1, 0.04, 0.04, 0.1, 0.035, 0.035,
    0.05, 0.05, 0.05, 0.09, 0.045, 0.045, 0.035, 0.035, 0.03, 0.03, 0.03, 0.03,
])


@dataclasses.dataclass
class TubeBody:
    """A tube mesh with skinning weights (V vertices, F faces, B bones), metres."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int64
    weights: np.ndarray  # (V, B), rows sum to one
    parents: list[int]
    rest_joints: np.ndarray  # (B, 3)


def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def tube_body(parents, rest_joints, radii, *, leaf_length=0.08, rings=8, sides=12) -> TubeBody:
    """The tube body of a skeleton (parents before children); see the module docstring."""
    count = len(parents)
    children = [[c for c in range(count) if parents[c] == b] for b in range(count)]
    vertices, faces, weights = [], [], []
    for bone in range(count):
        ends = [(c, rest_joints[c]) for c in children[bone]]
        if not ends:
            direction = rest_joints[bone] - rest_joints[max(parents[bone], 0)]
            direction = direction / max(np.linalg.norm(direction), 1e-9)
            ends = [(None, rest_joints[bone] + leaf_length * direction)]
        for child, end in ends:
            axis = end - rest_joints[bone]
            length = np.linalg.norm(axis)
            if length < 1e-6:
                continue
            u, v = _frame(axis / length)
            start = len(vertices)
            for i in range(rings):
                t = i / (rings - 1)
                w = np.zeros(count)
                w_parent = 0.5 * max(0.0, 1.0 - t / 0.25) if parents[bone] >= 0 else 0.0
                w_child = 0.5 * max(0.0, (t - 0.75) / 0.25) if child is not None else 0.0
                w[bone] = 1.0 - w_parent - w_child
                if w_parent:
                    w[parents[bone]] = w_parent
                if w_child:
                    w[child] = w_child
                for j in range(sides):
                    angle = 2 * np.pi * j / sides
                    ring = np.cos(angle) * u + np.sin(angle) * v
                    vertices.append(rest_joints[bone] + t * axis + radii[bone] * ring)
                    weights.append(w)
            for i in range(rings - 1):
                for j in range(sides):
                    a, b = start + i * sides + j, start + i * sides + (j + 1) % sides
                    faces += [[a, b, b + sides], [a, b + sides, a + sides]]
    return TubeBody(np.array(vertices), np.array(faces, dtype=np.int64), np.array(weights), list(parents),
                    np.asarray(rest_joints, dtype=np.float64))


def write_smpl_npz(path: Path) -> TubeBody:
    """Write the 24-joint SMPL tube body as an SMPL model file (.npz) at ``path``; returns the body."""
    body = tube_body(SMPL_PARENTS, SMPL_REST_JOINTS, SMPL_RADII)
    count = body.vertices.shape[0]
    vertices = np.concatenate([body.vertices, SMPL_REST_JOINTS])  # joints as extra, unused vertices
    weights = np.concatenate([body.weights, np.eye(24)])
    regressor = np.zeros((24, count + 24))
    regressor[np.arange(24), count + np.arange(24)] = 1.0
    total = vertices.shape[0]
    np.savez(
        path,
        v_template=vertices,
        shapedirs=np.zeros((total, 3, 10)),
        posedirs=np.zeros((total, 3, 207)),
        J_regressor=regressor,
        weights=weights,
        kintree_table=np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], dtype=np.int64),
        f=body.faces,
    )
    return body
