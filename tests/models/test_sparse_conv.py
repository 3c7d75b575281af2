"""Our sparse convolution and trilinear lookup against dense PyTorch oracles (float64)."""

from __future__ import annotations

import pytest
import torch

from neuralbody.models.sparse_conv import (
    SparseVolume,
    StridedConv3d,
    SubmanifoldConv3d,
    downsampled_coords,
    lookup_rows,
    sort_coords,
    sparse_conv_dense_reference,
    voxel_keys,
)
from neuralbody.models.sparse_grid import trilinear_dense_reference, trilinear_lookup


def _random_volume(seed: int, *, count: int = 80, extent: int = 9, channels: int = 3) -> SparseVolume:
    generator = torch.Generator().manual_seed(seed)
    coords, _ = sort_coords(torch.randint(0, extent, (count, 3), generator=generator))
    features = torch.randn(coords.shape[0], channels, dtype=torch.float64, generator=generator)
    return SparseVolume(coords, features.requires_grad_(True))


def test_keys_and_lookup_find_present_and_reject_missing():
    coords = torch.tensor([[0, 0, 0], [1, 2, 3], [-4, 5, -6], [100, -100, 7]])
    sorted_coords, inverse = sort_coords(coords)
    keys = voxel_keys(sorted_coords)
    assert torch.all(keys[1:] > keys[:-1])
    torch.testing.assert_close(sorted_coords[inverse], coords)
    rows = lookup_rows(keys, voxel_keys(torch.tensor([[1, 2, 3], [1, 2, 4], [-4, 5, -6]])), missing=-1)
    assert rows[1] == -1
    assert torch.equal(sorted_coords[rows[[0, 2]]], torch.tensor([[1, 2, 3], [-4, 5, -6]]))


@pytest.mark.parametrize("layer_type, stride", [(SubmanifoldConv3d, 1), (StridedConv3d, 2)])
def test_sparse_conv_matches_dense_conv3d_values_and_gradients(layer_type, stride):
    volume = _random_volume(seed=stride)
    layer = layer_type(3, 4).double()
    torch.nn.init.normal_(layer.bias)
    out = layer(volume)
    ref_coords, ref_features = sparse_conv_dense_reference(
        volume.coords, volume.features, layer.weight, layer.bias, stride=stride
    )
    assert torch.equal(out.coords, ref_coords)
    assert out.stride == stride
    torch.testing.assert_close(out.features, ref_features, rtol=0, atol=1e-5)
    upstream = torch.randn_like(out.features)
    grads = torch.autograd.grad((out.features * upstream).sum(), (volume.features, layer.weight, layer.bias))
    ref_grads = torch.autograd.grad((ref_features * upstream).sum(), (volume.features, layer.weight, layer.bias))
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, rtol=0, atol=1e-5)


def test_submanifold_keeps_active_set_and_strided_halves_it():
    volume = _random_volume(seed=3, count=200, extent=12)
    assert torch.equal(SubmanifoldConv3d(3, 2).double()(volume).coords, volume.coords)
    coarse = StridedConv3d(3, 2).double()(volume)
    expected = {tuple(c) for c in torch.div(volume.coords, 2, rounding_mode="floor").tolist()}
    assert {tuple(c) for c in coarse.coords.tolist()} == expected
    assert torch.equal(coarse.coords, downsampled_coords(volume.coords))


def test_isolated_voxel_sees_only_the_kernel_centre():
    coords = torch.tensor([[0, 0, 0], [5, 5, 5]])
    features = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    layer = SubmanifoldConv3d(1, 1, bias=False).double()
    out = layer(SparseVolume(coords, features))
    centre = layer.weight[13, 0, 0]  # offset (0, 0, 0)
    torch.testing.assert_close(out.features[:, 0], features[:, 0] * centre)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_trilinear_lookup_matches_grid_sample(stride):
    volume = _random_volume(seed=10 + stride, count=150, extent=8)
    volume = SparseVolume(volume.coords, volume.features, stride)
    generator = torch.Generator().manual_seed(stride)
    points = torch.rand(300, 3, dtype=torch.float64, generator=generator) * 7 * stride
    points.requires_grad_(False)
    ours = trilinear_lookup(volume, points)
    ref = trilinear_dense_reference(volume, points)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    upstream = torch.randn_like(ours)
    (grad,) = torch.autograd.grad((ours * upstream).sum(), volume.features)
    (ref_grad,) = torch.autograd.grad((ref * upstream).sum(), volume.features)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-5)


