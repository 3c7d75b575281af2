"""Multi-resolution hash encoding: against the loop oracle, gradients in float64, guards."""

from __future__ import annotations

import pytest
import torch

from neuralbody.models.hash_grid import HashGrid, hash_cells, hash_encoding_reference


def _grid() -> HashGrid:
    torch.manual_seed(0)
    return HashGrid((0.04, 0.01), table_log2=8, features=3, init_scale=1.0).double()


def test_matches_the_loop_oracle_including_negative_coordinates():
    grid = _grid()
    points = (torch.rand(40, 3, dtype=torch.float64) - 0.5) * 0.6  # metres, both signs
    torch.testing.assert_close(grid(points), hash_encoding_reference(grid, points))


def test_values_at_cell_corners_are_table_rows_and_interpolation_is_trilinear():
    grid = _grid()
    corner = torch.tensor([[0.08, -0.04, 0.12]], dtype=torch.float64)  # cell (2, -1, 3) of level 0
    row = int(hash_cells(torch.tensor([[2, -1, 3]]), grid.table_log2))
    torch.testing.assert_close(grid(corner)[0, :3], grid.tables[row])
    # halfway between two corners along x: the mean of their rows
    mid = corner + torch.tensor([[0.02, 0.0, 0.0]], dtype=torch.float64)
    other = int(hash_cells(torch.tensor([[3, -1, 3]]), grid.table_log2))
    torch.testing.assert_close(grid(mid)[0, :3], 0.5 * (grid.tables[row] + grid.tables[other]))


def test_gradient_to_the_tables_in_float64():
    """The custom backward of the weighted row sum (the tables' gradient) against finite differences."""
    from neuralbody.models.hash_grid import _corner_rows_weights
    from neuralbody.models.sparse_grid import weighted_row_sum

    points = (torch.rand(6, 3, dtype=torch.float64) - 0.5) * 0.3
    rows, weights = _corner_rows_weights(points, torch.tensor([0.05], dtype=torch.float64), 4)
    rows, weights = rows[:, 0], weights[:, 0]
    tables = torch.randn(16, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: weighted_row_sum(t, rows, weights), (tables,))


def test_hash_rows_stay_in_range_and_guards_raise():
    cells = torch.randint(-10**6, 10**6, (1000, 3))
    rows = hash_cells(cells, 12)
    assert rows.min() >= 0 and rows.max() < 4096
    with pytest.raises(ValueError, match="cell_sizes"):
        HashGrid((0.01, -1.0))
    with pytest.raises(ValueError, match="table_log2"):
        HashGrid((0.01,), table_log2=40)
    with pytest.raises(ValueError, match=r"\(M, 3\)"):
        _grid()(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        hash_cells(torch.zeros(4, 2, dtype=torch.long), 8)
