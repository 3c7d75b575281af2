"""Rays through a voxel grid (Warp DDA) against the plane-crossing oracle, plus shape guards."""

from __future__ import annotations

import pytest
import torch

from neuralbody.data.cameras import ray_box_intersection
from neuralbody.geometry.grid_traversal import grid_band_samples, grid_band_samples_reference


def _rays_into_box(occupied, origin, cell, count, generator, *, axis_aligned=0, inside=0):
    box_min = origin
    box_max = origin + cell * torch.tensor(occupied.shape, dtype=torch.float32)
    rays_o = torch.randn(count, 3, generator=generator) * 2.0
    rays_o[:inside] = box_min + torch.rand(inside, 3, generator=generator) * (box_max - box_min)  # start inside
    targets = box_min + torch.rand(count, 3, generator=generator) * (box_max - box_min)
    rays_d = torch.nn.functional.normalize(targets - rays_o, dim=1)
    rays_d[inside:inside + axis_aligned, :2] = 0.0  # along z only, then along x only
    rays_d[inside:inside + axis_aligned // 2, 2] = 1.0
    rays_d[inside + axis_aligned // 2:inside + axis_aligned] = torch.tensor([-1.0, 0.0, 0.0])
    rays_o[inside:inside + axis_aligned] = targets[inside:inside + axis_aligned] - 2.0 * rays_d[inside:inside + axis_aligned]
    near, far, hit = ray_box_intersection(rays_o, rays_d, box_min, box_max)
    return rays_o[hit], rays_d[hit], near[hit], far[hit]


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_plane_crossing_oracle(seed):
    generator = torch.Generator().manual_seed(seed)
    occupied = torch.rand((7, 5, 9), generator=generator) < 0.3
    origin, cell = torch.tensor([-0.3, 0.1, -0.5]), 0.1
    rays_o, rays_d, near, far = _rays_into_box(occupied, origin, cell, 300, generator, axis_aligned=20, inside=30)
    offsets = torch.rand(rays_o.shape[0], 6, generator=generator)
    t, length = grid_band_samples(occupied, origin, cell, rays_o, rays_d, near, far, offsets)
    t_ref, length_ref = grid_band_samples_reference(occupied, origin, cell, rays_o, rays_d, near, far, offsets)
    assert rays_o.shape[0] > 250
    assert (length_ref == 0).sum() > 3 and (length_ref > 0).sum() > 100  # rays that cross nothing, and many that do
    assert torch.allclose(length.double(), length_ref, atol=1e-5)
    assert torch.allclose(t.double(), t_ref, atol=1e-5)
    assert torch.equal(t[length_ref == 0], near[length_ref == 0, None].expand(-1, 6))  # empty bands sit at near


def test_full_and_empty_grids_have_known_lengths():
    generator = torch.Generator().manual_seed(2)
    origin, cell = torch.zeros(3), 0.05
    full = torch.ones((4, 6, 3), dtype=torch.bool)
    rays_o, rays_d, near, far = _rays_into_box(full, origin, cell, 100, generator)
    centres = torch.full((rays_o.shape[0], 4), 0.5)
    t, length = grid_band_samples(full, origin, cell, rays_o, rays_d, near, far, centres)
    assert torch.allclose(length, far - near, atol=1e-6)  # every cell kept: the whole stretch
    expected = near[:, None] + (far - near)[:, None] * (torch.arange(4) + 0.5) / 4  # stratum centres
    assert torch.allclose(t, expected, atol=1e-6)
    t, length = grid_band_samples(torch.zeros_like(full), origin, cell, rays_o, rays_d, near, far, centres)
    assert torch.equal(length, torch.zeros_like(length))


def test_shape_guards():
    occupied = torch.ones((2, 2, 2), dtype=torch.bool)
    rays = torch.zeros(3, 3)
    span = torch.zeros(3)
    offsets = torch.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="occupied"):
        grid_band_samples(occupied[0], torch.zeros(3), 0.1, rays, rays, span, span, offsets)
    with pytest.raises(ValueError, match="rays_o"):
        grid_band_samples(occupied, torch.zeros(3), 0.1, rays[:, :2], rays[:, :2], span, span, offsets)
    with pytest.raises(ValueError, match="near"):
        grid_band_samples(occupied, torch.zeros(3), 0.1, rays, rays, span[:2], span, offsets)
    with pytest.raises(ValueError, match="offsets"):
        grid_band_samples(occupied, torch.zeros(3), 0.1, rays, rays, span, span, offsets[:2])
    with pytest.raises(ValueError, match="cell"):
        grid_band_samples(occupied, torch.zeros(3), 0.0, rays, rays, span, span, offsets)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_walk_matches_the_cpu_walk():
    generator = torch.Generator().manual_seed(4)
    occupied = torch.rand((9, 7, 11), generator=generator) < 0.3
    origin, cell = torch.tensor([-0.2, 0.0, -0.4]), 0.07
    rays_o, rays_d, near, far = _rays_into_box(occupied, origin, cell, 500, generator, axis_aligned=10, inside=20)
    offsets = torch.rand(rays_o.shape[0], 8, generator=generator)
    t_cpu, length_cpu = grid_band_samples(occupied, origin, cell, rays_o, rays_d, near, far, offsets)
    t_gpu, length_gpu = grid_band_samples(occupied.cuda(), origin, cell, rays_o.cuda(), rays_d.cuda(), near.cuda(),
                                          far.cuda(), offsets.cuda())
    assert t_gpu.device.type == "cuda"
    torch.testing.assert_close(length_gpu.cpu(), length_cpu, rtol=0, atol=1e-5)
    torch.testing.assert_close(t_gpu.cpu(), t_cpu, rtol=0, atol=1e-5)
