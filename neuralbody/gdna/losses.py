"""The two training losses: posed occupancy through the canonical candidates, and posed normals.

Coarse stage (SNARF's loss over gDNA's coarse network): the occupancy logit of a posed point is
the largest canonical logit over its valid candidates (``EMPTY_LOGIT`` with none), and the loss
the binary cross-entropy with its label::

    L_occ = BCE(max_{k valid} O(x*_k, z_shape, beta), inside)

plus, on canonical points known to be outside (their posed image is outside the scan,
:func:`~neuralbody.gdna.correspondences.free_space_targets`), ``L_free = BCE(O(x), 0)``.

Detail stage: the detail network's canonical normal ``n`` at a surface point's correspondence,
carried to the posed frame (``J^{-T} n``, normalised, :func:`~neuralbody.gdna.correspondences.posed_normals`),
against the scan's normal ``n'``::

    L_normal = mean (1 - <J^{-T} n / |J^{-T} n|, n'>)

and, when the model and the scan have colour, the colour network's albedo at the same
correspondences against the scan's colour there (:mod:`neuralbody.gdna.colour`)::

    L_colour = mean |C(x*, z_colour, f) - c'|
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuralbody.gdna.coarse import CoarseShape
from neuralbody.gdna.colour import colour_loss
from neuralbody.gdna.correspondences import NormalTargets, OccupancyTargets, posed_normals
from neuralbody.gdna.detail import DetailNormals
from neuralbody.gdna.model import GenerativeModel
from neuralbody.models.skinning_deformer import max_over_candidates
from neuralbody.snarf.posed_occupancy import EMPTY_LOGIT


def posed_logits(coarse: CoarseShape, candidates: torch.Tensor, valid: torch.Tensor, shape_code: torch.Tensor,
                 shapes: torch.Tensor) -> torch.Tensor:
    """(N,) posed occupancy logits from canonical candidates (N, K, 3) and their validity (N, K).

    ``shape_code`` (Ls,) and ``shapes`` (S,) are the scan's latent and body shape.
    """
    if candidates.ndim != 3 or candidates.shape[2] != 3 or valid.shape != candidates.shape[:2]:
        raise ValueError(f"posed_logits: candidates (N, K, 3) and valid (N, K), got {tuple(candidates.shape)}, "
                         f"{tuple(valid.shape)}")
    count, k = valid.shape
    rows = torch.nonzero(valid.reshape(-1)).squeeze(1)
    logits, _ = coarse(candidates.reshape(-1, 3)[rows], shape_code, shapes)
    flat = logits.new_full((count * k,), EMPTY_LOGIT).index_put((rows,), logits)
    return max_over_candidates(flat.reshape(count, k), valid, empty=EMPTY_LOGIT)


def occupancy_loss(coarse: CoarseShape, targets: OccupancyTargets, rows: torch.Tensor, shape_code: torch.Tensor,
                   shapes: torch.Tensor) -> torch.Tensor:
    """``L_occ`` over the target rows ``rows`` (M,) int64 of one scan."""
    logits = posed_logits(coarse, targets.candidates[rows], targets.valid[rows], shape_code, shapes)
    return F.binary_cross_entropy_with_logits(logits, targets.inside[rows])


def free_space_loss(coarse: CoarseShape, free: torch.Tensor, rows: torch.Tensor, shape_code: torch.Tensor,
                    shapes: torch.Tensor) -> torch.Tensor:
    """``L_free`` over the rows ``rows`` (M,) int64 of a scan's free canonical points (N, 3); 0 when there are none."""
    if not len(rows):
        return free.new_zeros(())
    logits, _ = coarse(free[rows], shape_code, shapes)
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def normal_loss(coarse: CoarseShape, detail: DetailNormals, targets: NormalTargets, rows: torch.Tensor,
                shape_code: torch.Tensor, detail_code: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """``L_normal`` over the surface rows ``rows`` (M,) int64 of one scan."""
    points = targets.canonical[rows]
    _, features = coarse(points, shape_code, shapes)
    predicted = posed_normals(detail(points, detail_code, features), targets.inverse_transpose[rows])
    return (1.0 - (predicted * targets.normals[rows]).sum(dim=1)).mean()


def surface_losses(model: GenerativeModel, targets: NormalTargets, rows: torch.Tensor, shape_code: torch.Tensor,
                   detail_code: torch.Tensor, colour_code: torch.Tensor | None,
                   shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(``L_normal``, ``L_colour`` or None) over the surface rows ``rows`` (M,) int64 of one scan, one coarse call.

    ``L_colour`` is None when ``colour_code`` is None, the model has no colour network or the
    targets no colours.
    """
    points = targets.canonical[rows]
    _, features = model.coarse(points, shape_code, shapes)
    predicted = posed_normals(model.detail(points, detail_code, features), targets.inverse_transpose[rows])
    normal = (1.0 - (predicted * targets.normals[rows]).sum(dim=1)).mean()
    if colour_code is None or model.colour is None or targets.colours is None:
        return normal, None
    return normal, colour_loss(model.colour(points, colour_code, features), targets.colours[rows])
