"""Where a trained field actually has density: a world-aligned occupancy grid from the model.

The field's own occupancy (``field.occupied``, e.g. Neural Body's cells within a few
centimetres of a body vertex) bounds where density *may* be; after training, most of that
band is empty air. Before rendering a frame we evaluate the density once at the centres of
cells of edge ``cell`` over the frame's box (only where the field's occupancy allows) and
keep the cells with

    sigma(centre) > min_density            (1/metres)

split into ``subdivide``^3 sub-cells and dilated by ``dilation`` sub-cells in every direction.
Where the density rises through ``min_density`` between a kept centre and the next centre
along an axis (a surface crossing between them, monotone on that segment), the crossing lies
at most one centre spacing from the kept centre, i.e. at most half a cell beyond the kept
cell's face: dilating by half a cell (the default: ``subdivide = 2``, ``dilation = 1``) covers
it, where a whole cell would add twice the empty band around the body (on the demo model the
half-cell band renders 5 % faster and 0.04 dB closer to the truth). Samples are then placed only in kept cells
(:func:`neuralbody.rendering.render.place_samples`): the rendered image changes only where
density below ``min_density`` was skipped, which absorbs at most
``1 - exp(-min_density * L)`` over a skipped length L, and nothing at all outside the band.
This is the occupancy grid of the fast NeRFs (nerfacc's ``OccGridEstimator``), built per
frame because a moving person's density moves.

:func:`build_density_grid` is the builder; :func:`grid_occupied` the point test;
:func:`grid_samples` places a ray's samples over the exact stretch of kept cells it crosses.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from neuralbody.geometry.grid_traversal import grid_band_samples
from neuralbody.models.base import FrameField
from neuralbody.models.occupancy import OccupancyGrid, dilate_cells, points_occupied
from neuralbody.rendering.sampling import RaySamples, stratum_offsets
from neuralbody.workers import map_in_threads


@dataclasses.dataclass
class DensityOccupancy(OccupancyGrid):
    """Cells of a world-aligned grid where the density exceeds a threshold (dilated).

    Attributes:
        occupied: (X, Y, Z) bool, cell (i, j, k) spans ``origin + cell * [i, i + 1)`` etc.
        origin: (3,) world position of the corner of cell (0, 0, 0), metres.
        cell: cell edge, metres.
        min_density: the threshold it was built with, 1/metres.
        centre_spacing: spacing of the centres where the density was evaluated, metres (a
            multiple of ``cell`` when kept cells were subdivided; 0: ``cell``).
    """

    min_density: float = 0.0
    centre_spacing: float = 0.0


def grid_occupied(grid: DensityOccupancy, points_world: torch.Tensor) -> torch.Tensor:
    """(N,) bool: points (N, 3), world, metres, that fall in kept cells (False outside the grid)."""
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must be (N, 3), got {tuple(points_world.shape)}")
    return points_occupied(grid, points_world)


def build_density_grid(
    field: FrameField,
    *,
    cell: float = 0.02,
    min_density: float = 1.0,
    dilation: int = 1,
    subdivide: int = 2,
    chunk_points: int = 16384,
    workers: int = 1,
) -> DensityOccupancy:
    """Evaluate the field's density on cell centres over its box and keep the dense cells.

    Args:
        field: the frame's field (queried without gradients; colour is not decoded); its box
            (world, metres) is covered.
        cell: spacing of the evaluated centres (cell edge), metres.
        min_density: density threshold, 1/metres.
        dilation: sub-cells added around every kept cell in each direction (>= 0).
        subdivide: kept cells are split into this many sub-cells per axis (>= 1); the
            returned grid has cells of ``cell / subdivide``.
        chunk_points: points per model query.
        workers: CPU threads querying chunks at once (:mod:`neuralbody.workers`).
    """
    if cell <= 0:
        raise ValueError(f"cell must be positive, got {cell}")
    if min_density < 0 or dilation < 0:
        raise ValueError(f"min_density and dilation must be non-negative, got {min_density}, {dilation}")
    if subdivide < 1:
        raise ValueError(f"subdivide must be >= 1, got {subdivide}")
    box_min, box_max = field.box_min.detach(), field.box_max.detach()
    device, dtype = box_min.device, box_min.dtype
    shape = [max(1, math.ceil(float(extent) / cell)) for extent in (box_max - box_min)]
    axes = [box_min[a] + (torch.arange(n, device=device, dtype=dtype) + 0.5) * cell for a, n in enumerate(shape)]
    centres = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # (X*Y*Z, 3)
    candidates = torch.arange(centres.shape[0], device=device)
    with torch.no_grad():
        allowed = field.occupied(centres)
    if allowed is not None:
        candidates = torch.nonzero(allowed).squeeze(1)

    def dense_in(ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return field.density(centres[ids]).sigma > min_density

    chunks = list(candidates.split(chunk_points))
    dense = torch.zeros(centres.shape[0], dtype=torch.bool, device=device)
    if chunks:
        dense[candidates] = torch.cat(map_in_threads(dense_in, chunks, workers))
    occupied = dense.reshape(shape)
    for axis in range(3):
        occupied = occupied.repeat_interleave(subdivide, dim=axis)
    occupied = dilate_cells(occupied, dilation)
    return DensityOccupancy(origin=box_min.clone(), cell=float(cell) / subdivide, occupied=occupied,
                            min_density=float(min_density), centre_spacing=float(cell))


def grid_samples(
    grid: DensityOccupancy,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    *,
    num_samples: int,
    perturb: bool = False,
    generator: torch.Generator | None = None,
) -> RaySamples:
    """Stratified samples over the exact stretch of kept cells each ray crosses.

    The grid is walked cell by cell (:func:`neuralbody.geometry.grid_traversal.grid_band_samples`,
    Warp): the occupied stretches of ``[near, far]``, concatenated front to back, get
    ``num_samples`` stratified samples with ``delta = L / num_samples`` (L their total length).
    Rays that cross no kept cell get zero-length samples (they render the background).

    Args:
        grid: the density occupancy (world-aligned).
        rays_o: (R, 3) origins, world, metres.
        rays_d: (R, 3) unit directions, world.
        near, far: (R,) the rays' stretch inside the frame's box, metres.
        num_samples: S, samples per ray.
        perturb: jitter each sample inside its stratum (else stratum centres).
        generator: random generator for the jitter.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    offsets = stratum_offsets(rays_o.shape[0], num_samples, perturb=perturb, generator=generator, like=rays_o)
    t, length = grid_band_samples(grid.occupied, grid.origin, grid.cell, rays_o, rays_d, near, far, offsets)
    t = t.to(rays_o.dtype)
    deltas = (length.to(rays_o.dtype) / num_samples)[:, None].expand_as(t)
    points = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
    return RaySamples(t=t, deltas=deltas, points=points)
