"""A fitted scan with the detail geometry: the fitted surface refined by the detail normals, posed, scored.

:func:`neuralbody.gdna.fitting.fit_scan` scores the coarse network's surface (wearing the detail
network's normals). Here the fitted canonical surface is first refined so that its geometry
carries those normals (:mod:`neuralbody.gdna.detail_surface`), in canonical space, then posed by
the person's forward skinning into the scan's body frame (:func:`neuralbody.gdna.meshing.pose_mesh`)
and scored like the coarse one: Chamfer-L2 and point-to-surface
(:mod:`neuralbody.evaluation.geometry_metrics`), and the normal consistency at the vertices
(:mod:`neuralbody.gdna.fit_metrics`) with the refined surface's own normals (what its geometry now
says) and with the detail network's (what it wears).
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.evaluation.geometry_metrics import chamfer_l2, point_to_surface
from neuralbody.evaluation.mesh_extraction import Mesh
from neuralbody.gdna.detail_surface import RefineOptions, refine_normal_mesh
from neuralbody.gdna.fit_metrics import point_normal_consistency
from neuralbody.gdna.fitting import FitResult
from neuralbody.gdna.meshing import NormalMesh, pose_mesh, vertex_normals_of
from neuralbody.gdna.run_files import LoadedGenerator
from neuralbody.gdna.scans import Scan
from neuralbody.gdna.shape_skinning import shape_skinning


@dataclasses.dataclass
class DetailFit:
    """A fit's surface refined by its detail normals.

    Attributes:
        mesh: the refined surface posed like the scan (detail normals, colours), body frame, metres.
        chamfer_l2: square metres.
        point_to_surface: metres, refined surface to scan.
        normal_consistency_own: NC with the refined surface's own (area-weighted) vertex normals.
        normal_consistency_detail: NC with the detail network's normals.
    """

    mesh: NormalMesh
    chamfer_l2: float
    point_to_surface: float
    normal_consistency_own: float
    normal_consistency_detail: float


def detail_fit(loaded: LoadedGenerator, scan: Scan, result: FitResult, options: RefineOptions = RefineOptions(), *,
               samples: int = 20000, seed: int = 0) -> DetailFit:
    """Refine the fit ``result`` of ``scan`` by its detail normals, pose it and score it (module docstring).

    ``samples`` surface samples (and ``seed``) for Chamfer-L2 and P2S, as the fit's own scores.
    """
    skinning = shape_skinning(loaded.body, scan.shapes, correction=result.model.skinning)
    transforms = skinning.bone_transforms(scan.poses[None])[0]
    posed = pose_mesh(refine_normal_mesh(result.canonical, options), skinning, transforms)
    own = vertex_normals_of(result.model, result.person, Mesh(posed.vertices, posed.faces), detail=False)
    gt = (scan.vertices, scan.faces)
    points = torch.as_tensor(posed.vertices)
    return DetailFit(posed,
                     chamfer_l2((posed.vertices, posed.faces), gt, num_samples=samples, seed=seed),
                     point_to_surface((posed.vertices, posed.faces), gt, num_samples=samples, seed=seed),
                     point_normal_consistency(points, torch.as_tensor(own), *gt),
                     point_normal_consistency(points, torch.as_tensor(posed.normals), *gt))
