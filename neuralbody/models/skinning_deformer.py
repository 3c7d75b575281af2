"""The forward-skinning deformer (SNARF's correspondence search), usable by every model.

A canonical point ``x`` moves to ``x' = d(x) = sum_b w_b(x) G_b [x; 1]`` with weights from a
learnable grid (:class:`~neuralbody.skinning.weight_grid.SkinningWeightGrid`). Going back,
the canonical candidates of a posed point ``x'`` are the roots of ``d(x) - x' = 0``:

1. K starts ``x_0 = G_b^{-1} x'``, one per bone chosen for the point
   (:mod:`neuralbody.skinning.initial_guesses`);
2. Broyden's method from each (:func:`~neuralbody.skinning.broyden.broyden`), the inverse
   Jacobian started at ``A(x_0)^{-1}``, the inverse of the blended rotation-and-scale part of
   the skinning map at the start (the full Jacobian there adds the weights' slope, which
   points away from the root more often than it helps: measured on Anny, 97.6 % against
   96.1 % of starts converge);
3. a candidate is valid when its residual ``|d(x) - x'|`` is below the tolerance, it lies
   inside the grid's box, and no earlier valid candidate of the same point is within
   ``distinct`` of it (the same correspondence found twice counts once);
4. when gradients are on, the candidates carry implicit gradients with respect to the weight
   grid, the bone transforms and the posed points
   (:func:`~neuralbody.skinning.implicit_grad.implicit_root`).

Callers combine per-candidate values with :func:`max_over_candidates` (SNARF: the occupancy of
a posed point is the largest occupancy over its valid candidates). Posed points are in the
frame of the bone transforms (world for ``BodyOutput.bone_transforms``); metres throughout.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.deformer import CanonicalPoints, Deformer
from neuralbody.skinning.broyden import broyden
from neuralbody.skinning.forward_skinning import SkinningField, invert_jacobians
from neuralbody.skinning.implicit_grad import implicit_root
from neuralbody.skinning.initial_guesses import DEFAULT_CELL, BoneGroups, choose_bones, posed_heads, rigid_guesses
from neuralbody.skinning.weight_grid import SkinningWeightGrid


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """Settings of the correspondence search.

    Attributes:
        num_candidates: K, starts (and candidates) per posed point; at most the skeleton's groups
            are used.
        tolerance: largest residual ``|d(x) - x'|`` of a valid candidate, metres.
        max_iterations: most Broyden steps per start.
        max_step: longest Broyden step, metres.
        distinct: valid candidates of one point closer than this are one correspondence, metres.
        cell: posed cells sharing one choice of start bones, metres (None: per point); see
            :func:`~neuralbody.skinning.initial_guesses.choose_bones`.
    """

    num_candidates: int = 3
    tolerance: float = 1e-5
    max_iterations: int = 20
    max_step: float = 0.1
    distinct: float = 1e-3
    cell: float | None = DEFAULT_CELL

    def __post_init__(self) -> None:
        if self.num_candidates < 1 or self.max_iterations < 1:
            raise ValueError(f"SearchOptions: num_candidates and max_iterations must be >= 1, got "
                             f"{self.num_candidates}, {self.max_iterations}")
        if self.tolerance <= 0 or self.max_step <= 0 or self.distinct < 0:
            raise ValueError(f"SearchOptions: tolerance and max_step must be > 0 and distinct >= 0, got "
                             f"{self.tolerance}, {self.max_step}, {self.distinct}")


@dataclasses.dataclass
class Correspondences(CanonicalPoints):
    """Canonical candidates of N posed points with the search's diagnostics.

    Attributes:
        points: (N, K, 3) candidates, canonical, metres (carry implicit gradients when enabled).
        valid: (N, K) bool, real, distinct correspondences.
        residual: (N, K) ``|d(x) - x'|`` at the candidates, metres.
        converged: (N, K) bool, residual below the tolerance (duplicates and out-of-box included).
        bones: (N, K) int64 bone of each start.
        iterations: (N, K) int64 Broyden steps taken.
    """

    residual: torch.Tensor
    converged: torch.Tensor
    bones: torch.Tensor
    iterations: torch.Tensor


def _skin_field(points: torch.Tensor, transforms: torch.Tensor, origin: torch.Tensor, spacing: torch.Tensor):
    """``d(x)`` (M, 3) of canonical points (M, 3) by a field's transforms (what implicit_root differentiates)."""
    return SkinningField(transforms, origin, spacing).skin(points)


