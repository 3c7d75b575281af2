"""Where a person can be: a coarse occupancy grid around the posed body-model vertices.

Cells of edge ``cell`` metres that contain a vertex are marked, then dilated by
``d = ceil(margin / cell)`` cells in every direction (a (2d+1)^3 box maximum, done as
separable shifted ORs). Density is only evaluated, and samples only placed, in marked
cells: the grid costs one scatter and a few boolean passes per frame, and it is what lets both Neural
Body and the baseline skip empty space in the same way.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F


@dataclasses.dataclass
class OccupancyGrid:
    """Marked cells of an axis-aligned grid.

    Attributes:
        occupied: (X, Y, Z) bool; cell (i, j, k) spans ``origin + cell * [i, i + 1)`` etc.
        origin: (3,) position of the corner of cell (0, 0, 0), metres, in the grid's frame
            (the frame of the points it was built from; queries must use the same frame).
        cell: cell edge, metres.
    """

    occupied: torch.Tensor
    origin: torch.Tensor
    cell: float

    @property
    def fraction(self) -> float:
        """Share of the grid's cells that are marked."""
        return float(self.occupied.float().mean())


def occupancy_grid(points: torch.Tensor, *, cell: float, margin: float) -> OccupancyGrid:
    """Mark the cells within about ``margin`` of any of ``points``.

    Args:
        points: (N, 3) positions, metres (any frame; queries must use the same frame).
        cell: cell edge, metres.
        margin: dilation distance, metres (at least one cell).

    Returns:
        The grid, in the frame of ``points``.
    """
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0:
        raise ValueError(f"points must be (N, 3) with N > 0, got {tuple(points.shape)}")
    if cell <= 0:
        raise ValueError(f"cell must be positive, got {cell}")
    dilation = max(1, math.ceil(margin / cell))
    origin = points.min(dim=0).values - (dilation + 1) * cell
    cells = torch.floor((points - origin) / cell).long()
    shape = (cells.max(dim=0).values + dilation + 2).tolist()
    grid = torch.zeros(shape, dtype=torch.bool, device=points.device)
    grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    return OccupancyGrid(occupied=dilate_cells(grid, dilation), origin=origin, cell=float(cell))


def dilate_cells(occupied: torch.Tensor, cells: int) -> torch.Tensor:
    """(X, Y, Z) bool grown by ``cells`` cells in every direction: a (2 cells + 1)^3 box maximum.

    The box is separable: along each axis in turn, a cell is marked when any cell within
    ``cells`` of it on that axis is, which is ``2 cells`` in-place ORs of the grid with itself
    shifted (same shape; cells <= 0: unchanged). :func:`dilate_cells_reference` is the oracle.
    """
    if cells <= 0:
        return occupied
    if occupied.ndim != 3 or occupied.dtype != torch.bool:
        raise ValueError(f"occupied must be a (X, Y, Z) bool grid, got {tuple(occupied.shape)} {occupied.dtype}")
    grown = occupied
    for axis in range(3):
        source, grown = grown, grown.clone()
        size = source.shape[axis]
        for shift in range(1, min(cells, size - 1) + 1):
            grown.narrow(axis, shift, size - shift).logical_or_(source.narrow(axis, 0, size - shift))
            grown.narrow(axis, 0, size - shift).logical_or_(source.narrow(axis, shift, size - shift))
    return grown


def dilate_cells_reference(occupied: torch.Tensor, cells: int) -> torch.Tensor:
    """Slow oracle of :func:`dilate_cells`: a (2 cells + 1)^3 max-pool over the whole grid at once."""
    if cells <= 0:
        return occupied
    size = 2 * cells + 1
    pooled = F.max_pool3d(occupied.to(torch.float32)[None, None], kernel_size=size, stride=1, padding=cells)
    return pooled[0, 0] > 0


def points_occupied(grid: OccupancyGrid, points: torch.Tensor) -> torch.Tensor:
    """(N,) bool: ``points`` (N, 3), metres, same frame as the grid, fall in marked cells.

    The grid is padded with one empty cell on every side and cell coordinates are clamped
    into the padded grid, so points outside it (or NaN) land on empty cells: one gather, no
    bounds test per point.
    """
    occupancy = grid.occupied
    sizes = occupancy.shape
    padded = torch.zeros((sizes[0] + 2, sizes[1] + 2, sizes[2] + 2), dtype=torch.bool, device=occupancy.device)
    padded[1:-1, 1:-1, 1:-1] = occupancy
    cells = torch.floor((points - grid.origin) / grid.cell) + 1.0
    cells = torch.nan_to_num(cells, nan=0.0)
    high = torch.tensor([sizes[0] + 1, sizes[1] + 1, sizes[2] + 1], dtype=cells.dtype, device=cells.device)
    cells = torch.minimum(cells.clamp_min(0.0), high).long()
    flat = (cells[:, 0] * (sizes[1] + 2) + cells[:, 1]) * (sizes[2] + 2) + cells[:, 2]
    return padded.reshape(-1)[flat]
