"""Canonical correspondences of deformed points: IMAvatar's root finding with implicit gradients.

For a deformed (world) point ``y`` the canonical candidates are roots of ``d(x) - y = 0``
(:func:`neuralbody.head.deformation.deform`):

1. one start per bone in ``start_bones`` (default: the head and the jaw), ``x_0 = G_b^{-1} y``
   (:func:`neuralbody.skinning.initial_guesses.rigid_guesses`), the inverse Jacobian started at
   ``J(x_0)^{-1}`` in closed form;
2. Broyden's method from each (:func:`neuralbody.skinning.broyden.broyden`, the project's
   solver; IMAvatar's own choice);
3. a candidate is valid when its residual is below the tolerance and it lies inside the
   canonical box; duplicates of an earlier valid candidate are dropped
   (:func:`neuralbody.models.skinning_deformer.distinct_candidates`);
4. with gradients on, the candidates carry implicit gradients with respect to the
   deformation grid and the deformed points (:func:`neuralbody.skinning.implicit_grad.implicit_root`):
   ``dx*/dgrid = -J^{-1} dd/dgrid``, so the expression, pose-corrective and skinning fields
   learn from the pixels through the correspondences, without differentiating the solver.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.head.deformation import FrameCode, deform, frame_grid
from neuralbody.head.grid_box import GridBox
from neuralbody.models.deformer import CanonicalPoints
from neuralbody.models.skinning_deformer import distinct_candidates
from neuralbody.skinning.broyden import broyden
from neuralbody.skinning.forward_skinning import invert_jacobians
from neuralbody.skinning.implicit_grad import implicit_root
from neuralbody.skinning.initial_guesses import rigid_guesses


@dataclasses.dataclass(frozen=True)
class RootOptions:
    """Settings of the search.

    Attributes:
        start_bones: bones whose rigid inverse starts a candidate (indices into the rig's bones).
        tolerance: largest residual of a valid candidate, metres.
        max_iterations: most Broyden steps per start.
        max_step: longest Broyden step, metres.
        distinct: candidates closer than this are one, metres.
    """

    start_bones: tuple[int, ...] = (2, 3)
    tolerance: float = 1e-4
    max_iterations: int = 12
    max_step: float = 0.03
    distinct: float = 1e-3

    def __post_init__(self) -> None:
        if not self.start_bones or self.tolerance <= 0 or self.max_iterations < 1 or self.max_step <= 0:
            raise ValueError(f"RootOptions: need start bones, tolerance > 0, max_iterations >= 1, max_step > 0; "
                             f"got {self}")


def _residual_function(box: GridBox, code: FrameCode):
    """``(x (M, 3), grid) -> d(x) (M, 3)``, what implicit_root differentiates in the grid."""
    def function(x: torch.Tensor, grid_values: torch.Tensor) -> torch.Tensor:
        return deform(x, frame_grid(grid_values, code), box, code.transforms)[0]

    return function


def find_canonical(points: torch.Tensor, grid: torch.Tensor, box: GridBox, code: FrameCode,
                   options: RootOptions = RootOptions(), *, frame_values: torch.Tensor | None = None) -> CanonicalPoints:
    """Canonical candidates (N, K, 3) and validity (N, K) of deformed points (N, 3), world metres.

    Args:
        points: (N, 3) deformed points.
        grid: (X, Y, Z, C) deformation fields (gradients flow to it by implicit differentiation).
        box: the grid's lattice (the canonical box).
        code: the frame.
        options: search settings.
        frame_values: (X, Y, Z, 3 + B) ``frame_grid(grid.detach(), code)`` when the caller has
            it already (inference folds it once per frame); computed here when None.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"find_canonical: points must be (N, 3), got {tuple(points.shape)}")
    count, k = points.shape[0], len(options.start_bones)
    with torch.no_grad():
        bones = torch.tensor(options.start_bones, device=points.device).expand(count, k)
        starts = rigid_guesses(points.detach(), bones, code.transforms.to(points)).reshape(-1, 3)
        targets = points.detach().repeat_interleave(k, dim=0)
        detached = frame_grid(grid.detach(), code) if frame_values is None else frame_values
        value, jacobian = deform(starts, detached, box, code.transforms, with_jacobian=True)
        result = broyden(
            lambda x, rows: deform(x, detached, box, code.transforms)[0] - targets[rows],
            starts,
            invert_jacobians(jacobian)[0],
            tolerance=options.tolerance,
            max_iterations=options.max_iterations,
            max_step=options.max_step,
            initial_residual=value - targets,
        )
    usable = result.converged & box.contains(result.solution)
    solution = result.solution
    if torch.is_grad_enabled() and (grid.requires_grad or points.requires_grad):
        with torch.no_grad():
            _, at_root = deform(solution, detached, box, code.transforms, with_jacobian=True)
        solution = implicit_root(_residual_function(box, code), solution,
                                 points.repeat_interleave(k, dim=0), at_root, (grid,), usable=usable)
    solution = solution.reshape(count, k, 3)
    valid = distinct_candidates(solution.detach(), usable.reshape(count, k), options.distinct)
    return CanonicalPoints(points=solution, valid=valid)
