"""The density occupancy used by whole-image renders: known answers on a ball, same image, fewer queries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuralbody.data.cameras import Camera
from neuralbody.models.base import RadianceFieldModel
from toy_fields import DelegateField
from neuralbody.rendering.density_grid import DensityOccupancy, build_density_grid, grid_occupied
from neuralbody.rendering.render import RenderSettings, frame_occupancy, render_view


class CountingBall(RadianceFieldModel):
    """Density ``sigma`` inside a ball of radius ``radius`` at ``centre``, colour by height; counts queried points.

    ``band`` > 0 adds ``occupied_world``: a shell ``band`` metres wider than the ball (the body
    model's occupancy would be such a band).
    """

    def __init__(self, sigma: float = 300.0, radius: float = 0.3, band: float = 0.0) -> None:
        super().__init__()
        self.sigma, self.radius, self.band = sigma, radius, band
        self.centre = torch.tensor([0.1, -0.05, 0.0])
        self.queried = 0
        self.points = []

    def prepare_frame(self, frame_index, body):
        r = self.radius + 0.2
        return DelegateField(self, frame_index, self.centre - r, self.centre + r)

    def field_query(self, field, points_world, viewdirs):
        self.queried += points_world.shape[0]
        self.points.append(points_world)
        inside = (points_world - self.centre).norm(dim=1) < self.radius
        sigma = torch.where(inside, torch.full_like(points_world[:, 0], self.sigma), torch.zeros_like(points_world[:, 0]))
        rgb = torch.stack([(points_world[:, 2] + 1) / 2, torch.full_like(sigma, 0.3), torch.full_like(sigma, 0.8)], dim=1)
        return sigma, rgb.clamp(0, 1)

    def field_occupied(self, field, points_world):
        if self.band <= 0:
            return None
        return (points_world - self.centre).norm(dim=1) < self.radius + self.band


def _camera(size: int = 48) -> Camera:
    focal = 1.2 * size
    return Camera(K=np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]]), R=np.eye(3),
                  T=np.array([-0.1, 0.05, 2.5]), D=np.zeros(5), width=size, height=size)


def test_grid_keeps_exactly_the_dilated_dense_cells():
    model = CountingBall(radius=0.3)
    field = model.prepare_frame(0, None)
    cell = 0.05
    for subdivide in (1, 2):
        grid = build_density_grid(field, cell=cell, min_density=1.0, dilation=1, subdivide=subdivide)
        # independent computation: centres inside the ball, split into sub-cells, dilated by one with numpy
        coarse_shape = [int(np.ceil(float(e) / cell)) for e in field.box_max - field.box_min]
        index = np.stack(np.meshgrid(*[np.arange(n) for n in coarse_shape], indexing="ij"), axis=-1)
        centres = field.box_min.numpy() + (index + 0.5) * cell
        dense = np.linalg.norm(centres - model.centre.numpy(), axis=-1) < 0.3
        for axis in range(3):
            dense = np.repeat(dense, subdivide, axis=axis)
        shape = dense.shape
        padded = np.pad(dense, 1)
        expected = np.zeros_like(dense)
        for dx in range(3):
            for dy in range(3):
                for dz in range(3):
                    expected |= padded[dx : dx + shape[0], dy : dy + shape[1], dz : dz + shape[2]]
        np.testing.assert_array_equal(grid.occupied.numpy(), expected)
        assert grid.cell == pytest.approx(cell / subdivide) and grid.centre_spacing == cell
        assert 0 < grid.fraction < 1 and grid.min_density == 1.0
    # point test: the ball's centre is kept, a box corner is not, outside the grid is False
    points = torch.stack([model.centre, field.box_min + 1e-3, field.box_max + 1.0])
    assert grid_occupied(grid, points).tolist() == [True, False, False]


def test_grid_respects_model_occupancy_and_guards():
    model = CountingBall(radius=0.3, band=0.05)
    field = model.prepare_frame(0, None)
    build_density_grid(field, cell=0.05)
    cells = int(np.prod([np.ceil(float(e) / 0.05) for e in field.box_max - field.box_min]))
    assert model.queried < cells  # only the model's occupied band was queried
    with pytest.raises(ValueError, match="cell"):
        build_density_grid(field, cell=0.0)
    with pytest.raises(ValueError, match="min_density"):
        build_density_grid(field, min_density=-1.0)
    with pytest.raises(ValueError, match="subdivide"):
        build_density_grid(field, subdivide=0)
    grid = DensityOccupancy(origin=torch.zeros(3), cell=0.1, occupied=torch.ones(2, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="points_world"):
        grid_occupied(grid, torch.zeros(4, 2))


def test_render_with_density_grid_matches_and_queries_fewer_points():
    background = torch.tensor([0.0, 0.0, 1.0])
    camera = _camera()
    images, queried = {}, {}
    for cell in (0.0, 0.03):
        model = CountingBall(band=0.15)
        field = model.prepare_frame(0, None)
        settings = RenderSettings(num_samples=64, density_grid_cell=cell)
        occupancy = frame_occupancy(field, settings)  # built once per frame; every view of it reuses it
        assert (occupancy is not None) == (cell > 0)
        model.queried = 0
        images[cell] = render_view(field, camera, settings=settings, background=background, occupancy=occupancy)
        queried[cell] = model.queried
    assert images[0.0].acc.max() > 0.99 and images[0.0].acc.min() == 0  # the ball is in view, with background around
    torch.testing.assert_close(images[0.03].rgb, images[0.0].rgb, atol=2e-2, rtol=0)
    assert (images[0.03].rgb - images[0.0].rgb).abs().mean() < 2e-3
    assert queried[0.03] < 0.8 * queried[0.0]  # rendering itself


def test_render_view_builds_the_occupancy_its_settings_ask_for_and_reuses_a_given_one():
    model = CountingBall(band=0.15)
    field = model.prepare_frame(0, None)
    camera = _camera(16)
    occupancy = frame_occupancy(field, RenderSettings(density_grid_cell=0.05))
    assert occupancy.centre_spacing == 0.05 and frame_occupancy(field, RenderSettings(density_grid_cell=0.0)) is None
    settings = RenderSettings(density_grid_cell=0.04)
    model.queried = 0
    built = render_view(field, camera, settings=settings, background=torch.zeros(3))
    with_build = model.queried
    occupancy = frame_occupancy(field, settings)
    model.queried = 0
    given = render_view(field, camera, settings=settings, background=torch.zeros(3), occupancy=occupancy)
    assert model.queried < with_build  # the grid was built outside this render (its queries not counted twice)
    torch.testing.assert_close(given.rgb, built.rgb)


def test_rays_with_an_empty_band_are_not_queried():
    from neuralbody.rendering.render import render_rays

    model = CountingBall(band=0.05)
    field = model.prepare_frame(0, None)
    # both rays cross the box; only the first meets the ball's band
    rays_o = torch.tensor([[0.1, -0.05, -2.0], [0.1 + 0.45, -0.05 + 0.45, -2.0]])
    rays_d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    settings = RenderSettings(num_samples=16, segment_samples=16, density_grid_cell=0.0)
    with torch.no_grad():
        out = render_rays(field, rays_o, rays_d, settings=settings, background=torch.ones(3))
    density_queries = [points for points in model.points if points.shape[0] == 16]
    assert len(density_queries) == 1  # the density of one segment of the first ray only (then colour where needed)
    queried = torch.cat(model.points)
    torch.testing.assert_close(queried[:, :2], rays_o[:1, :2].expand(queried.shape[0], 2))  # all on the first ray
    assert out.acc[0] > 0.99 and out.acc[1] == 0 and torch.equal(out.rgb[1], torch.ones(3))
    assert F.relu(out.rgb[0] - 1).sum() == 0


def test_points_occupied_matches_a_bounds_checked_lookup_and_handles_outside_and_nan():
    from neuralbody.models.occupancy import occupancy_grid, points_occupied

    generator = torch.Generator().manual_seed(4)
    grid = occupancy_grid(torch.rand(300, 3, generator=generator) * 0.5, cell=0.02, margin=0.03)
    points = torch.rand(20000, 3, generator=generator) * 1.2 - 0.35  # inside and around the grid
    points[:3] = torch.tensor([[float("nan"), 0.1, 0.1], [1e9, 0.0, 0.0], [-1e9, -1e9, -1e9]])
    occupancy, origin = grid.occupied, grid.origin
    cells = torch.floor((points - origin) / 0.02)
    size = torch.tensor(occupancy.shape)
    expected = torch.zeros(points.shape[0], dtype=torch.bool)
    for i, c in enumerate(cells.tolist()):  # slow, obvious oracle
        if all(c[k] == c[k] and 0 <= c[k] < size[k] for k in range(3)):
            expected[i] = bool(occupancy[int(c[0]), int(c[1]), int(c[2])])
    found = points_occupied(grid, points)
    assert torch.equal(found, expected)
    assert expected.any() and not expected.all()


def test_grid_samples_lie_in_kept_cells_and_measure_the_crossed_stretch():
    """Dense stepping along random rays: every sample is in a kept cell, and the band's length
    matches the stretch of kept cells the ray crosses (to the stepping's resolution)."""
    from neuralbody.rendering.density_grid import grid_samples

    generator = torch.Generator().manual_seed(5)
    occupied = torch.rand(40, 30, 50, generator=generator) > 0.995  # sparse specks, single cells
    occupied[10:14, 10:12, 20:30] = True  # and one block
    grid = DensityOccupancy(origin=torch.tensor([-0.4, -0.3, 0.0]), cell=0.02, occupied=occupied)
    box_min, box_max = grid.origin, grid.origin + 0.02 * torch.tensor([40.0, 30.0, 50.0])
    targets = box_min + torch.rand(600, 3, generator=generator) * (box_max - box_min)
    rays_o = targets + torch.nn.functional.normalize(torch.randn(600, 3, generator=generator), dim=1) * 3.0
    rays_d = torch.nn.functional.normalize(targets - rays_o, dim=1)
    inv = 1.0 / rays_d
    t0, t1 = (box_min - rays_o) * inv, (box_max - rays_o) * inv
    near = torch.minimum(t0, t1).amax(dim=1)
    far = torch.maximum(t0, t1).amin(dim=1)
    samples = grid_samples(grid, rays_o, rays_d, near, far, num_samples=8)
    steps = 4000
    t = near[:, None] + (far - near)[:, None] * (torch.arange(steps) + 0.5)[None] / steps  # 0.4 mm steps at most
    inside = grid_occupied(grid, (rays_o[:, None] + t[..., None] * rays_d[:, None]).reshape(-1, 3)).reshape(600, -1)
    stepped_length = inside.float().sum(dim=1) * (far - near) / steps
    band_length = samples.deltas[:, 0] * 8
    crossed = inside.any(dim=1)
    assert crossed.sum() > 50 and (~crossed).sum() > 50  # both kinds of ray are tested
    assert torch.allclose(band_length, stepped_length, atol=2e-3)  # a few steps' rounding per crossing
    assert (band_length[~crossed] < 2e-3).all()
    kept = grid_occupied(grid, samples.points[crossed].reshape(-1, 3))
    assert kept.float().mean() > 0.999  # samples sit in kept cells (a rare one on a cell face may not)
    assert (samples.t[:, 1:] >= samples.t[:, :-1]).all()  # front to back
