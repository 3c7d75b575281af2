"""Occupancy on a fine grid without evaluating all of it: coarse to fine, refining only near the surface.

The fine grid has spacing ``voxel`` and ``2^L m_a + 1`` points along axis ``a`` (``m_a`` coarse
cells covering the box), origin ``box_min`` (world, metres). Level ``L`` evaluates the function
every ``2^L`` points. Going from spacing ``s`` to ``s / 2``:

1. a cell of the current lattice is *active* where its 8 corners do not all lie on one side of
   ``level`` (the iso-value), and so are its 26 neighbours (a surface a cell away from a sign
   change, or a thin part missed at this spacing, is still found);
2. the lattice is refined by trilinear interpolation (each new point the mean of its 2, 4 or 8
   neighbours on the old lattice);
3. the function is evaluated at the new points inside active cells, replacing the interpolation.

The result is the full fine grid, exact wherever the surface can be and interpolated far from it,
where every value lies on the same side of ``level`` as the function's: marching cubes then gives
the mesh that the dense grid would (Multiresolution IsoSurface Extraction, as in Occupancy
Networks; PIFu's octree evaluation is the same idea).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass
class OccupancyGrid:
    """values (X, Y, Z) float32 at ``origin + (i, j, k) * voxel_size`` (world, metres);
    evaluated: how many points the function was asked for."""

    values: np.ndarray
    origin: np.ndarray
    voxel_size: float
    evaluated: int


def grid_shape(box_min: np.ndarray, box_max: np.ndarray, voxel: float, levels: int) -> tuple[int, int, int]:
    """Points per axis ``2^levels m_a + 1`` with ``m_a = ceil(extent_a / (voxel 2^levels))`` (at least 1)."""
    extent = np.asarray(box_max, dtype=np.float64) - np.asarray(box_min, dtype=np.float64)
    if np.any(extent <= 0) or voxel <= 0 or levels < 0:
        raise ValueError(f"grid_shape: need box_max > box_min, voxel > 0 and levels >= 0, got {extent}, {voxel}, {levels}")
    stride = 2**levels
    return tuple(stride * max(1, math.ceil(e / (voxel * stride) - 1e-9)) + 1 for e in extent)


def refine_trilinear(values: np.ndarray) -> np.ndarray:
    """(X, Y, Z) -> (2X - 1, 2Y - 1, 2Z - 1): old points kept, new ones the mean of their neighbours."""
    out = values
    for axis in range(3):
        n = out.shape[axis]
        shape = list(out.shape)
        shape[axis] = 2 * n - 1
        finer = np.empty(shape, dtype=out.dtype)
        even = [slice(None)] * 3
        odd = [slice(None)] * 3
        even[axis], odd[axis] = slice(0, None, 2), slice(1, None, 2)
        finer[tuple(even)] = out
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        finer[tuple(odd)] = 0.5 * (out[tuple(lo)] + out[tuple(hi)])
        out = finer
    return out


def active_cells(values: np.ndarray, level: float) -> np.ndarray:
    """(X-1, Y-1, Z-1) bool: cells whose corners straddle ``level``, dilated by one cell."""
    from scipy.ndimage import binary_dilation

    above = values >= level
    corners = [above[i : i + above.shape[0] - 1, j : j + above.shape[1] - 1, k : k + above.shape[2] - 1]
               for i in (0, 1) for j in (0, 1) for k in (0, 1)]  # fmt: skip
    any_above = np.logical_or.reduce(corners)
    all_above = np.logical_and.reduce(corners)
    return binary_dilation(any_above & ~all_above, structure=np.ones((3, 3, 3), dtype=bool))


def cell_points(cells: np.ndarray) -> np.ndarray:
    """Points of the refined lattice inside cells (X-1, Y-1, Z-1) bool -> (2X-1, 2Y-1, 2Z-1) bool."""
    out = cells
    for axis in range(3):
        doubled = np.repeat(out, 2, axis=axis)  # refined point 2i and 2i + 1 -> cell i
        pad = [(0, 0)] * 3
        pad[axis] = (0, 1)
        doubled = np.pad(doubled, pad)
        shifted = np.roll(doubled, 1, axis=axis)  # refined point 2i + 2 -> cell i as well
        index = [slice(None)] * 3
        index[axis] = slice(0, 1)
        shifted[tuple(index)] = False
        out = doubled | shifted
    return out


def coarse_to_fine(
    function: Callable[[np.ndarray], np.ndarray],
    box_min: np.ndarray,
    box_max: np.ndarray,
    *,
    voxel: float,
    levels: int = 3,
    level: float = 0.5,
) -> OccupancyGrid:
    """The fine grid of ``function`` ((N, 3) world metres -> (N,) values) over the box (see the module docstring).

    Args:
        function: evaluated on float64 points, returns values (e.g. occupancy probabilities).
        box_min, box_max: (3,) the region, world metres.
        voxel: the fine spacing, metres.
        levels: L, refinements after the coarse lattice of spacing ``voxel * 2^L`` (0: dense).
        level: the iso-value whose neighbourhood is refined.
    """
    origin = np.asarray(box_min, dtype=np.float64).reshape(3)
    shape = grid_shape(origin, box_max, voxel, levels)
    stride = 2**levels
    coarse_shape = tuple((n - 1) // stride + 1 for n in shape)
    axes = [np.arange(n) * stride * voxel + origin[a] for a, n in enumerate(coarse_shape)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = np.asarray(function(points), dtype=np.float32).reshape(coarse_shape)
    evaluated = points.shape[0]
    for refinement in range(levels):
        spacing = voxel * stride / 2 ** (refinement + 1)
        todo = cell_points(active_cells(values, level))
        todo[::2, ::2, ::2] = False  # known already
        values = refine_trilinear(values)
        index = np.argwhere(todo)
        if len(index):
            values[todo] = np.asarray(function(origin + index * spacing), dtype=np.float32).reshape(-1)
        evaluated += len(index)
    return OccupancyGrid(values=values, origin=origin, voxel_size=float(voxel), evaluated=evaluated)
