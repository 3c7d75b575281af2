"""A scan's training targets under the learned skinning: correspondences searched again as the weights learn.

With the fixed skinning a scan's canonical candidates are found once
(:mod:`neuralbody.gdna.correspondences`). With the learned skinning
(:mod:`neuralbody.gdna.learned_skinning`) they move as the weights change, so each coarse step
searches the drawn labelled points again (SNARF, gDNA), cheaply:

* **warm** (most steps): each candidate the scan holds for a drawn point and that was valid is
  refined by Broyden under the current weights, starting where it is (the weights change a little
  a step, so a few iterations do); candidates that were not valid stay so;
* **cold** (every ``research_every``-th step): the drawn points are searched from the rigid
  guesses of their nearest bone groups (:mod:`neuralbody.skinning.initial_guesses`), as the
  preset search does, so correspondences that appear as the weights learn are found.

Either way the result is written back to the scan's targets (without gradients: the next warm
start) and returned with SNARF's implicit gradients into the skinning network. The occupancy
loss over them is the fixed path's (:func:`neuralbody.gdna.losses.posed_logits`).

The canonical free space (points whose posed image is outside the scan) was found with the
preset weights too; on every cold step each drawn scan's candidates are tested again under the
current weights (:func:`relabelled_free_space`), so the free-space loss does not contradict
where the learned skinning sends a point.

The detail stage keeps the skinning fixed; its surface targets were found with the preset
weights, so they are moved once to the learned weights before it starts
(:func:`relearn_normal_targets`): each surface point's canonical correspondence refined by
Broyden, its ``J^{-T}`` recomputed, the points that lose their correspondence dropped.

Canonical: the person's rest pose; posed: the scan's body frame; metres.
"""

from __future__ import annotations

import torch

from neuralbody.gdna.correspondences import NormalTargets, OccupancyTargets, outside_scan
from neuralbody.gdna.shape_skinning import Candidates, ShapeSkinning, refine_candidates
from neuralbody.geometry.queries import WarpMesh
from neuralbody.models.skinning_deformer import SearchOptions
from neuralbody.skinning.forward_skinning import invert_jacobians
from neuralbody.skinning.initial_guesses import choose_bones, posed_heads, rigid_guesses

WARM_ITERATIONS = 8  # Broyden steps of a warm start (converged ones stop after 1-3)


def search_occupancy(skinning: ShapeSkinning, bone_transforms: torch.Tensor, targets: OccupancyTargets,
                     rows: torch.Tensor, *, cold: bool) -> Candidates:
    """Candidates (M, K) of the labelled points ``rows`` (M,) int64 under the learned weights, written back to ``targets``.

    Args:
        skinning: the person's skinning, with a correction network.
        bone_transforms: (B, 4, 4) the scan's bone transforms.
        targets: the scan's labelled points (with their posed points); their candidates are updated in place.
        rows: (M,) int64 the drawn points.
        cold: search from the bones' rigid guesses instead of the held candidates (module docstring).
    """
    learned = skinning.learned
    if learned is None or targets.posed is None:
        raise ValueError("search_occupancy: needs a learned skinning and targets with their posed points")
    posed = targets.posed[rows]
    if cold:
        k = targets.candidates.shape[1]
        transforms = bone_transforms.float()
        with torch.no_grad():
            bones = choose_bones(posed, skinning.groups, posed_heads(skinning.groups, transforms),
                                 min(k, skinning.groups.num_groups), SearchOptions().cell)
            starts = rigid_guesses(posed, bones, transforms)
        if starts.shape[1] < k:  # fewer groups than candidates: pad with invalid starts
            starts = torch.cat([starts, starts[:, :1].expand(-1, k - starts.shape[1], -1)], dim=1)
        valid = torch.zeros(starts.shape[:2], dtype=torch.bool)
        valid[:, : bones.shape[1]] = True
        start = Candidates(starts, valid)
        found = refine_candidates(learned, posed, start, bone_transforms.float())
    else:
        start = Candidates(targets.candidates[rows], targets.valid[rows])
        found = refine_candidates(learned, posed, start, bone_transforms.float(), max_iterations=WARM_ITERATIONS)
    targets.candidates[rows] = found.points.detach().float()
    targets.valid[rows] = found.valid
    return found


def relearn_normal_targets(skinning: ShapeSkinning, bone_transforms: torch.Tensor, targets: NormalTargets) -> NormalTargets:
    """The surface targets (found with the preset weights) moved to the learned weights (module docstring)."""
    learned = skinning.learned
    if learned is None:
        raise ValueError("relearn_normal_targets: needs a learned skinning")
    if not len(targets.canonical):
        return targets
    transforms = bone_transforms.float()
    with torch.no_grad():
        posed = skinning.grid.field(transforms).skin(targets.canonical)  # the surface points (roots of the preset)
        found = refine_candidates(learned, posed, Candidates(targets.canonical[:, None],
                                                             torch.ones(len(posed), 1, dtype=torch.bool)), transforms)
        keep = found.valid[:, 0]
        canonical = found.points[:, 0][keep].float()
        _, jacobian = learned.skin_with_jacobian(canonical, transforms)
        inverse, invertible = invert_jacobians(jacobian)
    colours = None if targets.colours is None else targets.colours[keep][invertible]
    return NormalTargets(canonical[invertible], inverse.transpose(1, 2)[invertible].float(),
                         targets.normals[keep][invertible], colours)


def relabelled_free_space(skinning: ShapeSkinning, bone_transforms: torch.Tensor, mesh: WarpMesh,
                          candidates: torch.Tensor) -> torch.Tensor:
    """(M, 3) the canonical candidates (F, 3) whose posed image under ``skinning`` (learned) is outside ``mesh``."""
    return candidates[outside_scan(skinning, bone_transforms, mesh, candidates)]


def skinning_regulariser(skinning: ShapeSkinning, count: int, generator: torch.Generator) -> torch.Tensor:
    """SNARF's ``mean sum_b (W_b - p_b)^2`` at ``count`` rest vertices of the person's body, drawn by ``generator``."""
    learned = skinning.learned
    if learned is None:
        raise ValueError("skinning_regulariser: needs a learned skinning")
    vertices = skinning.subject.rest_vertices
    rows = torch.randint(len(vertices), (count,), generator=generator)
    return learned.regulariser(vertices[rows].float())


def with_learned_skinning(skinnings: list[ShapeSkinning], correction) -> list[ShapeSkinning]:
    """The skinnings with the correction network ``correction`` (SkinningCorrection or None), one per distinct person."""
    made: dict[int, ShapeSkinning] = {}
    return [made.setdefault(id(s), s.with_correction(correction)) for s in skinnings]

