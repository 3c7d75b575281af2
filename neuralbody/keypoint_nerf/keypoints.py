"""Sparse 3D keypoints of a person from the posed body-model vertices: a linear joint regressor.

KeypointNeRF conditions on a few 3D keypoints (13 to 25 body joints). Every capture here that a
body model was posed or fitted to has the posed vertices (``vertices/``), and the corpus also stores
the body model's own posed joints (Anny's bone heads). A regressor maps the former to the latter,
so the same keypoints come out of any capture with vertices of the same topology::

    p_k = sum_{i in S_k} w_ki v_i,        sum_i w_ki = 1                          (world, metres)

``S_k`` are the ``support`` vertices nearest to joint k in a reference frame; the weights solve,
over F frames of several people, ``min_w sum_f |V_f[S_k] w - J_fk|^2 + ridge |w|^2`` with the
sum-to-one constraint as a heavily weighted extra equation (SMPL's joint regressor is of this kind:
sparse, affine, fitted to joint centres).
"""

from __future__ import annotations

import dataclasses

import numpy as np

KEYPOINT_NAMES = (
    "root", "spine03", "spine01", "neck02", "head", "eye.L", "eye.R",
    "upperarm01.L", "lowerarm01.L", "wrist.L", "finger3-1.L",
    "upperarm01.R", "lowerarm01.R", "wrist.R", "finger3-1.R",
    "upperleg01.L", "lowerleg01.L", "foot.L", "toe3-1.L",
    "upperleg01.R", "lowerleg01.R", "foot.R", "toe3-1.R",
)  # fmt: skip
"""Anny bone heads used as keypoints: trunk, head, shoulders, elbows, wrists, hands, hips, knees, ankles, toes."""

SUM_TO_ONE_WEIGHT = 100.0


@dataclasses.dataclass(frozen=True)
class JointRegressor:
    """Sparse affine map from posed vertices to K keypoints.

    Attributes:
        indices: (K, S) int64 vertex indices.
        weights: (K, S) float32 weights, each row summing to one.
        num_vertices: V, the vertex count of the topology it was fitted on.
    """

    indices: np.ndarray
    weights: np.ndarray
    num_vertices: int

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) posed vertices (world, metres) -> (K, 3) keypoints (world, metres)."""
        vertices = np.asarray(vertices)
        if vertices.ndim != 2 or vertices.shape != (self.num_vertices, 3):
            raise ValueError(f"the keypoint regressor needs ({self.num_vertices}, 3) vertices (the body model it was "
                             f"fitted on), got {vertices.shape}")  # fmt: skip
        return np.einsum("ks,ksc->kc", self.weights, vertices[self.indices].astype(np.float64)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"indices": self.indices.tolist(), "weights": self.weights.tolist(), "num_vertices": self.num_vertices}

    @classmethod
    def from_dict(cls, values: dict) -> "JointRegressor":
        indices = np.asarray(values["indices"], dtype=np.int64)
        weights = np.asarray(values["weights"], dtype=np.float32)
        if indices.ndim != 2 or indices.shape != weights.shape or indices.min() < 0 or indices.max() >= values["num_vertices"]:
            raise ValueError("JointRegressor: indices and weights must be (K, S) with indices below num_vertices")
        return cls(indices, weights, int(values["num_vertices"]))


def fit_joint_regressor(vertices: np.ndarray, joints: np.ndarray, *, support: int = 16, ridge: float = 1e-4) -> JointRegressor:
    """Fit the regressor of the module docstring.

    Args:
        vertices: (F, V, 3) posed vertices of F frames (several people), world, metres.
        joints: (F, K, 3) the joints to reproduce, world, metres.
        support: S, vertices per keypoint (the nearest to it in frame 0).
        ridge: Tikhonov weight on the weights.
    """
    vertices, joints = np.asarray(vertices, dtype=np.float64), np.asarray(joints, dtype=np.float64)
    if vertices.ndim != 3 or joints.ndim != 3 or vertices.shape[-1] != 3 or joints.shape[-1] != 3 or len(vertices) != len(joints):
        raise ValueError(f"fit_joint_regressor: need vertices (F, V, 3) and joints (F, K, 3), got {vertices.shape}, {joints.shape}")
    if not 1 <= support <= vertices.shape[1]:
        raise ValueError(f"fit_joint_regressor: support must be in 1..{vertices.shape[1]}, got {support}")
    indices, weights = [], []
    for k in range(joints.shape[1]):
        nearest = np.argsort(np.linalg.norm(vertices[0] - joints[0, k], axis=1))[:support]
        system = vertices[:, nearest].transpose(0, 2, 1).reshape(-1, support)  # (3F, S)
        target = joints[:, k].reshape(-1)
        system = np.concatenate([system, SUM_TO_ONE_WEIGHT * np.ones((1, support)), np.sqrt(ridge) * np.eye(support)])
        target = np.concatenate([target, [SUM_TO_ONE_WEIGHT], np.zeros(support)])
        solution = np.linalg.lstsq(system, target, rcond=None)[0]
        indices.append(nearest)
        weights.append(solution / solution.sum())
    return JointRegressor(np.asarray(indices, dtype=np.int64), np.asarray(weights, dtype=np.float32), vertices.shape[1])


def select_joints(joints: np.ndarray, names: list[str], wanted: tuple[str, ...] = KEYPOINT_NAMES) -> np.ndarray:
    """(K, 3) the rows of ``joints`` (J, 3) named ``wanted`` (``names``: the J joint names)."""
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ValueError(f"the body model's joints lack {missing}; KeypointNeRF's keypoints are Anny's joints")
    return np.asarray(joints)[[names.index(name) for name in wanted]]
