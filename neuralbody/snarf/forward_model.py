"""SNARF: canonical occupancy seen through forward skinning.

The occupancy of a posed point ``x'`` (body frame, metres) is SNARF's equation (9)::

    o(x') = max_{x* in X*} f(x*),      X* = {x : d(x) = x'},   d(x) = sum_b w_b(x) G_b [x; 1]

with ``f`` the canonical occupancy network (:mod:`neuralbody.snarf.canonical_occupancy`) and
``w`` the canonical skinning-weight grid, initialised from the body model and refined by
learning. The candidates ``X*`` come from
:class:`~neuralbody.models.skinning_deformer.ForwardSkinningDeformer` (K Broyden searches
per point); with gradients on they carry implicit gradients, so the occupancy loss reaches
the weight grid. Logits are compared instead of probabilities (the sigmoid is monotonic);
a point with no valid candidate gets :data:`~neuralbody.snarf.posed_occupancy.EMPTY_LOGIT`.

Because the weights are a function of canonical space alone, a pose never seen in training
needs nothing new: the same weights and shape, only other bone transforms.
"""

from __future__ import annotations

import torch

from neuralbody.models.skinning_deformer import ForwardSkinningDeformer, SearchOptions, max_over_candidates
from neuralbody.skinning.initial_guesses import BoneGroups
from neuralbody.skinning.weight_grid import SkinningWeightGrid
from neuralbody.snarf.frame_pose import FramePose
from neuralbody.snarf.posed_occupancy import EMPTY_LOGIT, PosedOccupancy


class ForwardOccupancy(PosedOccupancy):
    """Posed occupancy by forward skinning (module docstring).

    Args:
        weights: the canonical skinning-weight grid (learnable).
        groups: the skeleton's bone groups (starts of the correspondence search).
        occupancy: canonical occupancy network, ``(N, 3) -> (N,)`` logits, differentiable in the points.
        options: correspondence-search settings.
    """

    kind = "forward"

    def __init__(self, weights: SkinningWeightGrid, groups: BoneGroups, occupancy: torch.nn.Module,
                 options: SearchOptions = SearchOptions()) -> None:
        super().__init__()
        if groups.group.shape[0] != weights.num_bones:
            raise ValueError(f"ForwardOccupancy: the skeleton has {groups.group.shape[0]} bones, the weight grid "
                             f"{weights.num_bones}")
        self.weights = weights
        self.groups = groups
        self.occupancy = occupancy
        self.options = options

    def deformer(self, frame: FramePose) -> ForwardSkinningDeformer:
        """The frame's correspondence search (its skinning field is differentiable in the weight grid)."""
        return ForwardSkinningDeformer.for_frame(self.weights, self.groups, frame.bone_transforms, self.options)

    def logits(self, points: torch.Tensor, frame: FramePose) -> torch.Tensor:
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"ForwardOccupancy: points must be (N, 3), got {tuple(points.shape)}")
        found = self.deformer(frame).correspondences(points)
        count, k = found.valid.shape
        rows = torch.nonzero(found.valid.reshape(-1)).squeeze(1)  # the network sees valid candidates only
        canonical = found.points.reshape(-1, 3)[rows]
        logits = canonical.new_full((count * k,), EMPTY_LOGIT).index_put((rows,), self.occupancy(canonical))
        return max_over_candidates(logits.reshape(count, k), found.valid, empty=EMPTY_LOGIT)
