"""Where a trained field actually has density: a world-aligned occupancy grid from the model.

The model's own occupancy (``occupied_world``, e.g. Neural Body's cells within a few
centimetres of a body vertex) bounds where density *may* be; after training, most of that
band is empty air. Before rendering a frame we evaluate the density once at the centres of
cells of edge ``cell`` over the frame's box (only where the model's occupancy allows) and
keep the cells with

    sigma(centre) > min_density            (1/metres)

dilated by ``dilation`` cells in every direction (a density bump narrower than a cell can
fall between centres; the dilation covers it). Samples are then placed only in kept cells
(:func:`neuralbody.rendering.render.place_samples`): the rendered image changes only where
density below ``min_density`` was skipped, which absorbs at most
``1 - exp(-min_density * L)`` over a skipped length L, and nothing at all outside the band.
This is the occupancy grid of the fast NeRFs (nerfacc's ``OccGridEstimator``), built per
frame because a moving person's density moves.

:func:`build_density_grid` is the builder; :func:`grid_occupied` the point test;
:func:`coarse_span` narrows each ray to where kept cells can be, from a cheap coarse test.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from neuralbody.models.base import FrameState, RadianceFieldModel
from neuralbody.models.occupancy import dilate_cells, points_occupied


@dataclasses.dataclass
class DensityOccupancy:
    """Cells of a world-aligned grid where the density exceeds a threshold (dilated).

    Attributes:
        origin: (3,) world position of the corner of cell (0, 0, 0), metres.
        cell: cell edge, metres.
        occupied: (X, Y, Z) bool, cell (i, j, k) spans ``origin + cell * [i, i + 1)`` etc.
        min_density: the threshold it was built with, 1/metres.
    """

    origin: torch.Tensor
    cell: float
    occupied: torch.Tensor
    min_density: float = 0.0
    dilated: dict = dataclasses.field(default_factory=dict, repr=False)  # cells -> grown copy (cache)

    @property
    def fraction(self) -> float:
        """Share of the grid's cells that are kept."""
        return float(self.occupied.float().mean())


def grid_occupied(grid: DensityOccupancy, points_world: torch.Tensor) -> torch.Tensor:
    """(N,) bool: points (N, 3), world, metres, that fall in kept cells (False outside the grid)."""
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must be (N, 3), got {tuple(points_world.shape)}")
    cells = {"occupancy": grid.occupied, "occupancy_origin": grid.origin}
    return points_occupied(cells, points_world, cell=grid.cell)


def build_density_grid(
    model: RadianceFieldModel,
    state: FrameState,
    *,
    cell: float = 0.02,
    min_density: float = 1.0,
    dilation: int = 1,
    chunk_points: int = 65536,
) -> DensityOccupancy:
    """Evaluate the model's density on cell centres over ``state``'s box and keep the dense cells.

    Args:
        model: the radiance field (queried without gradients; colour is ignored).
        state: ``model.prepare_frame(...)`` of the frame; its box (world, metres) is covered.
        cell: cell edge, metres.
        min_density: density threshold, 1/metres.
        dilation: cells added around every kept cell in each direction (>= 0).
        chunk_points: points per model query.
    """
    if cell <= 0:
        raise ValueError(f"cell must be positive, got {cell}")
    if min_density < 0 or dilation < 0:
        raise ValueError(f"min_density and dilation must be non-negative, got {min_density}, {dilation}")
    box_min, box_max = state.box_min.detach(), state.box_max.detach()
    device, dtype = box_min.device, box_min.dtype
    shape = [max(1, math.ceil(float(extent) / cell)) for extent in (box_max - box_min)]
    axes = [box_min[a] + (torch.arange(n, device=device, dtype=dtype) + 0.5) * cell for a, n in enumerate(shape)]
    centres = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # (X*Y*Z, 3)
    candidates = torch.arange(centres.shape[0], device=device)
    occupied_world = getattr(model, "occupied_world", None)
    with torch.no_grad():
        if occupied_world is not None:
            allowed = occupied_world(state, centres)
            if allowed is not None:
                candidates = torch.nonzero(allowed).squeeze(1)
        dense = torch.zeros(centres.shape[0], dtype=torch.bool, device=device)
        viewdirs = torch.zeros((1, 3), dtype=dtype, device=device)
        viewdirs[0, 2] = 1.0
        for start in range(0, candidates.numel(), chunk_points):
            ids = candidates[start : start + chunk_points]
            sigma, _ = model.query(state, centres[ids], viewdirs.expand(ids.numel(), 3))
            dense[ids] = sigma > min_density
    occupied = dense.reshape(shape)
    occupied = dilate_cells(occupied, dilation)
    return DensityOccupancy(origin=box_min.clone(), cell=float(cell), occupied=occupied, min_density=float(min_density))


