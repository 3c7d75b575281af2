"""A mesh of one frame of a capture from a trained pixel-aligned implicit function, in world metres.

1. Where: the person's box from the masks of ``locate_views`` (default every camera of the capture;
   :func:`neuralbody.recon.locate.locate_person`), grown by ``padding``; with a single camera, the
   fitted body's box grown by 15 cm (``vertices/``). Its centre is the depth reference.
2. The model's views are cropped around the unpadded box (:func:`neuralbody.recon.views.prepare_views`,
   as in training) and encoded once.
3. Occupancy ``sigmoid(logit)`` on the grid, coarse to fine (:func:`neuralbody.recon.grid.coarse_to_fine`),
   in chunks of ``chunk_points``; with ``carve``, points outside any of the model's views' masks
   are empty (what the network sees of the silhouettes, enforced exactly). A model with a body prior
   (``mvms-body``) also reads each point's features against ``body``, the frame's fitted body
   (:mod:`neuralbody.recon.body_prior`).
4. Marching cubes at 1/2 (:func:`neuralbody.evaluation.mesh_extraction.marching_cubes_world`), the
   largest connected component.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from neuralbody.evaluation.geometry_metrics import GeometryMetrics
from neuralbody.evaluation.mesh_extraction import DensityGrid, Mesh, carve_mask, largest_component, marching_cubes_world
from neuralbody.geometry.box import body_box
from neuralbody.geometry.queries import WarpMesh
from neuralbody.recon.body_prior import PosedBody, body_features
from neuralbody.recon.grid import coarse_to_fine, grid_shape
from neuralbody.recon.locate import locate_person
from neuralbody.recon.model import PixelAlignedOccupancy, stack_views
from neuralbody.recon.views import prepare_views

log = logging.getLogger(__name__)

SURFACE_LEVEL = 0.5


@dataclasses.dataclass(frozen=True)
class ReconstructSettings:
    """How a frame is reconstructed.

    Attributes:
        voxel: fine grid spacing, metres.
        levels: coarse-to-fine refinements (the coarse lattice is ``voxel * 2^levels`` apart; 0: dense).
        carve: empty the points outside any of the model's views' masks.
        padding: metres added around the located box.
        chunk_points: points per network query.
        largest_component: keep only the largest connected part of the mesh.
        locate_voxel: spacing of the visual hull that locates the person, metres.
    """

    voxel: float = 0.01
    levels: int = 3
    carve: bool = True
    padding: float = 0.05
    chunk_points: int = 32768
    largest_component: bool = True
    locate_voxel: float = 0.03

    def __post_init__(self) -> None:
        if not 0 < self.voxel < 0.2 or not 0 <= self.levels <= 6 or self.chunk_points < 1 or self.padding < 0:
            raise ValueError(f"ReconstructSettings: need 0 < voxel < 0.2 m, 0 <= levels <= 6, chunk_points >= 1 and "
                             f"padding >= 0, got {self}")  # fmt: skip


@dataclasses.dataclass
class Reconstruction:
    """A reconstructed frame.

    Attributes:
        mesh: world metres, outward faces.
        box_min, box_max: (3,) the grid's region, world metres.
        evaluated: grid points the network was asked for.
        dense_points: points of the full fine grid.
        seconds: time per stage ("locate", "encode", "grid", "mesh").
    """

    mesh: Mesh
    box_min: np.ndarray
    box_max: np.ndarray
    evaluated: int
    dense_points: int
    seconds: dict


def chamfer_l2_seed(metrics: GeometryMetrics) -> float:
    """Chamfer-L2 as seed 002 defines it: ``0.5 completeness^2 + 0.5 accuracy^2`` with completeness
    the mean distance from ground truth to prediction and accuracy the mean distance from prediction
    to ground truth (square metres; mean distances squared, unlike ``metrics.chamfer_l2``)."""
    return 0.5 * metrics.surface_to_point**2 + 0.5 * metrics.point_to_surface**2


def person_region(capture, frame: int, locate_views: list[int], settings: ReconstructSettings) -> tuple[np.ndarray, np.ndarray]:
    """The box (world metres) where the person of ``frame`` is (step 1 of the module docstring), unpadded."""
    if len(locate_views) >= 2:
        masks = [capture.load_mask(frame, v) for v in locate_views]
        located = locate_person([capture.cameras[v] for v in locate_views], masks, voxel=settings.locate_voxel)
        return located.box_min, located.box_max
    if capture.has_vertices:
        return body_box(capture.load_vertices(frame).astype(np.float64), 0.15)
    raise ValueError("placing the person needs masks from two or more cameras (--locate-views) or a fitted body (vertices/)")


def occupancy_function(model: PixelAlignedOccupancy, views, centre: np.ndarray, carving, chunk_points: int,
                       body: PosedBody | None = None):  # fmt: skip
    """(N, 3) world points -> (N,) occupancy probabilities, in chunks; ``carving`` (cameras, masks) or None;
    ``body``: the posed body a body-prior model reads (required by such a model, refused by others)."""
    if model.uses_body != (body is not None):
        need = "needs the frame's fitted body" if model.uses_body else "takes no body"
        raise ValueError(f"a {model.config.kind} model {need}")
    mesh = None if body is None else WarpMesh(body.vertices.astype(np.float64), body.faces)
    device = next(model.parameters()).device
    with torch.no_grad():
        maps = model.encode(views.images.to(device))
    centre_t = torch.tensor(centre, dtype=torch.float32, device=device)[None]
    views_d = views.to(device)

    def function(points: np.ndarray) -> np.ndarray:
        out = np.zeros(len(points), dtype=np.float32)
        keep = carve_mask(points, *carving) if carving is not None else np.ones(len(points), dtype=bool)
        index = np.flatnonzero(keep)
        with torch.no_grad():
            for start in range(0, len(index), chunk_points):
                rows = index[start : start + chunk_points]
                query = torch.tensor(points[rows], dtype=torch.float32, device=device)[None]
                features = None if mesh is None else body_features(mesh, query[0], model.config.body_scales)[None]
                out[rows] = torch.sigmoid(model.query(maps, views_d, centre_t, query, features))[0].cpu().numpy()
        return out

    return function


def reconstruct_frame(
    model: PixelAlignedOccupancy,
    capture,
    frame: int,
    views: list[int],
    *,
    settings: ReconstructSettings = ReconstructSettings(),
    locate_views: list[int] | None = None,
    body: PosedBody | None = None,
) -> Reconstruction:
    """Reconstruct ``frame`` of ``capture`` from the cameras ``views`` (see the module docstring);
    ``body``: the frame's fitted body, for (and only for) a model with a body prior."""
    if not 0 <= frame < capture.num_frames:
        raise ValueError(f"--frame {frame}: the capture has frames 0..{capture.num_frames - 1}")
    seconds, started = {}, time.perf_counter()
    locate_views = list(range(capture.num_views)) if locate_views is None else list(locate_views)
    person_min, person_max = person_region(capture, frame, locate_views, settings)
    centre = (person_min + person_max) / 2  # the crops frame the person as in training; the grid is padded
    box_min, box_max = person_min - settings.padding, person_max + settings.padding
    seconds["locate"] = time.perf_counter() - started
    cameras = [capture.cameras[v] for v in views]
    masks = [capture.load_mask(frame, v) for v in views]
    images = [capture.load_image(frame, v) for v in views]
    inputs = stack_views([prepare_views(images, masks, cameras, person_min, person_max, size=model.config.input_size)])
    mark = time.perf_counter()
    function = occupancy_function(model, inputs, centre, (cameras, masks) if settings.carve else None,
                                  settings.chunk_points, body)  # fmt: skip
    seconds["encode"] = time.perf_counter() - mark
    mark = time.perf_counter()
    grid = coarse_to_fine(function, box_min, box_max, voxel=settings.voxel, levels=settings.levels, level=SURFACE_LEVEL)
    seconds["grid"] = time.perf_counter() - mark
    if not float(grid.values.max()) > SURFACE_LEVEL:
        raise ValueError(f"frame {frame}: the model finds nobody in the box {np.round(box_min, 3).tolist()} .. "
                         f"{np.round(box_max, 3).tolist()} m; check the masks, the views and the model")  # fmt: skip
    mark = time.perf_counter()
    mesh = marching_cubes_world(DensityGrid(grid.values, grid.origin, grid.voxel_size), SURFACE_LEVEL)
    if settings.largest_component:
        mesh = largest_component(mesh)
    seconds["mesh"] = time.perf_counter() - mark
    dense = int(np.prod(grid_shape(box_min, box_max, settings.voxel, settings.levels)))
    log.info("frame %d: %d of %d grid points evaluated (%.1f%%), %d vertices", frame, grid.evaluated, dense,
             100.0 * grid.evaluated / dense, len(mesh.vertices))  # fmt: skip
    return Reconstruction(mesh=mesh, box_min=box_min, box_max=box_max, evaluated=grid.evaluated,
                          dense_points=dense, seconds=seconds)  # fmt: skip
