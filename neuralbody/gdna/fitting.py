"""Fitting a trained model to a new posed scan: the latents that reproduce it, and how close they come.

Given a posed mesh of a person the model never saw and the body model's pose and shape for
it, the networks stay fixed and only the person's codes are optimised (auto-decoding at test
time, as DeepSDF and gDNA infer a code). Each stage starts from the code, among the mean and
the training scans' codes, with the lowest loss of that stage (``start="best"``,
:mod:`neuralbody.gdna.fit_start`; ``"mean"``: the mean code):

1. ``z_shape`` by the coarse stage's loss on labelled points around the scan, carried to the
   person's canonical space by forward skinning, and on the canonical free space
   (:mod:`neuralbody.gdna.correspondences`), plus the latent prior;
2. ``z_detail`` by the detail stage's normal loss on the scan's surface, plus the prior;
3. ``z_colour`` (a model with colour, a scan with vertex colours) by the L1 colour loss on the
   same surface points (:mod:`neuralbody.gdna.colour`), plus the prior.

Optionally (``finetune_steps > 0``) a per-scan refinement follows stages 1 and 3: the coarse
network (its grids and MLP) with ``z_shape``, then the colour network with ``z_colour``, are
fine-tuned on the same losses at the small learning rate ``finetune_lr`` (on a copy: the run's
networks are left as they are). This is no longer a code of the generative model: it reports
how close the model's networks come to a scan when allowed to move, beside the latents-only fit.

The fitted canonical surface, posed by the scan's bone transforms (:mod:`neuralbody.gdna.meshing`),
is scored against the scan in its body frame: Chamfer-L2 and point-to-surface
(:mod:`neuralbody.evaluation.geometry_metrics`), the normal consistency at the vertices
(:mod:`neuralbody.gdna.fit_metrics`) with the coarse surface's own normals and with the
detail network's (the geometry is the same: the detail network changes normals only), and the
colour error at the vertices against the scan's nearest colour
(:mod:`neuralbody.gdna.scan_colours`, mean absolute RGB error, 0-255).
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch

from neuralbody.evaluation.geometry_metrics import chamfer_l2, point_to_surface
from neuralbody.evaluation.mesh_extraction import Mesh
from neuralbody.gdna.colour import colour_loss
from neuralbody.gdna.correspondences import (NormalTargets, OccupancyTargets, free_space_targets, normal_targets,
                                             occupancy_targets)
from neuralbody.gdna.fit_metrics import point_normal_consistency
from neuralbody.gdna.fit_start import lowest_loss_code
from neuralbody.gdna.latents import prior_loss
from neuralbody.gdna.losses import free_space_loss, normal_loss, occupancy_loss
from neuralbody.gdna.meshing import (NormalMesh, Person, canonical_mesh, pose_mesh, vertex_colours_of,
                                     vertex_normals_of)
from neuralbody.gdna.model import GenerativeModel
from neuralbody.gdna.run_files import LoadedGenerator
from neuralbody.gdna.scan_colours import colour_error, surface_colours
from neuralbody.gdna.scans import Scan
from neuralbody.gdna.shape_skinning import ShapeSkinning, shape_skinning
from neuralbody.io.progress import progress_bar


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How a scan is fitted.

    Attributes:
        shape_steps: Adam steps on ``z_shape``.
        detail_steps: Adam steps on ``z_detail``.
        colour_steps: Adam steps on ``z_colour`` (a model with colour and a scan with colours).
        finetune_steps: steps of each per-scan refinement (0: latents only; module docstring).
        finetune_lr: learning rate of the networks in the refinement.
        points: points a step.
        targets: labelled points around the scan and canonical free-space candidates (surface points: half as
            many); many (16384) keep the per-scan fine-tune from overfitting the points.
        lr: learning rate of the codes.
        prior_weight: ``lambda`` of the latent prior.
        voxel: marching-cubes spacing of the fitted surface, metres.
        metric_samples: surface samples of Chamfer-L2 and P2S.
        seed: seeds the targets and draws.
        start: where each stage's code starts: "best", the lowest-loss code among the mean and the training
            scans' codes (:mod:`neuralbody.gdna.fit_start`), or "mean", the mean code.
        start_points: points each candidate's loss is scored on ("best").
    """

    shape_steps: int = 300
    detail_steps: int = 150
    colour_steps: int = 150
    finetune_steps: int = 0
    finetune_lr: float = 2e-3
    points: int = 1024
    targets: int = 16384
    lr: float = 2e-2
    prior_weight: float = 1e-3
    voxel: float = 0.015
    metric_samples: int = 20000
    seed: int = 0
    start: str = "best"
    start_points: int = 4096

    def __post_init__(self) -> None:
        if self.start not in ("best", "mean") or self.start_points < 1:
            raise ValueError(f"FitSettings: start must be 'best' or 'mean', start_points >= 1; got {self}")
        if min(self.shape_steps, self.detail_steps, self.colour_steps, self.finetune_steps) < 0:
            raise ValueError(f"FitSettings: steps must be >= 0; got {self}")
        if self.points < 1 or self.targets < 2 or not (self.lr > 0 and self.finetune_lr > 0):
            raise ValueError(f"FitSettings: points >= 1, targets >= 2, lr, finetune_lr > 0; got {self}")
        if not self.voxel > 0 or self.metric_samples < 1 or self.prior_weight < 0:
            raise ValueError(f"FitSettings: voxel > 0, metric_samples >= 1, prior_weight >= 0; got {self}")


