"""What a ZJU-MoCap user holds instead of our body model: 6,890 vertices and SMPL-shaped parameters.

ZJU-MoCap ships, per frame, SMPL's 6,890 posed vertices and ``params`` with ``poses`` (1, 72)
(24 joints, axis-angle, the root's rotation in ``Rh``), ``shapes`` (1, 10), ``Rh`` and ``Th``;
no body-model file comes with it. A synthetic capture in this form stores:

* vertices: a fixed subset of :data:`SMPL_NUM_VERTICES` of the body model's vertices, spread
  evenly over the body by farthest-point sampling of the rest pose (:func:`vertex_subset`);
* ``poses``: for each of SMPL's 24 joints the rotation of a stand-in bone of the body model
  (:data:`SMPL_JOINTS`) relative to the stand-in of SMPL's parent joint, as axis-angle in the
  body frame (SMPL's joints rotate about world-aligned rest axes, as the body model's bones do);
  the pelvis's rotation is relative to ``Rh`` (ZJU's convention);
* ``shapes``: 10 zeros (the body model has no SMPL betas); ``Rh``, ``Th``: unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from neuralbody.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

SMPL_NUM_VERTICES = 6890
SMPL_NUM_BETAS = 10
# SMPL joint -> stand-in bone of Anny (MakeHuman naming), in SMPL's joint order
SMPL_JOINTS = (
    ("pelvis", "root"), ("left_hip", "upperleg01.L"), ("right_hip", "upperleg01.R"), ("spine1", "spine05"),
    ("left_knee", "lowerleg01.L"), ("right_knee", "lowerleg01.R"), ("spine2", "spine03"),
    ("left_ankle", "foot.L"), ("right_ankle", "foot.R"), ("spine3", "spine01"), ("left_foot", "toe3-1.L"),
    ("right_foot", "toe3-1.R"), ("neck", "neck01"), ("left_collar", "clavicle.L"), ("right_collar", "clavicle.R"),
    ("head", "head"), ("left_shoulder", "upperarm01.L"), ("right_shoulder", "upperarm01.R"),
    ("left_elbow", "lowerarm01.L"), ("right_elbow", "lowerarm01.R"), ("left_wrist", "wrist.L"),
    ("right_wrist", "wrist.R"), ("left_hand", "finger3-1.L"), ("right_hand", "finger3-1.R"),
)  # fmt: skip
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def vertex_subset(rest_vertices: np.ndarray, count: int = SMPL_NUM_VERTICES) -> np.ndarray:
    """(count,) sorted int64 indices of ``count`` rest vertices (V, 3), metres, spread by farthest-point sampling.

    Deterministic: starts from the vertex farthest from the centroid, ties go to the lowest index.
    """
    points = np.asarray(rest_vertices, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"vertex_subset: rest_vertices must be (V, 3), got {points.shape}")
    if not 0 < count <= len(points):
        raise ValueError(f"vertex_subset: count must be in 1..{len(points)}, got {count}")
    chosen = np.empty(count, dtype=np.int64)
    chosen[0] = int(np.argmax(((points - points.mean(axis=0)) ** 2).sum(axis=1)))
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for k in range(1, count):
        chosen[k] = int(np.argmax(nearest))
        nearest = np.minimum(nearest, ((points - points[chosen[k]]) ** 2).sum(axis=1))
    return np.sort(chosen)


def smpl_like_poses(bone_transforms: torch.Tensor, Rh: torch.Tensor, joint_names: list[str]) -> np.ndarray:
    """(T, 72) SMPL-shaped ``poses``: the stand-in bones' relative rotations (see the module docstring).

    Args:
        bone_transforms: (T, J, 4, 4) world skinning transforms of the body model's bones (Rh, Th included).
        Rh: (T, 3) global rotation, axis-angle, radians.
        joint_names: the J bone names.
    """
    if bone_transforms.ndim != 4 or bone_transforms.shape[1:] != (len(joint_names), 4, 4):
        raise ValueError(
            f"smpl_like_poses: bone_transforms must be (T, {len(joint_names)}, 4, 4), got {tuple(bone_transforms.shape)}"
        )
    missing = [bone for _, bone in SMPL_JOINTS if bone not in joint_names]
    if missing:
        raise ValueError(f"smpl_like_poses: the body model lacks the stand-in bones {missing}")
    rotations = bone_transforms[:, [joint_names.index(bone) for _, bone in SMPL_JOINTS], :3, :3].double().cpu()
    parents = torch.cat([axis_angle_to_matrix(Rh.double().cpu())[:, None], rotations], dim=1)  # slot 0: Rh
    parent_slot = torch.tensor([p + 1 for p in SMPL_PARENTS])
    relative = parents[:, parent_slot].transpose(-1, -2) @ rotations  # (T, 24, 3, 3)
    return matrix_to_axis_angle(relative.reshape(-1, 3, 3)).reshape(-1, 72).numpy()