def distinct_candidates(points: torch.Tensor, valid: torch.Tensor, distance: float) -> torch.Tensor:
    """(N, K) valid with every candidate within ``distance`` of an earlier valid one of its point dropped.

    Args:
        points: (N, K, 3) candidates, metres.
        valid: (N, K) bool.
        distance: metres.
    """
    kept = valid.clone()
    for k in range(1, points.shape[1]):
        near = (points[:, :k] - points[:, k : k + 1]).norm(dim=2) < distance  # (N, k)
        kept[:, k] &= ~(near & kept[:, :k]).any(dim=1)
    return kept


@dataclasses.dataclass
class ForwardSkinningDeformer(Deformer):
    """Posed points to canonical candidates by forward skinning (module docstring), for one frame.

    Attributes:
        field: the frame's skinning map (differentiable in the grid and the bone transforms).
        bone_transforms: (B, 4, 4) the frame's bone transforms, canonical to posed.
        groups: the skeleton's bone groups (starts of the search).
        options: search settings.
    """

    field: SkinningField
    bone_transforms: torch.Tensor
    groups: BoneGroups
    options: SearchOptions = SearchOptions()

    @classmethod
    def for_frame(
        cls,
        grid: SkinningWeightGrid,
        groups: BoneGroups,
        bone_transforms: torch.Tensor,
        options: SearchOptions | None = None,
    ) -> "ForwardSkinningDeformer":
        """The deformer of a frame with bone transforms (B, 4, 4) (one row of ``BodyOutput.bone_transforms``)."""
        if groups.group.shape[0] != grid.num_bones:
            raise ValueError(f"ForwardSkinningDeformer: the skeleton has {groups.group.shape[0]} bones, the weight "
                             f"grid {grid.num_bones}")
        return cls(grid.field(bone_transforms), bone_transforms, groups, options or SearchOptions())

    def to_canonical(self, points: torch.Tensor) -> CanonicalPoints:
        return self.correspondences(points)

    def correspondences(self, points: torch.Tensor) -> Correspondences:
        """Canonical candidates (N, K) of posed points (N, 3), metres, with diagnostics."""
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"ForwardSkinningDeformer: points must be (N, 3), got {tuple(points.shape)}")
        options, field = self.options, self.field
        count, k = points.shape[0], min(self.options.num_candidates, self.groups.num_groups)
        posed = points.detach().to(field.transforms.dtype)
        with torch.no_grad():
            transforms = self.bone_transforms.detach().to(posed.dtype)
            bones = choose_bones(posed, self.groups, posed_heads(self.groups, transforms), k, options.cell)
            starts = rigid_guesses(posed, bones, transforms).reshape(-1, 3)
            detached = SkinningField(field.transforms.detach(), field.origin, field.spacing)
            blend, _ = detached.blended(starts)
            targets = posed.repeat_interleave(k, dim=0)  # (N K, 3)
            result = broyden(
                lambda x, rows: detached.skin(x) - targets[rows],
                starts,
                invert_jacobians(blend[:, :, :3])[0],
                tolerance=options.tolerance,
                max_iterations=options.max_iterations,
                max_step=options.max_step,
                initial_residual=(blend[:, :, :3] @ starts[:, :, None])[:, :, 0] + blend[:, :, 3] - targets,
            )
        usable = result.converged & field.inside(result.solution)
        solution = result.solution
        if torch.is_grad_enabled() and (field.transforms.requires_grad or points.requires_grad):
            with torch.no_grad():
                _, jacobian = detached.skin_with_jacobian(solution)
            params = (field.transforms, field.origin, field.spacing)
            targets = points.to(posed.dtype).repeat_interleave(k, dim=0)
            solution = implicit_root(_skin_field, solution, targets, jacobian, params, usable=usable)
        solution = solution.reshape(count, k, 3)
        valid = distinct_candidates(solution.detach(), usable.reshape(count, k), options.distinct)
        return Correspondences(
            points=solution,
            valid=valid,
            residual=result.residual.reshape(count, k),
            converged=result.converged.reshape(count, k),
            bones=bones,
            iterations=result.iterations.reshape(count, k),
        )


def max_over_candidates(values: torch.Tensor, valid: torch.Tensor, empty: float = 0.0) -> torch.Tensor:
    """(N,) the largest of values (N, K) over each point's valid candidates (N, K); ``empty`` where none is valid.

    SNARF's occupancy of a posed point: the maximum canonical occupancy over its
    correspondences. The gradient flows to the chosen candidate only.
    """
    if values.shape != valid.shape or values.ndim != 2:
        raise ValueError(f"max_over_candidates: values and valid must both be (N, K), got {tuple(values.shape)}, "
                         f"{tuple(valid.shape)}")
    masked = values.masked_fill(~valid, float("-inf")).max(dim=1).values
    return torch.where(valid.any(dim=1), masked, torch.full_like(masked, empty))
