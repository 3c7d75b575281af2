"""Vertex -> keypoint regressors: COCO keypoints as fixed linear blends of body-model vertices.

A regressor is a matrix ``W`` (K, V) whose rows are convex weights (non-negative, sum 1):

    keypoints = W @ vertices            (K, 3) = (K, V) @ (V, 3), world coordinates, metres

Because it is linear, it commutes with the global transform: regressing posed world vertices
equals posing the regressed rest keypoints rigidly, which :mod:`~neuralbody.fitting.optimize`
uses for its Procrustes initialisation.

* Anny: from the COCO regressor shipped with the ``anny`` package (``anny/data/keypoints/coco.pth``,
  weights over Anny's base mesh, selected by the model's ``base_mesh_vertex_indices``); 17 COCO
  body keypoints, plus the 6 COCO-WholeBody foot keypoints (big toe, small toe, heel) on request.
* SMPL topology (6890 vertices): face keypoints from single vertices (the vertex ids used by the
  public SMPL-X / SMPL+H code: nose 332, eyes 2800 / 6260, ears 583 / 4071) and the limb keypoints
  from rows of the model's own joint regressor ``J_regressor`` (24, 6890), which ships with the
  SMPL file (not with this package): :func:`smpl_keypoint_regressor`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import numpy as np

COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
"""The 17 COCO body keypoints in COCO order ("left" is the person's left)."""

COCO_FOOT_KEYPOINTS = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
"""COCO-WholeBody's 6 foot keypoints (indices 17..22 of its 133), in its order."""

COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
"""Limb pairs of the 17 COCO keypoints (for drawing)."""

SMPL_FACE_VERTICES = {"nose": 332, "left_eye": 2800, "right_eye": 6260, "left_ear": 583, "right_ear": 4071}
SMPL_JOINT_OF = {
    "left_hip": 1, "right_hip": 2, "left_knee": 4, "right_knee": 5, "left_ankle": 7, "right_ankle": 8,
    "left_shoulder": 16, "right_shoulder": 17, "left_elbow": 18, "right_elbow": 19, "left_wrist": 20, "right_wrist": 21,
}  # fmt: skip
"""SMPL joint index (row of its ``J_regressor``) standing in for each COCO limb keypoint."""


@dataclasses.dataclass
class KeypointRegressor:
    """A linear vertex -> keypoint regressor.

    Attributes:
        weights: (K, V) convex weights (rows non-negative, summing to 1).
        names: the K keypoint names.
    """

    weights: torch.Tensor
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.weights.ndim != 2 or self.weights.shape[0] != len(self.names):
            raise ValueError(
                f"KeypointRegressor: weights must be (K, V) with K = {len(self.names)} names, "
                f"got {tuple(self.weights.shape)}"
            )

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def to(self, device=None, dtype=None) -> "KeypointRegressor":
        return KeypointRegressor(self.weights.to(device=device, dtype=dtype), self.names)

    def __call__(self, vertices: torch.Tensor) -> torch.Tensor:
        """Keypoints of ``vertices`` (..., V, 3) metres -> (..., K, 3) metres (same frame)."""
        if vertices.shape[-2] != self.weights.shape[1] or vertices.shape[-1] != 3:
            raise ValueError(
                f"KeypointRegressor: vertices must be (..., {self.weights.shape[1]}, 3), got {tuple(vertices.shape)}"
            )
        return torch.einsum("kv,...vd->...kd", self.weights.to(vertices), vertices)


def anny_keypoint_regressor(*, include_feet: bool = False, device=None) -> KeypointRegressor:
    """COCO keypoints of :class:`~neuralbody.body.anny.AnnyBody` vertices (13,718), from anny's own regressor.

    Args:
        include_feet: append :data:`COCO_FOOT_KEYPOINTS` (23 keypoints in all) to the 17 of COCO.
        device: torch device of the weights.
    Raises:
        FileNotFoundError: the installed ``anny`` package lacks ``data/keypoints/coco.pth``.
    """
    from anny.paths import get_anny_root_dir

    from neuralbody.body.anny import build_native_anny

    path = get_anny_root_dir() / "data" / "keypoints" / "coco.pth"
    if not path.is_file():
        raise FileNotFoundError(f"anny's COCO keypoint regressor is missing: {path}; reinstall anny (pip install anny)")
    table = torch.load(path, weights_only=True, map_location="cpu")
    indices = build_native_anny().base_mesh_vertex_indices.long().cpu()
    names = COCO_KEYPOINTS + (COCO_FOOT_KEYPOINTS if include_feet else ())
    rows = []
    for name in names:
        row = table[name].double()[indices]
        if (row < 0).any() or abs(float(row.sum()) - 1.0) > 1e-3:
            raise ValueError(f"{path}: weights of {name!r} are not convex (sum {float(row.sum()):.4f})")
        rows.append(row / row.sum())
    return KeypointRegressor(torch.stack(rows).float().to(device or "cpu"), names)


def smpl_keypoint_regressor(J_regressor: torch.Tensor) -> KeypointRegressor:
    """The 17 COCO keypoints for SMPL-topology vertices (6890) from the model's ``J_regressor`` (24, 6890).

    Face keypoints are single vertices (:data:`SMPL_FACE_VERTICES`); limb keypoints are SMPL's
    joints (:data:`SMPL_JOINT_OF`). SMPL's hip joints sit inside the pelvis, a few centimetres
    medial of where COCO annotators place hips: a known, systematic difference.
    """
    if J_regressor.ndim != 2 or J_regressor.shape[0] < 22 or J_regressor.shape[1] != 6890:
        raise ValueError(f"smpl_keypoint_regressor: J_regressor must be (24, 6890), got {tuple(J_regressor.shape)}")
    weights = torch.zeros(len(COCO_KEYPOINTS), J_regressor.shape[1], dtype=torch.float32)
    for k, name in enumerate(COCO_KEYPOINTS):
        if name in SMPL_FACE_VERTICES:
            weights[k, SMPL_FACE_VERTICES[name]] = 1.0
        else:
            row = J_regressor[SMPL_JOINT_OF[name]].float().cpu()
            weights[k] = row / row.sum()
    return KeypointRegressor(weights.to(J_regressor.device), COCO_KEYPOINTS)


def keypoint_regressor_for(body, *, include_feet: bool = False) -> KeypointRegressor:
    """The COCO regressor matching ``body`` (Anny, or an SMPL body exposing its ``J_regressor`` buffer)."""
    device = next(iter(body.buffers())).device
    if getattr(body, "name", "") == "anny":
        return anny_keypoint_regressor(include_feet=include_feet, device=device)
    J_regressor = getattr(body, "J_regressor", None)
    if J_regressor is not None and body.num_vertices == 6890:
        if include_feet:
            raise ValueError("foot keypoints are only available for the Anny body; use include_feet=False")
        return smpl_keypoint_regressor(J_regressor)
    raise ValueError(f"no COCO keypoint regressor for body model {getattr(body, 'name', body)!r}; use 'anny' or SMPL")


def keypoints2d_from_points(
    cameras, keypoints_world, *, noise_px: float = 0.0, rng: "np.random.Generator | None" = None
):
    """(C, K, 3) ``(u, v, confidence)`` detections of world keypoints (K, 3) metres in each camera.

    Projects with distortion (:func:`neuralbody.data.cameras.project_points`) and adds isotropic
    Gaussian pixel noise of standard deviation ``noise_px``; confidence is 1, or 0 behind a camera.
    Used to test fitting from ground truth (``neuralbody fit --from-gt-noise``).
    """
    import numpy as np

    from neuralbody.data.cameras import project_points

    keypoints_world = np.asarray(keypoints_world, dtype=np.float64)
    if keypoints_world.ndim != 2 or keypoints_world.shape[1] != 3:
        raise ValueError(f"keypoints_world must be (K, 3), got {keypoints_world.shape}")
    rng = rng or np.random.default_rng(0)
    out = np.zeros((len(cameras), len(keypoints_world), 3))
    for c, camera in enumerate(cameras):
        uv, depth = project_points(camera, keypoints_world)
        out[c, :, :2] = uv + noise_px * rng.standard_normal(uv.shape)
        out[c, :, 2] = (depth > 0).astype(np.float64)
    return out