@dataclasses.dataclass
class FitResult:
    """A fitted scan.

    Attributes:
        person: the fitted codes (with the scan's body shape).
        mesh: the fitted surface posed like the scan, detail normals (and colours), body frame, metres.
        chamfer_l2: square metres.
        point_to_surface: metres, fitted surface to scan.
        normal_consistency_coarse: NC with the coarse surface's own normals.
        normal_consistency_detail: NC with the detail network's normals.
        colour_error: mean absolute RGB error (0-255) at the fitted vertices against the scan's nearest
            colour, or None (no colour in the model or the scan).
        final_loss: the last shape-fitting loss (occupancy and free space, without the prior).
        seconds: wall time.
        model: the networks the fit used (a fine-tuned copy when ``finetune_steps > 0``).
        canonical: the fitted surface in the person's canonical space (same vertices and faces as ``mesh``).
    """

    person: Person
    mesh: NormalMesh
    chamfer_l2: float
    point_to_surface: float
    normal_consistency_coarse: float
    normal_consistency_detail: float
    colour_error: float | None
    final_loss: float
    seconds: float
    model: GenerativeModel
    canonical: NormalMesh


@dataclasses.dataclass
class FitTargets:
    """A scan's targets in the person's canonical space: labelled points, surface points (with colours when
    the scan has them), canonical free space (:mod:`neuralbody.gdna.correspondences`)."""

    occupancy: OccupancyTargets
    surface: NormalTargets
    free: torch.Tensor


