"""Colour: the colour network learns a colour field, scans' colours at points, PLY colours, colour renders,
training and fitting the colour code (tiny sizes)."""

import numpy as np
import pytest
import torch

from neuralbody.gdna.coarse import CoarseOptions
from neuralbody.gdna.colour import ColourNetwork, ColourOptions, colour_loss
from neuralbody.gdna.correspondences import NormalTargets, OccupancyTargets
from neuralbody.gdna.detail import DetailOptions
from neuralbody.gdna.latents import LatentCodes, fit_distribution
from neuralbody.gdna.meshing import NormalMesh, Person, write_ply
from neuralbody.gdna.model import GenerativeModel, ModelSpec
from neuralbody.gdna.normal_render import AMBIENT, BACKGROUND, render_colours
from neuralbody.gdna.scan_colours import colour_error, surface_colours, surface_colours_reference
from neuralbody.gdna.training import TrainSettings, make_optimizers, step_loss
from neuralbody.gdna.training_data import PreparedScan

SMALL = CoarseOptions(spacings=(0.5, 0.25), features=2, freqs=2, hidden=16, layers=2, latent=4, shape_dim=2)
DETAIL = DetailOptions(freqs=2, hidden=16, layers=2, latent=4, feature=16)
COLOUR = ColourOptions(freqs=2, hidden=16, layers=2, latent=4, feature=16)


def _linear_colour(points):
    """A linear colour field in [0, 1] over [-1, 1]^3."""
    return torch.stack([0.5 + 0.3 * points[:, 0], 0.4 - 0.2 * points[:, 1], 0.5 + 0.1 * points[:, 0] + 0.2 * points[:, 2]],
                       dim=1)


