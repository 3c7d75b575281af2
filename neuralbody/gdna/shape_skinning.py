"""The multi-subject skinning, conditioned on body shape: each person's skinning from their body model shape.

gDNA learns one skinning network ``w(x, beta)`` for everyone, conditioned on the body shape
``beta``, because its canonical spaces differ from person to person (each person's rest pose
with their own shape). Here the skinning of a person with shape ``beta`` is the body model's
own, spread over canonical space (Fast-SNARF's "preset" mode): the rest mesh of ``beta``, its
per-vertex weights carried to every node of a canonical grid by the closest surface point
(:func:`neuralbody.skinning.weight_grid.weight_grid_from_mesh`). So the weights are a function
of ``(x, beta)`` and cover any shape, seen in training or drawn at generation, without
learning. (Not learned: clothing that should follow other bones than the skin below it, a
skirt between the legs, keeps the skin's weights.)

A posed point ``x'`` of a person finds its canonical candidates by forward skinning with these
weights (:class:`~neuralbody.models.skinning_deformer.ForwardSkinningDeformer`). Canonical
frame: the body model's rest pose of ``beta``; posed frame: the body frame (``Rh = 0, Th = 0``,
see :mod:`neuralbody.snarf.frame_pose`); metres.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.body.base import BodyModel
from neuralbody.models.skinning_deformer import ForwardSkinningDeformer, SearchOptions
from neuralbody.skinning.initial_guesses import BoneGroups, bone_groups
from neuralbody.skinning.weight_grid import DEFAULT_PADDING, SkinningWeightGrid, weight_grid_from_mesh
from neuralbody.snarf.model_spec import DEFAULT_WEIGHT_VOXEL
from neuralbody.snarf.subject import Subject, make_subject


@dataclasses.dataclass
class ShapeSkinning:
    """The skinning of one body shape.

    Attributes:
        subject: the body model with the shape (rest mesh, joints, per-vertex weights).
        grid: the canonical weight grid (fixed: built from the rest mesh).
        groups: the skeleton's bone groups (starts of the correspondence search).
    """

    subject: Subject
    grid: SkinningWeightGrid
    groups: BoneGroups

    @property
    def box_min(self) -> torch.Tensor:
        """(3,) canonical corner of the grid's box, metres."""
        return self.grid.origin

    @property
    def box_max(self) -> torch.Tensor:
        """(3,) the opposite corner, metres."""
        count = torch.tensor(self.grid.logits.shape[:3], dtype=self.grid.origin.dtype)
        return self.grid.origin + self.grid.spacing * (count - 1)

    def bone_transforms(self, poses: torch.Tensor) -> torch.Tensor:
        """(T, B, 4, 4) bone transforms, canonical to body frame, of poses (T, P), radians."""
        body = self.subject.body
        if poses.ndim != 2 or poses.shape[1] != body.pose_dim:
            raise ValueError(f"bone_transforms: poses must be (T, {body.pose_dim}), got {tuple(poses.shape)}")
        with torch.no_grad():
            out = body(poses.float(), self.subject.shapes[None].expand(len(poses), -1))
        return out.bone_transforms.float()

    def deformer(self, bone_transforms: torch.Tensor, options: SearchOptions = SearchOptions()) -> ForwardSkinningDeformer:
        """The forward-skinning correspondence search of one frame with bone transforms (B, 4, 4)."""
        return ForwardSkinningDeformer.for_frame(self.grid, self.groups, bone_transforms.float(), options)


def shape_skinning(body: BodyModel, shapes: torch.Tensor, *, voxel: float = DEFAULT_WEIGHT_VOXEL) -> ShapeSkinning:
    """The :class:`ShapeSkinning` of shape parameters (S,) of ``body``; ``voxel`` metres between weight nodes."""
    subject = make_subject(body, shapes)
    with torch.no_grad():
        grid = weight_grid_from_mesh(subject.rest_vertices, subject.faces, subject.vertex_weights, voxel_size=voxel,
                                     padding=DEFAULT_PADDING)
    grid.requires_grad_(False)
    return ShapeSkinning(subject, grid, bone_groups(subject.parents, subject.rest_joints))
