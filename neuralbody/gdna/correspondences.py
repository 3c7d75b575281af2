"""A scan's training targets carried to canonical space by forward skinning, once.

The coarse network is trained as SNARF trains its occupancy: a posed point ``x'`` with label
``inside`` has the occupancy ``o(x') = max_{x* in X*} O(x*)`` over its canonical candidates
``X* = {x : d(x) = x'}`` (:mod:`neuralbody.snarf.forward_model`). With the fixed skinning
(:mod:`neuralbody.gdna.shape_skinning`) the candidates of a fixed set of posed points never
change: they are searched once per scan (Broyden,
:class:`~neuralbody.models.skinning_deformer.ForwardSkinningDeformer`) and training reads them
from memory, which makes a training step a few network evaluations. With the learned skinning
these are the starts that training searches again (:mod:`neuralbody.gdna.learned_targets`);
the targets are built with whatever skinning they are given (``skinning.correspondences``,
``skinning.skin``), so a fitted scan gets the learned skinning's.

The detail network is trained on the scan's surface: points sampled on the posed mesh with
their face normals ``n'``. A surface point's canonical correspondence ``x*`` (its first valid
candidate) and the skinning Jacobian ``J = d x' / d x`` there carry a canonical normal ``n`` to
the posed frame as ``n' ~ J^{-T} n`` (normals transform by the inverse transpose). When the scan
has vertex colours, each surface point also carries the scan's colour there (the colour network's
target: colour lives in canonical space, so the colour at ``x*`` must be the scan's at ``x'``).

Canonical points that no posed sample reaches (beside the arms, the box's corners) would get no
supervision and grow blobs. SNARF's max gives them one for free: if a canonical point's posed image
``d(x)`` lies outside the scan, every candidate of ``d(x)``, ``x`` among them, must be outside. So
points uniform in the canonical box are skinned forward (closed form) and those landing outside the
scan are kept as canonical "free space" (:func:`free_space_targets`); those landing inside say
nothing (``x`` may not be the candidate that explains them).

Labelled points come from SNARF's training mix (:func:`neuralbody.snarf.samples.training_points`),
surface points from :func:`neuralbody.geometry.surface_sampling.sample_surface`. Metres;
canonical: the person's rest pose; posed: the scan's body frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.geometry.queries import WarpMesh
from neuralbody.geometry.surface_sampling import sample_surface
from neuralbody.gdna.scan_colours import surface_colours
from neuralbody.gdna.shape_skinning import ShapeSkinning
from neuralbody.skinning.forward_skinning import invert_jacobians
from neuralbody.snarf.samples import training_points


@dataclasses.dataclass
class OccupancyTargets:
    """Labelled posed points with their canonical candidates.

    Attributes:
        candidates: (N, K, 3) float32 canonical candidates, metres.
        valid: (N, K) bool, real correspondences.
        inside: (N,) float32 labels (1 inside the scan).
        posed: (N, 3) float32 the posed points, body frame, metres (what the learned skinning searches
            again), or None when not kept.
    """

    candidates: torch.Tensor
    valid: torch.Tensor
    inside: torch.Tensor
    posed: torch.Tensor | None = None


@dataclasses.dataclass
class NormalTargets:
    """Surface points of a scan with a canonical correspondence.

    Attributes:
        canonical: (M, 3) float32 canonical points, metres.
        inverse_transpose: (M, 3, 3) float32 ``J^{-T}``, carrying canonical normals to the posed frame.
        normals: (M, 3) float32 unit posed normals of the scan (face normals).
        colours: (M, 3) float32 the scan's colours at the points in [0, 1], or None (a scan without colours).
    """

    canonical: torch.Tensor
    inverse_transpose: torch.Tensor
    normals: torch.Tensor
    colours: torch.Tensor | None = None


def occupancy_targets(skinning: ShapeSkinning, bone_transforms: torch.Tensor, vertices: torch.Tensor,
                      faces: torch.Tensor, count: int, seed: int) -> OccupancyTargets:
    """``count`` labelled points around a posed mesh (vertices (V, 3), faces (F, 3)) and their candidates.

    Args:
        skinning: the person's skinning.
        bone_transforms: (B, 4, 4) the scan's bone transforms, canonical to body frame.
        vertices: (V, 3) posed mesh, body frame, metres.
        faces: (F, 3) int64 triangles.
        count: labelled points.
        seed: seeds the points.
    """
    labelled = training_points(WarpMesh(vertices, faces), count, seed)
    found = skinning.correspondences(labelled.points.float(), bone_transforms)
    return OccupancyTargets(found.points.float(), found.valid, labelled.inside.float(), labelled.points.float())


def normal_targets(skinning: ShapeSkinning, bone_transforms: torch.Tensor, vertices: torch.Tensor,
                   faces: torch.Tensor, count: int, seed: int, colours: torch.Tensor | None = None) -> NormalTargets:
    """Up to ``count`` surface points of a posed mesh (vertices (V, 3), faces (F, 3)) with a canonical point.

    Points without a valid candidate (or a singular Jacobian) are dropped. ``colours`` (V, 3) in
    [0, 1], the mesh's vertex colours, or None; the targets carry them at the points.
    """
    samples = sample_surface(vertices, faces, count, seed)
    found = surface_correspondences(skinning, bone_transforms, samples.points)
    at = None if colours is None else surface_colours(vertices, faces, colours, samples.points)[found.kept]
    return NormalTargets(found.canonical, found.inverse_transpose, samples.normals[found.kept].float(), at)


@dataclasses.dataclass
class SurfaceCorrespondences:
    """Posed surface points' canonical correspondences (first valid candidate, invertible Jacobian).

    Attributes:
        kept: (N,) bool, the posed points that have one.
        canonical: (M, 3) float32 canonical points of the kept points, metres (M = kept.sum()).
        inverse_transpose: (M, 3, 3) float32 ``J^{-T}`` there.
    """

    kept: torch.Tensor
    canonical: torch.Tensor
    inverse_transpose: torch.Tensor


def surface_correspondences(skinning: ShapeSkinning, bone_transforms: torch.Tensor,
                            posed: torch.Tensor) -> SurfaceCorrespondences:
    """The canonical correspondence and ``J^{-T}`` of posed points (N, 3), body frame, metres (bone transforms
    (B, 4, 4)); points without a valid candidate or with a singular Jacobian are not kept."""
    if posed.ndim != 2 or posed.shape[1] != 3:
        raise ValueError(f"surface_correspondences: posed must be (N, 3), got {tuple(posed.shape)}")
    found = skinning.correspondences(posed.float(), bone_transforms)
    with torch.no_grad():
        has = found.valid.any(dim=1)
        first = found.valid.float().argmax(dim=1)
        canonical = found.points[torch.arange(len(first)), first][has].float()
        _, jacobian = skinning.skin_with_jacobian(canonical, bone_transforms)
        inverse, invertible = invert_jacobians(jacobian)
    kept = has.clone()
    kept[has] = invertible
    return SurfaceCorrespondences(kept, canonical[invertible], inverse.transpose(1, 2)[invertible].float())


def free_space_targets(skinning: ShapeSkinning, bone_transforms: torch.Tensor, vertices: torch.Tensor,
                       faces: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """(M, 3) float32 canonical points, of ``count`` uniform in the person's box, whose posed image is outside the scan.

    Args:
        skinning: the person's skinning.
        bone_transforms: (B, 4, 4) the scan's bone transforms, canonical to body frame.
        vertices: (V, 3) posed mesh, body frame, metres.
        faces: (F, 3) int64 triangles.
        count: canonical points drawn.
        seed: seeds them.
    """
    points = free_space_candidates(skinning, count, seed)
    return points[outside_scan(skinning, bone_transforms, WarpMesh(vertices, faces), points)]


def free_space_candidates(skinning: ShapeSkinning, count: int, seed: int) -> torch.Tensor:
    """(count, 3) float32 canonical points uniform in the person's box, seeded (what :func:`free_space_targets` tests)."""
    if count < 0:
        raise ValueError(f"free_space_candidates: count must be >= 0, got {count}")
    unit = torch.as_tensor(np.random.default_rng([seed, 11]).random((count, 3)), dtype=torch.float32)
    return skinning.box_min + unit * (skinning.box_max - skinning.box_min)


def outside_scan(skinning: ShapeSkinning, bone_transforms: torch.Tensor, mesh: WarpMesh, points: torch.Tensor) -> torch.Tensor:
    """(M,) bool: canonical points (M, 3) whose forward-skinned image (bone transforms (B, 4, 4)) is outside the scan."""
    with torch.no_grad():
        posed = skinning.skin(points, bone_transforms)
    return ~mesh.inside(posed)


def posed_normals(normals: torch.Tensor, inverse_transpose: torch.Tensor) -> torch.Tensor:
    """(M, 3) unit posed normals ``J^{-T} n / |J^{-T} n|`` of canonical normals (M, 3) and ``J^{-T}`` (M, 3, 3)."""
    if normals.ndim != 2 or normals.shape[1] != 3 or inverse_transpose.shape != (normals.shape[0], 3, 3):
        raise ValueError(f"posed_normals: normals (M, 3) and inverse_transpose (M, 3, 3), got {tuple(normals.shape)}, "
                         f"{tuple(inverse_transpose.shape)}")
    moved = (inverse_transpose @ normals[:, :, None])[:, :, 0]
    return torch.nn.functional.normalize(moved, dim=1)