def fit_targets(skinning: ShapeSkinning, transforms: torch.Tensor, scan: Scan, settings: FitSettings) -> FitTargets:
    """The targets of ``scan`` for the person of ``skinning`` posed by bone transforms (B, 4, 4)."""
    args = (skinning, transforms, scan.vertices, scan.faces)
    return FitTargets(occupancy_targets(*args, settings.targets, settings.seed),
                      normal_targets(*args, settings.targets // 2, settings.seed + 1, scan.colours),
                      free_space_targets(*args, settings.targets, settings.seed + 2))


def _optimise(code: torch.Tensor, networks: list[torch.nn.Parameter], steps: int, settings: FitSettings, loss_of,
              desc: str, progress: bool) -> float:
    """Adam on ``code`` (a leaf; lr) and ``networks`` (finetune_lr) for ``steps`` steps of ``loss_of(rng) + prior``;
    the last data loss."""
    groups = [{"params": [code], "lr": settings.lr}]
    groups += [{"params": networks, "lr": settings.finetune_lr}] if networks else []
    optimizer = torch.optim.Adam(groups)
    last = float("nan")
    for step in progress_bar(range(steps), enabled=progress, desc=desc, unit="step"):
        data = loss_of(np.random.default_rng([settings.seed, step, len(desc)]))
        loss = data + prior_loss(code[None], settings.prior_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = float(data.detach())
    return last


def _rows(rng: np.random.Generator, count: int, size: int) -> torch.Tensor:
    return torch.as_tensor(rng.integers(count, size=size)) if count else torch.zeros(0, dtype=torch.long)


@dataclasses.dataclass
class CodeCandidates:
    """Codes a fit may start from (:mod:`neuralbody.gdna.fit_start`), the mean first.

    Attributes:
        shape: (K, Ls) ``z_shape`` candidates.
        detail: (K, Ld) ``z_detail`` candidates.
        colour: (K, Lc) ``z_colour`` candidates, or None (a model without colour).
    """

    shape: torch.Tensor
    detail: torch.Tensor
    colour: torch.Tensor | None = None


def _start(code: torch.Tensor | None, candidates: torch.Tensor | None, loss_of,
           settings: FitSettings) -> torch.Tensor | None:
    """A leaf to optimise: ``code`` as it is, or (``candidates`` given) the candidate with the lowest
    ``loss_of(code, rng, count)`` on ``start_points`` fixed points."""
    if code is None:
        return None
    if candidates is not None:
        code = lowest_loss_code(candidates, lambda z: loss_of(
            z, np.random.default_rng([settings.seed, 7919]), settings.start_points)).code
    return code.detach().clone().requires_grad_(True)


def fit_codes(model: GenerativeModel, targets: FitTargets, start: Person, settings: FitSettings, *,
              candidates: CodeCandidates | None = None, progress: bool = True) -> tuple[Person, float]:
    """The codes fitted from ``start`` by the stages of the module docstring, and the last shape loss.

    With ``candidates`` each stage starts from the candidate with the lowest loss of that stage
    (:func:`~neuralbody.gdna.fit_start.lowest_loss_code`) instead of ``start``'s code. With
    ``finetune_steps > 0`` the networks of ``model`` are fine-tuned in place (pass a copy).
    """
    shapes, points = start.shapes, settings.points
    occupancy, surface, free = targets.occupancy, targets.surface, targets.free
    pick = candidates if candidates is not None else CodeCandidates(None, None, None)

    def shape_loss(code, rng, count=points):
        data = occupancy_loss(model.coarse, occupancy, _rows(rng, len(occupancy.inside), count), code, shapes)
        return data + free_space_loss(model.coarse, free, _rows(rng, len(free), count // 2), code, shapes)

    def detail_loss(code, rng, count=points):
        return normal_loss(model.coarse, model.detail, surface, _rows(rng, len(surface.normals), count),
                           shape_code.detach(), code, shapes)

    def colour_fit_loss(code, rng, count=points):
        rows = _rows(rng, len(surface.normals), count)
        _, features = model.coarse(surface.canonical[rows], shape_code.detach(), shapes)
        return colour_loss(model.colour(surface.canonical[rows], code, features), surface.colours[rows])

    shape_code = _start(start.shape_code, pick.shape, shape_loss, settings)
    final = _optimise(shape_code, [], settings.shape_steps, settings, lambda rng: shape_loss(shape_code, rng),
                      "fit shape", progress)
    if settings.finetune_steps:
        model.coarse.requires_grad_(True)
        final = _optimise(shape_code, list(model.coarse.parameters()), settings.finetune_steps, settings,
                          lambda rng: shape_loss(shape_code, rng), "refine shape", progress)
        model.coarse.requires_grad_(False)
    has_surface = len(surface.normals) > 0
    detail_code = _start(start.detail_code, pick.detail if has_surface else None, detail_loss, settings)
    if has_surface:
        _optimise(detail_code, [], settings.detail_steps, settings, lambda rng: detail_loss(detail_code, rng),
                  "fit detail", progress)
    coloured = start.colour_code is not None and model.colour is not None and surface.colours is not None
    colour_code = start.colour_code
    if coloured and has_surface:
        colour_code = _start(colour_code, pick.colour, colour_fit_loss, settings)
        _optimise(colour_code, [], settings.colour_steps, settings, lambda rng: colour_fit_loss(colour_code, rng),
                  "fit colour", progress)
        if settings.finetune_steps:
            model.colour.requires_grad_(True)
            _optimise(colour_code, list(model.colour.parameters()), settings.finetune_steps, settings,
                      lambda rng: colour_fit_loss(colour_code, rng), "refine colour", progress)
            model.colour.requires_grad_(False)
    colour = None if colour_code is None else colour_code.detach().clone()
    return Person(shape_code.detach(), detail_code.detach(), shapes, colour), final


def code_candidates(loaded: LoadedGenerator) -> CodeCandidates:
    """The mean code, then the K training scans' codes (what a best-of-K fit starts from)."""
    mean = mean_person(loaded, loaded.shapes[0])
    colour = None
    if mean.colour_code is not None and loaded.codes.colour is not None:
        colour = torch.cat([mean.colour_code[None], loaded.codes.colour.detach()])
    return CodeCandidates(torch.cat([mean.shape_code[None], loaded.codes.shape.detach()]),
                          torch.cat([mean.detail_code[None], loaded.codes.detail.detach()]), colour)


def mean_person(loaded: LoadedGenerator, shapes: torch.Tensor) -> Person:
    """The mean of the training codes (where fitting starts), with the body shape ``shapes`` (S,)."""
    shape, detail, colour, _ = loaded.distribution.split(loaded.distribution.mean[None])
    return Person(shape[0].clone(), detail[0].clone(), shapes, colour[0].clone() if loaded.model.colour is not None
                  else None)


def fit_scan(loaded: LoadedGenerator, scan: Scan, settings: FitSettings = FitSettings(), *,
             progress: bool = True) -> FitResult:
    """Fit the codes of ``loaded`` (and, with ``finetune_steps``, a copy of its networks) to ``scan``; score it."""
    started = time.perf_counter()
    model = copy.deepcopy(loaded.model) if settings.finetune_steps else loaded.model
    skinning = shape_skinning(loaded.body, scan.shapes, correction=model.skinning)
    transforms = skinning.bone_transforms(scan.poses[None])[0]
    targets = fit_targets(skinning, transforms, scan, settings)
    candidates = code_candidates(loaded) if settings.start == "best" else None
    person, final = fit_codes(model, targets, mean_person(loaded, scan.shapes), settings, candidates=candidates,
                              progress=progress)
    mesh = canonical_mesh(model, person, skinning, settings.voxel)
    colours = None
    if person.colour_code is not None and scan.colours is not None:
        colours = vertex_colours_of(model, person, mesh.vertices)
    canonical = NormalMesh(mesh.vertices, mesh.faces, vertex_normals_of(model, person, mesh, detail=True), colours)
    posed = pose_mesh(canonical, skinning, transforms)
    coarse_normals = vertex_normals_of(model, person, Mesh(posed.vertices, posed.faces), detail=False)
    gt = (scan.vertices, scan.faces)
    points = torch.as_tensor(posed.vertices)
    error = None
    if colours is not None:
        error = colour_error(torch.as_tensor(colours), surface_colours(*gt, scan.colours, points.float()))
    return FitResult(
        person, posed,
        chamfer_l2((posed.vertices, posed.faces), gt, num_samples=settings.metric_samples, seed=settings.seed),
        point_to_surface((posed.vertices, posed.faces), gt, num_samples=settings.metric_samples, seed=settings.seed),
        point_normal_consistency(points, torch.as_tensor(coarse_normals), *gt),
        point_normal_consistency(points, torch.as_tensor(posed.normals), *gt),
        error, final, time.perf_counter() - started, model, canonical)