def dilate_occupancy(grid: DensityOccupancy, cells: int) -> DensityOccupancy:
    """The grid with every kept cell grown by ``cells`` cells in every direction (cached on the grid)."""
    if cells not in grid.dilated:
        grid.dilated[cells] = DensityOccupancy(grid.origin, grid.cell, dilate_cells(grid.occupied, cells), grid.min_density)
    return grid.dilated[cells]


def coarse_span(
    grid: DensityOccupancy,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    *,
    coarse_bins: int,
    max_length: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per ray, an interval holding every kept cell it crosses, from ``coarse_bins`` point tests.

    With spacing ``s = (far - near) / K <= max_length / K`` and the grid grown by
    ``D = ceil(max_length / (2 K cell))`` cells, every point of the ray inside a kept cell has
    the whole stretch ``[t - D cell, t + D cell]`` (clipped to ``[near, far]``) in the grown
    grid; that stretch is at least ``s`` long (``s / 2`` at an end, where the first or last
    centre lies within ``s / 2``), so it holds a coarse centre that tests positive, within
    ``D cell`` of t. Hence every kept cell on the ray lies in
    ``[first hit - D cell, last hit + D cell]``, and a ray with no hit crosses none.

    Args:
        grid: the density occupancy.
        rays_o, rays_d: (R, 3) origins (metres) and unit directions, world.
        near, far: (R,) the rays' stretch in the frame's box, metres.
        coarse_bins: K.
        max_length: an upper bound of ``far - near`` (the box diagonal), metres.

    Returns:
        near', far' (R,) (the narrowed stretch; unchanged where nothing is hit) and hit (R,) bool.
    """
    if coarse_bins < 1 or not max_length > 0:
        raise ValueError(f"coarse_bins must be >= 1 and max_length > 0, got {coarse_bins}, {max_length}")
    cells = max(1, math.ceil(max_length / (2 * coarse_bins * grid.cell)))
    grown = dilate_occupancy(grid, cells)
    length = (far - near).clamp_min(0.0)
    spacing = length / coarse_bins  # (R,)
    centres = near[:, None] + (torch.arange(coarse_bins, dtype=near.dtype, device=near.device) + 0.5) * spacing[:, None]
    points = rays_o[:, None, :] + centres[..., None] * rays_d[:, None, :]
    occupied = grid_occupied(grown, points.reshape(-1, 3)).reshape(-1, coarse_bins)
    hit = occupied.any(dim=1)
    first = occupied.to(torch.int8).argmax(dim=1)
    last = coarse_bins - 1 - occupied.flip(1).to(torch.int8).argmax(dim=1)
    reach = cells * grid.cell
    low = torch.gather(centres, 1, first[:, None])[:, 0] - reach
    high = torch.gather(centres, 1, last[:, None])[:, 0] + reach
    new_near = torch.where(hit, torch.maximum(near, low), near)
    new_far = torch.where(hit, torch.minimum(far, high), far)
    return new_near, new_far, hit