def test_dense_row_index_and_key_search_find_the_same_corners(monkeypatch):
    """The dense-index gather and the binary-search fallback agree, also off the box and for negative coordinates."""
    from neuralbody.models import sparse_conv, sparse_grid

    generator = torch.Generator().manual_seed(7)
    coords, _ = sort_coords(torch.randint(-5, 6, (120, 3), generator=generator))
    features = torch.randn(coords.shape[0], 4, dtype=torch.float64, generator=generator)
    points = torch.rand(400, 3, dtype=torch.float64, generator=generator) * 16 - 8  # reaches outside the box
    dense_volume = SparseVolume(coords, features)
    assert sparse_grid.dense_row_index(dense_volume) is not None
    dense = trilinear_lookup(dense_volume, points)
    dense_maps = sparse_conv.submanifold_neighbours(dense_volume)
    monkeypatch.setattr(sparse_conv, "MAX_DENSE_CELLS", 1)
    search_volume = SparseVolume(coords, features)
    assert sparse_grid.dense_row_index(search_volume) is None
    torch.testing.assert_close(dense, trilinear_lookup(search_volume, points), rtol=0, atol=0)
    assert torch.equal(dense_maps, sparse_conv.submanifold_neighbours(search_volume))
    shifted = SparseVolume(coords + 5, features)  # non-negative copy for the grid_sample oracle
    torch.testing.assert_close(dense, trilinear_dense_reference(shifted, points + 5), rtol=0, atol=1e-10)
    rows = sparse_grid.corner_rows(dense_volume, coords)
    torch.testing.assert_close(rows, torch.arange(coords.shape[0]))


def test_weighted_row_sum_gradient_matches_embedding_bag_and_gradcheck():
    from neuralbody.models.sparse_grid import weighted_row_sum

    generator = torch.Generator().manual_seed(11)
    table = torch.randn(9, 4, dtype=torch.float64, generator=generator).requires_grad_(True)
    rows = torch.randint(0, 9, (13, 8), generator=generator)
    weights = torch.rand(13, 8, dtype=torch.float64, generator=generator)
    assert torch.autograd.gradcheck(lambda t: weighted_row_sum(t, rows, weights), (table,))
    expected = (weights[:, :, None] * table[rows]).sum(dim=1)  # independent: gather then weight
    torch.testing.assert_close(weighted_row_sum(table, rows, weights), expected)
    upstream = torch.randn(13, 4, dtype=torch.float64, generator=generator)
    (ours,) = torch.autograd.grad((weighted_row_sum(table, rows, weights) * upstream).sum(), table)
    (ref,) = torch.autograd.grad((expected * upstream).sum(), table)
    torch.testing.assert_close(ours, ref)
    with pytest.raises(ValueError, match="rows and weights"):
        weighted_row_sum(table, rows, weights[:, :4])


def test_trilinear_lookup_is_exact_at_voxels_and_zero_far_away():
    volume = _random_volume(seed=20)
    at_voxels = trilinear_lookup(volume, volume.coords.to(torch.float64))
    torch.testing.assert_close(at_voxels, volume.features.detach())
    far = trilinear_lookup(volume, torch.full((4, 3), 100.0, dtype=torch.float64))
    assert torch.all(far == 0)


def test_shape_guards():
    with pytest.raises(ValueError, match="coords"):
        SparseVolume(torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="features"):
        SparseVolume(torch.zeros(4, 3, dtype=torch.long), torch.zeros(5, 3))
    volume = _random_volume(seed=0)
    with pytest.raises(ValueError, match="points"):
        trilinear_lookup(volume, torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="weight"):
        SubmanifoldConv3d(4, 2).double()(volume)


@pytest.mark.gpu
def test_spconv_backend_matches_ours_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from neuralbody.models.sparse_conv_spconv import SpconvSubmanifoldConv3d, spconv_module

    if spconv_module() is None:
        pytest.skip("spconv is not installed")
    volume = _random_volume(seed=5, count=300, extent=10, channels=8)
    cuda_volume = SparseVolume(volume.coords.cuda(), volume.features.detach().float().cuda().requires_grad_(True))
    ours = SubmanifoldConv3d(8, 16).cuda()
    theirs = SpconvSubmanifoldConv3d(8, 16, backend="spconv").cuda()
    theirs.load_state_dict(ours.state_dict())
    a = ours(cuda_volume).features
    b = theirs(SparseVolume(cuda_volume.coords, cuda_volume.features)).features
    torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3)
    grad_a = torch.autograd.grad(a.sum(), ours.weight)[0]
    grad_b = torch.autograd.grad(b.sum(), theirs.weight)[0]
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-3, atol=1e-3)


def test_cell_corner_rows_and_weights_match_the_per_corner_forms():
    """The per-cell fast path gives the rows of corner_rows (inside, on and off the box) and the weights of the formula."""
    from neuralbody.models.sparse_grid import CORNERS, cell_corner_rows, corner_rows, trilinear_weights

    generator = torch.Generator().manual_seed(3)
    coords, _ = sort_coords(torch.randint(-4, 5, (90, 3), generator=generator))
    volume = SparseVolume(coords, torch.zeros(coords.shape[0], 1))
    base = torch.randint(-7, 8, (500, 3), generator=generator)  # interior, border and outside cells
    corners = torch.tensor(CORNERS)
    assert torch.equal(cell_corner_rows(volume, base), corner_rows(volume, base[:, None, :] + corners[None]))
    frac = torch.rand(50, 3, dtype=torch.float64, generator=generator)
    expected = torch.where(corners[None].bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(dim=2)
    torch.testing.assert_close(trilinear_weights(frac), expected)
    torch.testing.assert_close(trilinear_weights(frac).sum(dim=1), torch.ones(50, dtype=torch.float64))
