"""The multi-subject skinning, conditioned on body shape: each person's skinning from their body model shape.

gDNA learns one skinning network ``w(x, beta)`` for everyone, conditioned on the body shape
``beta``, because its canonical spaces differ from person to person (each person's rest pose
with their own shape). Here the skinning of a person with shape ``beta`` is the body model's
own, spread over canonical space (Fast-SNARF's "preset" mode): the rest mesh of ``beta``, its
per-vertex weights carried to every node of a canonical grid by the closest surface point
(:func:`neuralbody.skinning.weight_grid.weight_grid_from_mesh`). So the weights are a function
of ``(x, beta)`` and cover any shape, seen in training or drawn at generation, without
learning. Those weights alone are the ``fixed`` skinning: clothing that should follow other
bones than the skin below it, a skirt between the legs, keeps the skin's weights. With a
correction network (:mod:`neuralbody.gdna.learned_skinning`, the ``learned`` skinning) the
weights are ``softmax(log p + delta(x, beta))`` over the same preset weights ``p``, learned from
the posed scans.

A posed point ``x'`` of a person finds its canonical candidates by forward skinning with the
preset weights (:class:`~neuralbody.models.skinning_deformer.ForwardSkinningDeformer`) and, with
a correction, by Broyden's method from those candidates under the learned weights
(:meth:`ShapeSkinning.correspondences`). Canonical
frame: the body model's rest pose of ``beta``; posed frame: the body frame (``Rh = 0, Th = 0``,
see :mod:`neuralbody.snarf.frame_pose`); metres.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.body.base import BodyModel
from neuralbody.gdna.learned_skinning import LearnedSkinning, PresetWeights, SkinningCorrection
from neuralbody.models.skinning_deformer import ForwardSkinningDeformer, SearchOptions, distinct_candidates
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
        correction: the learned skinning's correction network, or None (the fixed skinning).
        preset: the grid's node weights (its softmax, once), set with a correction (None without).
    """

    subject: Subject
    grid: SkinningWeightGrid
    groups: BoneGroups
    correction: SkinningCorrection | None = None
    preset: PresetWeights | None = None

    @property
    def learned(self) -> LearnedSkinning | None:
        """The learned skinning of this shape (None without a correction)."""
        if self.correction is None or self.preset is None:
            return None
        return LearnedSkinning(self.preset, self.correction, self.subject.shapes.float())

    def with_correction(self, correction: SkinningCorrection | None) -> "ShapeSkinning":
        """The same shape's skinning with ``correction`` (None: fixed)."""
        preset = self.preset
        if correction is not None and preset is None:
            with torch.no_grad():
                preset = PresetWeights(self.grid.node_weights().detach(), self.grid.origin, self.grid.spacing)
        return dataclasses.replace(self, correction=correction, preset=preset)

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
        """The forward-skinning correspondence search of one frame with bone transforms (B, 4, 4), preset weights."""
        return ForwardSkinningDeformer.for_frame(self.grid, self.groups, bone_transforms.float(), options)

    def skin(self, points: torch.Tensor, bone_transforms: torch.Tensor) -> torch.Tensor:
        """(N, 3) posed points of canonical points (N, 3) by bone transforms (B, 4, 4), fixed or learned weights."""
        learned = self.learned
        if learned is None:
            return self.grid.field(bone_transforms.float()).skin(points)
        return learned.skin(points, bone_transforms.float())

    def skin_with_jacobian(self, points: torch.Tensor, bone_transforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(posed (N, 3), Jacobians ``d x' / d x`` (N, 3, 3)) at canonical points (N, 3), fixed or learned weights."""
        learned = self.learned
        if learned is None:
            return self.grid.field(bone_transforms.float()).skin_with_jacobian(points)
        return learned.skin_with_jacobian(points, bone_transforms.float())

    def correspondences(self, posed: torch.Tensor, bone_transforms: torch.Tensor) -> Candidates:
        """Canonical candidates of posed points (N, 3) in the frame of bone transforms (B, 4, 4), no gradients.

        Fixed: the preset search. Learned: the preset search's converged candidates refined by
        Broyden under the learned weights (:func:`refine_candidates`).
        """
        with torch.no_grad():
            found = self.deformer(bone_transforms).correspondences(posed)
            learned = self.learned
            if learned is None:
                return Candidates(found.points, found.valid)
            return refine_candidates(learned, posed, Candidates(found.points, found.converged), bone_transforms)


@dataclasses.dataclass
class Candidates:
    """Canonical candidates of N posed points: ``points`` (N, K, 3) metres, ``valid`` (N, K) bool."""

    points: torch.Tensor
    valid: torch.Tensor


def refine_candidates(learned: LearnedSkinning, posed: torch.Tensor, start: Candidates, bone_transforms: torch.Tensor,
                      *, max_iterations: int = 20, distinct: float = 1e-3) -> Candidates:
    """Candidates under the learned weights: each ``start.valid`` candidate (N, K) refined by Broyden from where it is.

    Args:
        learned: the person's learned skinning.
        posed: (N, 3) posed points, metres.
        start: the starting candidates (N, K, 3); only those marked valid are searched, the rest stay invalid.
        bone_transforms: (B, 4, 4) the frame's bone transforms.
        max_iterations: Broyden steps per candidate.
        distinct: metres; valid candidates of one point closer than this count once.

    Returns:
        Candidates carrying implicit gradients when gradients are enabled (module docstring of
        :mod:`neuralbody.gdna.learned_skinning`); those that did not converge in the box are invalid.
    """
    count, k = start.valid.shape
    if posed.shape != (count, 3) or start.points.shape != (count, k, 3):
        raise ValueError(f"refine_candidates: posed (N, 3), points (N, K, 3), valid (N, K); got {tuple(posed.shape)}, "
                         f"{tuple(start.points.shape)}, {tuple(start.valid.shape)}")
    rows = torch.nonzero(start.valid.reshape(-1)).squeeze(1)
    targets = posed.repeat_interleave(k, dim=0)[rows]
    roots, usable = learned.search(targets, start.points.reshape(-1, 3)[rows].detach().to(posed.dtype), bone_transforms,
                                   max_iterations=max_iterations)
    points = start.points.detach().to(roots.dtype).reshape(-1, 3).index_put((rows,), roots).reshape(count, k, 3)
    valid = torch.zeros(count * k, dtype=torch.bool).index_put((rows,), usable).reshape(count, k)
    return Candidates(points, distinct_candidates(points.detach(), valid, distinct))


def shape_skinning(body: BodyModel, shapes: torch.Tensor, *, voxel: float = DEFAULT_WEIGHT_VOXEL,
                   correction: SkinningCorrection | None = None) -> ShapeSkinning:
    """The :class:`ShapeSkinning` of shape parameters (S,) of ``body``; ``voxel`` metres between weight nodes;
    ``correction``: the learned skinning's network (None: fixed)."""
    subject = make_subject(body, shapes)
    with torch.no_grad():
        grid = weight_grid_from_mesh(subject.rest_vertices, subject.faces, subject.vertex_weights, voxel_size=voxel,
                                     padding=DEFAULT_PADDING)
    grid.requires_grad_(False)
    return ShapeSkinning(subject, grid, bone_groups(subject.parents, subject.rest_joints)).with_correction(correction)
