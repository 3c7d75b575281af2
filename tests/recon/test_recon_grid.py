"""Coarse-to-fine occupancy grids: the same mesh as the dense grid on a known surface, for far fewer evaluations."""

from __future__ import annotations

import numpy as np
import pytest

from neuralbody.evaluation.mesh_extraction import DensityGrid, marching_cubes_world
from neuralbody.recon.grid import active_cells, cell_points, coarse_to_fine, grid_shape, refine_trilinear

CENTRE = np.array([0.11, -0.07, 0.93])


def sphere_occupancy(points: np.ndarray, radius: float = 0.31) -> np.ndarray:
    """A smooth occupancy: 1/2 on a sphere, rising to 1 inside over ~2 cm."""
    return 1.0 / (1.0 + np.exp((np.linalg.norm(points - CENTRE, axis=1) - radius) / 0.01))


def test_refine_trilinear_is_exact_for_linear_functions():
    i, j, k = np.meshgrid(np.arange(3), np.arange(4), np.arange(2), indexing="ij")
    coarse = (2.0 * i - 0.5 * j + 3.0 * k).astype(np.float64)
    fine = refine_trilinear(coarse)
    fi, fj, fk = np.meshgrid(np.arange(5) / 2, np.arange(7) / 2, np.arange(3) / 2, indexing="ij")
    np.testing.assert_allclose(fine, 2.0 * fi - 0.5 * fj + 3.0 * fk)


def test_one_active_cell_refines_to_a_3x3x3_block():
    cells = np.zeros((3, 3, 3), dtype=bool)
    cells[1, 2, 0] = True
    points = cell_points(cells)
    assert points.shape == (7, 7, 7)
    expected = np.zeros((7, 7, 7), dtype=bool)
    expected[2:5, 4:7, 0:3] = True
    np.testing.assert_array_equal(points, expected)
    values = np.zeros((4, 4, 4))
    values[2, 2, 2] = 1.0  # one point above the level: the 8 cells around it straddle it, then one cell more
    assert active_cells(values, 0.5).sum() == 27


def test_coarse_to_fine_gives_the_dense_mesh_on_a_sphere():
    box_min, box_max, voxel = CENTRE - 0.4, CENTRE + 0.4, 0.01
    calls = []

    def counted(points):
        calls.append(len(points))
        return sphere_occupancy(points)

    fine = coarse_to_fine(counted, box_min, box_max, voxel=voxel, levels=3)
    dense = coarse_to_fine(sphere_occupancy, box_min, box_max, voxel=voxel, levels=0)
    assert fine.values.shape == dense.values.shape == grid_shape(box_min, box_max, voxel, 3)
    assert fine.evaluated == sum(calls) < 0.3 * dense.evaluated  # far fewer evaluations (a fat sphere: 27 %)
    crossing = active_cells(dense.values, 0.5)  # every cell the surface passes through (and its neighbours) ...
    near = np.zeros_like(dense.values, dtype=bool)
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                near[di : di + crossing.shape[0], dj : dj + crossing.shape[1], dk : dk + crossing.shape[2]] |= crossing
    np.testing.assert_array_equal(fine.values[near], dense.values[near])  # ... holds exact values
    assert np.all((fine.values >= 0.5) == (dense.values >= 0.5))  # and elsewhere the same side of the level
    meshes = [marching_cubes_world(DensityGrid(g.values, g.origin, g.voxel_size), 0.5) for g in (fine, dense)]
    np.testing.assert_allclose(meshes[0].vertices, meshes[1].vertices, atol=1e-9)
    np.testing.assert_array_equal(meshes[0].faces, meshes[1].faces)
    radii = np.linalg.norm(meshes[0].vertices - CENTRE, axis=1)
    assert np.abs(radii - 0.31).max() < voxel  # and it is the sphere, in world metres, within a voxel


def test_guards():
    with pytest.raises(ValueError, match="box_max > box_min"):
        grid_shape(np.zeros(3), np.zeros(3), 0.01, 2)
