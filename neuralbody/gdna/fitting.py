"""Fitting a trained model to a new posed scan: the latents that reproduce it, and how close they come.

Given a posed mesh of a person the model never saw and the body model's pose and shape for
it, the networks stay fixed and only the person's codes are optimised (auto-decoding at test
time, as DeepSDF and gDNA infer a code), from the mean of the training codes:

1. ``z_shape`` by the coarse stage's loss on labelled points around the scan, carried to the
   person's canonical space by forward skinning, and on the canonical free space
   (:mod:`neuralbody.gdna.correspondences`), plus the latent prior;
2. ``z_detail`` by the detail stage's normal loss on the scan's surface, plus the prior.

The fitted canonical surface, posed by the scan's bone transforms (:mod:`neuralbody.gdna.meshing`),
is scored against the scan in its body frame: Chamfer-L2 and point-to-surface
(:mod:`neuralbody.evaluation.geometry_metrics`) and the normal consistency at the vertices
(:mod:`neuralbody.gdna.fit_metrics`) with the coarse surface's own normals and with the
detail network's (the geometry is the same: the detail network changes normals only).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from neuralbody.evaluation.geometry_metrics import chamfer_l2, point_to_surface
from neuralbody.evaluation.mesh_extraction import Mesh
from neuralbody.gdna.correspondences import free_space_targets, normal_targets, occupancy_targets
from neuralbody.gdna.fit_metrics import point_normal_consistency
from neuralbody.gdna.latents import prior_loss
from neuralbody.gdna.losses import free_space_loss, normal_loss, occupancy_loss
from neuralbody.gdna.meshing import NormalMesh, Person, canonical_mesh, pose_mesh, vertex_normals_of
from neuralbody.gdna.run_files import LoadedGenerator
from neuralbody.gdna.scans import Scan
from neuralbody.gdna.shape_skinning import shape_skinning
from neuralbody.io.progress import progress_bar


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How a scan is fitted.

    Attributes:
        shape_steps: Adam steps on ``z_shape``.
        detail_steps: Adam steps on ``z_detail``.
        points: points a step.
        lr: learning rate of the codes.
        prior_weight: ``lambda`` of the latent prior.
        voxel: marching-cubes spacing of the fitted surface, metres.
        metric_samples: surface samples of Chamfer-L2 and P2S.
        seed: seeds the targets and draws.
    """

    shape_steps: int = 300
    detail_steps: int = 150
    points: int = 1024
    lr: float = 2e-2
    prior_weight: float = 1e-3
    voxel: float = 0.015
    metric_samples: int = 20000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.shape_steps < 0 or self.detail_steps < 0 or self.points < 1 or not self.lr > 0:
            raise ValueError(f"FitSettings: steps >= 0, points >= 1, lr > 0; got {self}")
        if not self.voxel > 0 or self.metric_samples < 1 or self.prior_weight < 0:
            raise ValueError(f"FitSettings: voxel > 0, metric_samples >= 1, prior_weight >= 0; got {self}")


@dataclasses.dataclass
class FitResult:
    """A fitted scan.

    Attributes:
        person: the fitted codes (with the scan's body shape).
        mesh: the fitted surface posed like the scan, detail normals, body frame, metres.
        chamfer_l2: square metres.
        point_to_surface: metres, fitted surface to scan.
        normal_consistency_coarse: NC with the coarse surface's own normals.
        normal_consistency_detail: NC with the detail network's normals.
        final_loss: the last shape-fitting loss (occupancy and free space, without the prior).
        seconds: wall time.
    """

    person: Person
    mesh: NormalMesh
    chamfer_l2: float
    point_to_surface: float
    normal_consistency_coarse: float
    normal_consistency_detail: float
    final_loss: float
    seconds: float


def _optimise(code: torch.Tensor, steps: int, settings: FitSettings, loss_of, desc: str, progress: bool) -> float:
    """Adam on ``code`` (a leaf) for ``steps`` steps of ``loss_of(rows_rng) + prior``; the last data loss."""
    optimizer = torch.optim.Adam([code], lr=settings.lr)
    last = float("nan")
    for step in progress_bar(range(steps), enabled=progress, desc=desc, unit="step"):
        data = loss_of(np.random.default_rng([settings.seed, step, len(desc)]))
        loss = data + prior_loss(code[None], settings.prior_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = float(data.detach())
    return last


def fit_scan(loaded: LoadedGenerator, scan: Scan, settings: FitSettings = FitSettings(), *,
             progress: bool = True) -> FitResult:
    """Fit the codes of ``loaded`` to ``scan`` and score the result (module docstring)."""
    started = time.perf_counter()
    model, mean = loaded.model, loaded.distribution.mean
    skinning = shape_skinning(loaded.body, scan.shapes)
    transforms = skinning.bone_transforms(scan.poses[None])[0]
    occupancy = occupancy_targets(skinning, transforms, scan.vertices, scan.faces, 4 * settings.points, settings.seed)
    surface = normal_targets(skinning, transforms, scan.vertices, scan.faces, 2 * settings.points, settings.seed + 1)
    shape_code = mean[: loaded.distribution.shape_width].clone().requires_grad_(True)
    detail_code = mean[loaded.distribution.shape_width : loaded.distribution.shape_width
                       + loaded.distribution.detail_width].clone().requires_grad_(True)

    def rows(rng, count):
        return torch.as_tensor(rng.integers(count, size=settings.points))

    free = free_space_targets(skinning, transforms, scan.vertices, scan.faces, 4 * settings.points, settings.seed + 2)

    def shape_loss(rng):
        data = occupancy_loss(model.coarse, occupancy, rows(rng, len(occupancy.inside)), shape_code, scan.shapes)
        chosen = rows(rng, len(free))[: settings.points // 2] if len(free) else torch.zeros(0, dtype=torch.long)
        return data + free_space_loss(model.coarse, free, chosen, shape_code, scan.shapes)

    final = _optimise(shape_code, settings.shape_steps, settings, shape_loss, "fit shape", progress)
    if len(surface.normals):
        _optimise(detail_code, settings.detail_steps, settings, lambda rng: normal_loss(
            model.coarse, model.detail, surface, rows(rng, len(surface.normals)), shape_code.detach(), detail_code,
            scan.shapes), "fit detail", progress)
    person = Person(shape_code.detach(), detail_code.detach(), scan.shapes)
    mesh = canonical_mesh(model, person, skinning, settings.voxel)
    canonical = NormalMesh(mesh.vertices, mesh.faces, vertex_normals_of(model, person, mesh, detail=True))
    posed = pose_mesh(canonical, skinning, transforms)
    coarse_normals = vertex_normals_of(model, person, Mesh(posed.vertices, posed.faces), detail=False)
    gt = (scan.vertices, scan.faces)
    points = torch.as_tensor(posed.vertices)
    return FitResult(
        person, posed,
        chamfer_l2((posed.vertices, posed.faces), gt, num_samples=settings.metric_samples, seed=settings.seed),
        point_to_surface((posed.vertices, posed.faces), gt, num_samples=settings.metric_samples, seed=settings.seed),
        point_normal_consistency(points, torch.as_tensor(coarse_normals), *gt),
        point_normal_consistency(points, torch.as_tensor(posed.normals), *gt),
        final, time.perf_counter() - started)