@pytest.mark.parametrize("field", ["constant", "linear"])
def test_colour_network_learns_a_constant_and_a_linear_field(field):
    torch.manual_seed(0)
    net = ColourNetwork(COLOUR)
    points = 2.0 * torch.rand(256, 3) - 1.0
    features, code = torch.randn(256, 16), torch.zeros(4)
    target = torch.tensor([0.8, 0.3, 0.1]).expand(256, 3) if field == "constant" else _linear_colour(points)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        loss = colour_loss(net(points, code, features), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    fresh = 2.0 * torch.rand(64, 3) - 1.0
    out = net(points, code, features).detach()
    assert colour_error(out, target) < 6.0  # 0-255 units
    assert bool((out >= 0).all() and (out <= 1).all())
    with pytest.raises(ValueError, match="latent"):
        net(fresh, torch.zeros(5), torch.randn(64, 16))


def _cube():
    vertices = torch.tensor([[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)], dtype=torch.float32)
    faces = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                          [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return vertices, faces


def test_surface_colours_interpolate_at_the_closest_point_like_the_brute_force_oracle():
    vertices, faces = _cube()
    colours = torch.rand(8, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(surface_colours(vertices, faces, colours, vertices), colours, atol=1e-5)
    points = 1.6 * torch.rand(40, 3, generator=torch.Generator().manual_seed(2)) - 0.3
    fast = surface_colours(vertices, faces, colours, points)
    assert torch.allclose(fast.double(), surface_colours_reference(vertices, faces, colours, points), atol=1e-4)
    assert colour_error(torch.zeros(4, 3), torch.ones(4, 3)) == pytest.approx(255.0)
    assert colour_error(torch.full((4, 3), 0.5), torch.full((4, 3), 0.6)) == pytest.approx(25.5)


def test_ply_colours_are_written_and_read_back(tmp_path):
    import trimesh

    vertices, faces = _cube()
    normals = torch.nn.functional.normalize(vertices - 0.5, dim=1).numpy()
    colours = np.random.default_rng(0).random((8, 3))
    write_ply(tmp_path / "c.ply", NormalMesh(vertices.double().numpy(), faces.numpy(), normals, colours))
    mesh = trimesh.load(tmp_path / "c.ply", process=False)
    read = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
    assert np.abs(read - colours).max() <= 0.5 / 255.0 + 1e-9
    assert np.allclose(np.asarray(mesh.vertex_normals), normals, atol=1e-5)


def test_colour_render_of_a_flat_square_shows_its_colour():
    vertices = np.array([[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = np.tile([0.0, -1.0, 0.0], (4, 1))  # facing the viewer (who looks along +y)
    colour = np.array([0.9, 0.5, 0.2])
    mesh = NormalMesh(vertices, faces, normals, np.tile(colour, (4, 1)))
    flat = render_colours(mesh, 8, np.zeros(3), 2.0, shade=False)
    assert np.allclose(flat[4, 4], colour, atol=1e-5) and np.allclose(flat[0, 0], BACKGROUND)  # corner outside
    tilted = NormalMesh(vertices, faces, np.tile([0.0, -0.6, 0.8], (4, 1)), mesh.colours)
    shaded = render_colours(tilted, 8, np.zeros(3), 2.0)
    assert np.allclose(shaded[4, 4], colour * (AMBIENT + (1 - AMBIENT) * 0.6), atol=1e-5)


def _coloured_scans(count=2, points=128):
    """Spheres of two sizes, each one constant colour; candidates are the points themselves."""
    scans, palette = [], torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.3, 0.8]])
    for i in range(count):
        generator = torch.Generator().manual_seed(i)
        xyz = 2.0 * torch.rand(points, 3, generator=generator) - 1.0
        surface = torch.nn.functional.normalize(torch.randn(64, 3, generator=generator), dim=1) * (0.4 + 0.2 * i)
        normals = NormalTargets(surface, torch.eye(3).expand(64, 3, 3).clone(),
                                torch.nn.functional.normalize(surface, dim=1), palette[i].expand(64, 3).clone())
        occupancy = OccupancyTargets(xyz[:, None], torch.ones(points, 1, dtype=torch.bool),
                                     (xyz.norm(dim=1) < 0.4 + 0.2 * i).float())
        scans.append(PreparedScan(torch.tensor([0.1 * i, 0.5]), occupancy, normals, xyz[xyz.norm(dim=1) > 0.9]))
    return scans, palette


@pytest.fixture(scope="module")
def coloured_model():
    """A tiny model whose detail stage (with colour) was trained on two spheres of two colours."""
    torch.manual_seed(0)
    spec = ModelSpec([-1.0] * 3, [1.0] * 3, SMALL, DETAIL, COLOUR)
    model, codes = GenerativeModel(spec), LatentCodes(2, 4, 4, colour_width=4)
    scans, palette = _coloured_scans()
    settings = TrainSettings(steps=10, scans_per_step=2, points_per_scan=64, lr=1e-2, latent_lr=3e-2)
    optimizer = make_optimizers(model, codes, settings).detail
    for step in range(150):
        loss = step_loss(model, codes, scans, np.arange(2), np.random.default_rng(step), settings, coarse=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.requires_grad_(False), codes, scans, palette


def _error(model, person, scan, colour):
    with torch.no_grad():
        predicted = model.colours(scan.normals.canonical, person.shape_code, person.colour_code, scan.shapes)
    return colour_error(predicted, colour.expand(len(predicted), 3))


def test_detail_stage_trains_the_colour_of_each_scan_by_its_own_code(coloured_model):
    model, codes, scans, palette = coloured_model
    for i, scan in enumerate(scans):
        person = Person(codes.shape[i], codes.detail[i], scan.shapes, codes.colour[i])
        assert _error(model, person, scan, palette[i]) < 15.0  # 0-255 units
    distribution = fit_distribution(codes.shape, codes.detail, torch.stack([s.shapes for s in scans]),
                                    colour_codes=codes.colour)
    _, _, colour, _ = distribution.split(distribution.sample(3, seed=0))
    assert colour.shape == (3, 4) and distribution.colour_width == 4


def test_fitting_the_colour_code_and_refining_the_network_reproduce_a_toy_scans_colour(coloured_model):
    from neuralbody.gdna.fitting import FitSettings, FitTargets, fit_codes

    model, codes, scans, palette = coloured_model
    scan = scans[0]
    targets = FitTargets(scan.occupancy, scan.normals, scan.free)
    start = Person(codes.shape[0], codes.detail[0], scan.shapes, codes.colour.mean(dim=0))  # the mean colour code
    before = _error(model, start, scan, palette[0])
    settings = FitSettings(shape_steps=0, detail_steps=0, colour_steps=100, points=64, lr=5e-2, prior_weight=0.0)
    fitted, _ = fit_codes(model, targets, start, settings, progress=False)
    assert _error(model, fitted, scan, palette[0]) < min(15.0, 0.5 * before)
    # refining the network on a colour no training scan had (code and network both move); on a copy
    import copy

    green = torch.tensor([0.2, 0.9, 0.3])
    scan_green = PreparedScan(scan.shapes, scan.occupancy, NormalTargets(scan.normals.canonical, scan.normals.inverse_transpose,
                              scan.normals.normals, green.expand(64, 3).clone()), scan.free)
    targets = FitTargets(scan_green.occupancy, scan_green.normals, scan_green.free)
    refined_model = copy.deepcopy(model)
    refined = FitSettings(shape_steps=0, detail_steps=0, colour_steps=50, finetune_steps=150, finetune_lr=1e-2,
                          points=64, lr=5e-2)
    person, _ = fit_codes(refined_model, targets, start, refined, progress=False)
    assert _error(refined_model, person, scan_green, green) < 5.0
    assert _error(model, start, scan, palette[0]) == pytest.approx(before)  # the original network is untouched


def test_colour_codes_leave_the_geometry_of_a_draw_unchanged():
    generator = torch.Generator().manual_seed(3)
    shape, detail, beta = torch.randn(12, 3, generator=generator), torch.randn(12, 2, generator=generator), torch.rand(12, 2)
    colour = 0.5 * shape[:, :2] + 0.1 * torch.randn(12, 2, generator=generator)  # correlated with the shape
    plain, coloured = fit_distribution(shape, detail, beta), fit_distribution(shape, detail, beta, colour_codes=colour)
    a, b = plain.split(plain.sample(6, seed=4)), coloured.split(coloured.sample(6, seed=4))
    for x, y in zip(a[:2] + a[3:], b[:2] + b[3:]):  # z_shape, z_detail, beta
        assert torch.allclose(x, y, atol=1e-5)
    assert a[2].shape == (6, 0) and b[2].shape == (6, 2)
    drawn = coloured.split(coloured.sample(4000, seed=5))
    correlation = torch.corrcoef(torch.stack([drawn[0][:, 0], drawn[2][:, 0]]))[0, 1]
    assert float(correlation) > 0.8  # the colour follows the geometry through the covariance
