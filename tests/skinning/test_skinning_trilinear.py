"""Dense trilinear interpolation: values against grid_sample, closed-form gradient against autograd."""

from __future__ import annotations

import pytest
import torch

from neuralbody.skinning.trilinear import trilinear, trilinear_reference


def _grid_and_points(seed=0, count=200):
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(4, 5, 6, 7, generator=gen, dtype=torch.float64)
    upper = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
    coords = torch.rand(count, 3, generator=gen, dtype=torch.float64) * (upper + 2.0) - 1.0  # some outside
    return values, coords, upper


def test_values_match_grid_sample_inside_and_outside():
    values, coords, _ = _grid_and_points()
    got = trilinear(values, coords).values
    torch.testing.assert_close(got, trilinear_reference(values, coords), atol=1e-12, rtol=0)


def test_exact_at_nodes_and_linear_functions_are_reproduced():
    values, _, _ = _grid_and_points()
    nodes = torch.tensor([[0, 0, 0], [3, 4, 5], [1, 2, 3], [3, 0, 5]], dtype=torch.float64)
    torch.testing.assert_close(trilinear(values, nodes).values, values[tuple(nodes.long().T)], atol=1e-12, rtol=0)
    ix, iy, iz = torch.meshgrid(torch.arange(4.0), torch.arange(5.0), torch.arange(6.0), indexing="ij")
    linear = (2 * ix - 3 * iy + 0.5 * iz + 1)[..., None].double()
    coords = torch.rand(50, 3, dtype=torch.float64) * torch.tensor([3.0, 4.0, 5.0])
    sample = trilinear(linear, coords, with_gradient=True)
    torch.testing.assert_close(sample.values[:, 0], 2 * coords[:, 0] - 3 * coords[:, 1] + 0.5 * coords[:, 2] + 1)
    torch.testing.assert_close(sample.gradient[:, 0], torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64).expand(50, 3))


def test_gradient_matches_autograd_and_vanishes_outside():
    values, coords, upper = _grid_and_points(seed=1)
    coords = coords.clone().requires_grad_(True)
    sample = trilinear(values, coords, with_gradient=True)
    for channel in range(values.shape[3]):
        (auto,) = torch.autograd.grad(sample.values[:, channel].sum(), coords, retain_graph=True)
        torch.testing.assert_close(sample.gradient[:, channel], auto, atol=1e-12, rtol=0)
    outside = (coords < 0) | (coords > upper)
    assert bool(outside.any())
    assert float(sample.gradient.detach().permute(0, 2, 1)[outside].abs().max()) == 0.0


def test_values_carry_gradients_to_the_grid():
    values, coords, _ = _grid_and_points(count=20)
    values.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: trilinear(v, coords.clamp(0.1, 2.9)).values, (values,))


def test_shape_guards():
    with pytest.raises(ValueError, match="X, Y, Z >= 2"):
        trilinear(torch.zeros(1, 4, 4, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"coords must be \(N, 3\)"):
        trilinear(torch.zeros(2, 2, 2, 2), torch.zeros(3, 2))
