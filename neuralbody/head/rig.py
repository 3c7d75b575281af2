"""A four-bone head rig built from Anny's head model: the free stand-in for FLAME.

Anny 0.6's head (``rig='makehuman-head'``, ``topology='head'``: 4,538 vertices with eyes and
tongue, 64 bones) carries 52 facial actions named as ARKit's blend shapes. IMAvatar drives
FLAME with expression coefficients psi and a few joint rotations (neck, jaw, eyes); here:

* expression psi (52,) in [0, 1]: Anny's facial actions, linear blend shapes of the rest mesh,
  ``x(psi) = x_0 + sum_k psi_k D_k`` (D measured once by switching each action on alone);
* pose theta (4, 3) axis-angle, one rotation per bone of four groups of Anny's bones:
  0 ``base`` (root, neck01: static), 1 ``neck`` (neck02, neck03), 2 ``head`` (the head bone and
  every descendant outside the jaw), 3 ``jaw`` (jaw and its descendants: lower lip, tongue);
  a group's skinning weight is the sum of Anny's weights of its bones, and its rotation is
  about its first bone's rest head in world-aligned axes (the SMPL form of
  :mod:`neuralbody.body.lbs`), chained base -> neck -> head -> jaw;
* posed vertices ``x' = sum_b w_b G_b(theta) [x(psi); 1]`` (linear blend skinning).

Frame: Anny's own rest frame, metres, z up, the face looking along -y (the head's centre sits
about 0.7 m above the origin).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from neuralbody.body.lbs import batch_rigid_transform, linear_blend_skinning
from neuralbody.geometry.rotations import axis_angle_to_matrix

BONES = ("base", "neck", "head", "jaw")
PARENTS = (-1, 0, 1, 2)
NUM_ACTIONS = 52
_FIRST_BONE = {"neck": "neck02", "head": "head", "jaw": "jaw"}


@dataclasses.dataclass
class HeadRig:
    """The head's rest mesh, expression basis and four-bone skinning (see the module docstring).

    Attributes:
        rest_vertices: (V, 3) neutral rest mesh, metres.
        faces: (F, 3) int64 triangles.
        expression_basis: (52, V, 3) displacement of each facial action at 1, metres.
        weights: (V, 4) skinning weights of the four bones (rows sum to one).
        rest_joints: (4, 3) rest heads of the four bones, metres.
        action_labels: the 52 facial-action names (ARKit's).
        eye_centres: (2, 3) rest heads of Anny's eye bones (left, right), metres.
    """

    rest_vertices: torch.Tensor
    faces: torch.Tensor
    expression_basis: torch.Tensor
    weights: torch.Tensor
    rest_joints: torch.Tensor
    action_labels: list[str]
    eye_centres: torch.Tensor

    def __post_init__(self) -> None:
        count = self.rest_vertices.shape[0]
        if self.expression_basis.shape != (NUM_ACTIONS, count, 3) or self.weights.shape != (count, len(BONES)):
            raise ValueError(f"HeadRig: expression_basis must be ({NUM_ACTIONS}, {count}, 3) and weights "
                             f"({count}, {len(BONES)}), got {tuple(self.expression_basis.shape)}, {tuple(self.weights.shape)}")


def _group_of_bones(labels: list[str], parents: list[int]) -> list[int]:
    """Group (index into BONES) of each of Anny's head bones by the module docstring's rule."""
    firsts = {first: name for name, first in _FIRST_BONE.items()}
    group = []
    for bone, label in enumerate(labels):
        own = firsts.get(label)
        if own is not None:
            group.append(BONES.index(own))
        elif parents[bone] < 0 or label == "neck01":
            group.append(0)
        else:
            group.append(group[parents[bone]])
    return group


def build_head_rig() -> HeadRig:
    """The rig from Anny's head model (builds it: a few seconds; Anny prints Warp's banner once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from anny.models import create_head_model

        model = create_head_model(facial_actions=True)
    labels = list(model.bone_labels)
    parents = [int(p) for p in model.bone_parents]
    actions = torch.eye(NUM_ACTIONS + 1, NUM_ACTIONS, dtype=torch.float64)[[NUM_ACTIONS, *range(NUM_ACTIONS)]]
    with torch.no_grad():
        out = model(facial_actions=actions)
    rest = out["rest_vertices"].double()
    heads = out["rest_bone_heads"][0].double()
    group = torch.tensor(_group_of_bones(labels, parents))
    dense = torch.zeros(rest.shape[1], len(labels), dtype=torch.float64)
    dense.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.double())
    weights = torch.zeros(rest.shape[1], len(BONES), dtype=torch.float64).index_add_(1, group, dense)
    joints = torch.stack([heads[labels.index(n)] for n in ("root", "neck02", "head", "jaw")])
    return HeadRig(
        rest_vertices=rest[0].float(),
        faces=model.get_triangular_faces().long(),
        expression_basis=(rest[1:] - rest[:1]).float(),
        weights=(weights / weights.sum(1, keepdim=True)).float(),
        rest_joints=joints.float(),
        action_labels=list(model.facial_action_labels),
        eye_centres=torch.stack([heads[labels.index("eye.L")], heads[labels.index("eye.R")]]).float(),
    )


def bone_transforms(rest_joints: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """(F, 4, 4, 4) bone transforms G of poses (F, 4, 3) axis-angle, radians; rest_joints (4, 3), metres."""
    if pose.ndim != 3 or pose.shape[1:] != (len(BONES), 3):
        raise ValueError(f"bone_transforms: pose must be (F, {len(BONES)}, 3) axis-angle, got {tuple(pose.shape)}")
    rotations = axis_angle_to_matrix(pose.reshape(-1, 3)).reshape(*pose.shape, 3)
    joints = rest_joints.to(pose).expand(pose.shape[0], -1, -1)
    return batch_rigid_transform(joints, rotations, PARENTS).bone_transforms


def expressed_vertices(rig: HeadRig, expression: torch.Tensor) -> torch.Tensor:
    """(F, V, 3) rest mesh with expressions (F, 52) applied: ``x_0 + sum_k psi_k D_k``, metres."""
    if expression.ndim != 2 or expression.shape[1] != NUM_ACTIONS:
        raise ValueError(f"expressed_vertices: expression must be (F, {NUM_ACTIONS}), got {tuple(expression.shape)}")
    basis = rig.expression_basis.to(expression).reshape(NUM_ACTIONS, -1)
    return rig.rest_vertices.to(expression) + (expression @ basis).reshape(expression.shape[0], -1, 3)


def pose_head(rig: HeadRig, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed vertices (F, V, 3) and bone transforms (F, 4, 4, 4) for expressions (F, 52) and poses (F, 4, 3)."""
    transforms = bone_transforms(rig.rest_joints, pose)
    vertices = linear_blend_skinning(expressed_vertices(rig, expression), rig.weights.to(pose), transforms)
    return vertices, transforms
