"""The training scans prepared once: each person's skinning, each scan's targets in canonical space.

For every scan of the list: the person's skinning from their body shape (built once per person,
:func:`~neuralbody.gdna.shape_skinning.shape_skinning`), the scan's bone transforms from its
pose, and its occupancy and normal targets (:mod:`neuralbody.gdna.correspondences`), seeded by
``(seed, scan index)`` so a resumed run rebuilds the same targets; with view options, also its
normal-map views for the adversarial loss (:mod:`neuralbody.gdna.normal_views`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from neuralbody.body.base import BodyModel
from neuralbody.gdna.correspondences import (NormalTargets, OccupancyTargets, free_space_candidates, normal_targets,
                                             occupancy_targets, outside_scan)
from neuralbody.gdna.normal_views import NormalViews, ViewOptions, scan_views
from neuralbody.gdna.scans import ScanRef, load_scan
from neuralbody.gdna.shape_skinning import ShapeSkinning, shape_skinning
from neuralbody.geometry.queries import WarpMesh
from neuralbody.io.progress import progress_bar


@dataclasses.dataclass
class PreparedScan:
    """One training scan's targets.

    Attributes:
        shapes: (S,) the body shape ``beta``.
        occupancy: labelled posed points with their canonical candidates.
        normals: surface points with canonical correspondences, posed normals (and colours, if the scan has them).
        free: (M, 3) canonical points known to be outside (posed image outside the scan).
        skinning: the person's skinning (what the learned skinning searches with), or None.
        transforms: (B, 4, 4) the scan's bone transforms, canonical to body frame, or None.
        free_candidates: (F, 3) the canonical points ``free`` was chosen from, or None.
        mesh: the posed scan (what the learned skinning relabels the free space against), or None.
        views: the scan's normal-map views with their correspondences (the adversarial loss), or None.
    """

    shapes: torch.Tensor
    occupancy: OccupancyTargets
    normals: NormalTargets
    free: torch.Tensor
    skinning: ShapeSkinning | None = None
    transforms: torch.Tensor | None = None
    free_candidates: torch.Tensor | None = None
    mesh: WarpMesh | None = None
    views: NormalViews | None = None


@dataclasses.dataclass(frozen=True)
class TargetSizes:
    """Points prepared per scan: ``occupancy`` labelled points, ``surface`` surface points, ``free``
    canonical points tested for free space.

    The points are drawn once and every step draws from them, so they must be many: with 4096 a
    scan (8000 steps of 1024 points, each point seen ~170 times) the coarse network memorised
    them (binary cross-entropy 0.09 on a training scan's own points, 0.58 on fresh points of the
    same scan, its code its own) and grew sheets between them; with 32768, 0.16 and 0.17.
    """

    occupancy: int = 32768
    surface: int = 16384
    free: int = 32768

    def __post_init__(self) -> None:
        if self.occupancy < 1 or self.surface < 1 or self.free < 0:
            raise ValueError(f"TargetSizes: occupancy, surface >= 1 and free >= 0, got {self}")


LEGACY_SIZES = TargetSizes(occupancy=4096, surface=2048, free=4096)  # runs written before the sizes were kept


def prepare_scan(skinning: ShapeSkinning, folder: Path, frame: int, sizes: TargetSizes, seed: int,
                 views: ViewOptions | None = None) -> PreparedScan:
    """The targets of frame ``frame`` of a folder of posed meshes, for the person of ``skinning`` (and its normal-map
    views when ``views`` is given)."""
    scan = load_scan(folder, frame)
    transforms = skinning.bone_transforms(scan.poses[None])[0]
    mesh, candidates = WarpMesh(scan.vertices, scan.faces), free_space_candidates(skinning, sizes.free, seed + 2)
    return PreparedScan(scan.shapes,
                        occupancy_targets(skinning, transforms, scan.vertices, scan.faces, sizes.occupancy, seed),
                        normal_targets(skinning, transforms, scan.vertices, scan.faces, sizes.surface, seed + 1,
                                       scan.colours),
                        candidates[outside_scan(skinning, transforms, mesh, candidates)],
                        skinning, transforms, candidates, mesh,
                        None if views is None else scan_views(skinning, transforms, scan.vertices, scan.faces, views))


def prepare_scans(corpus: Path, refs: list[ScanRef], body: BodyModel, sizes: TargetSizes, seed: int, *,
                  progress: bool = True, views: ViewOptions | None = None) -> tuple[list[PreparedScan], list[ShapeSkinning]]:
    """Every scan of ``refs`` prepared (with normal-map views when ``views`` is given), and the skinning of each
    (shared by a person's scans)."""
    people: dict[str, ShapeSkinning] = {}
    prepared, skinnings = [], []
    for index, ref in enumerate(progress_bar(refs, enabled=progress, desc="gdna scans", unit="scan")):
        folder = Path(corpus) / ref.subject
        if ref.subject not in people:
            people[ref.subject] = shape_skinning(body, load_scan(folder, ref.frame).shapes)
        skinning = people[ref.subject]
        prepared.append(prepare_scan(skinning, folder, ref.frame, sizes, seed=1000 * seed + 2 * index, views=views))
        skinnings.append(skinning)
    return prepared, skinnings
