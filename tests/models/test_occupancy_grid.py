"""The occupancy grid of posed vertices and its dilation."""

import pytest
import torch

from neuralbody.models.occupancy import dilate_cells, dilate_cells_reference, occupancy_grid, points_occupied


@pytest.mark.parametrize("shape, cells", [((9, 7, 5), 1), ((12, 1, 6), 2), ((4, 4, 4), 6), ((20, 13, 8), 3)])
def test_dilation_matches_the_box_max_pool(shape, cells):
    generator = torch.Generator().manual_seed(sum(shape) + cells)
    grid = torch.rand(shape, generator=generator) > 0.93
    assert torch.equal(dilate_cells(grid, cells), dilate_cells_reference(grid, cells))


def test_dilation_of_one_cell_is_the_box_around_it():
    grid = torch.zeros(7, 8, 9, dtype=torch.bool)
    grid[3, 4, 5] = True
    grown = dilate_cells(grid, 2)
    expected = torch.zeros_like(grid)
    expected[1:6, 2:7, 3:8] = True
    assert torch.equal(grown, expected)
    assert torch.equal(dilate_cells(grid, 0), grid) and grid.sum() == 1  # the input is left alone


def test_dilation_rejects_a_grid_that_is_not_boolean():
    with pytest.raises(ValueError, match="bool"):
        dilate_cells(torch.zeros(3, 3, 3), 1)


def test_occupancy_marks_points_within_the_margin_and_not_far_away():
    vertices = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.2, -0.1]])
    grid = occupancy_grid(vertices, cell=0.05, margin=0.1)
    near = vertices + torch.tensor([0.09, -0.09, 0.05])
    far = vertices + torch.tensor([0.0, 0.0, 0.25])
    assert points_occupied(grid, near).all()
    assert not points_occupied(grid, far).any()
