"""Coarse and detail networks, latent codes and their distribution, the losses (tiny sizes)."""

import numpy as np
import pytest
import torch

from neuralbody.gdna.coarse import CoarseOptions, CoarseShape
from neuralbody.gdna.correspondences import NormalTargets, OccupancyTargets, posed_normals
from neuralbody.gdna.detail import DetailNormals, DetailOptions
from neuralbody.gdna.latents import LatentCodes, fit_distribution, prior_loss
from neuralbody.gdna.losses import posed_logits
from neuralbody.gdna.model import GenerativeModel, ModelSpec
from neuralbody.gdna.training import TrainSettings, make_optimizers, step_loss
from neuralbody.gdna.training_data import PreparedScan

SMALL = CoarseOptions(spacings=(0.5, 0.25), features=2, freqs=2, hidden=16, layers=2, latent=4, shape_dim=2)
DETAIL = DetailOptions(freqs=2, hidden=16, layers=2, latent=4, feature=16)


def _toy_scans(count=3, points=256):
    """Spheres of radii 0.3, 0.45, 0.6 m: candidates are the points themselves (K = 1), all valid."""
    scans = []
    for i in range(count):
        generator = torch.Generator().manual_seed(i)
        xyz = 2.0 * torch.rand(points, 3, generator=generator) - 1.0
        inside = (xyz.norm(dim=1) < 0.3 + 0.15 * i).float()
        surface = torch.nn.functional.normalize(torch.randn(64, 3, generator=generator), dim=1)
        normals = NormalTargets(surface * (0.3 + 0.15 * i), torch.eye(3).expand(64, 3, 3).clone(), surface)
        occupancy = OccupancyTargets(xyz[:, None], torch.ones(points, 1, dtype=torch.bool), inside)
        free = xyz[xyz.norm(dim=1) > 0.9]  # outside every sphere
        scans.append(PreparedScan(torch.tensor([0.1 * i, 0.5]), occupancy, normals, free))
    return scans


def test_auto_decoder_steps_reduce_the_loss():
    torch.manual_seed(0)
    spec = ModelSpec([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], SMALL, DETAIL)
    model, codes, scans = GenerativeModel(spec), LatentCodes(3, 4, 4), _toy_scans()
    settings = TrainSettings(steps=60, scans_per_step=3, points_per_scan=256, lr=1e-2, latent_lr=1e-2)
    optimizers = make_optimizers(model, codes, settings)
    chosen = np.arange(3)

    def loss(coarse):
        return float(step_loss(model, codes, scans, chosen, np.random.default_rng(0), settings, coarse).detach())

    before_occ, before_normal, start_codes = loss(True), loss(False), codes.shape.detach().clone()
    for coarse, optimizer in ((True, optimizers.coarse), (False, optimizers.detail)):
        for step in range(40):
            value = step_loss(model, codes, scans, chosen, np.random.default_rng(step), settings, coarse)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
    assert loss(True) < 0.8 * before_occ
    assert loss(False) < 0.8 * before_normal
    assert not torch.equal(codes.shape, start_codes)  # the codes are learned, not only the networks


def test_detail_output_is_unit_and_posed_normals_follow_the_jacobian():
    net = DetailNormals(DETAIL)
    points = torch.randn(50, 3)
    normals = net(points, torch.randn(4), torch.randn(50, 16))
    assert torch.allclose(normals.norm(dim=1), torch.ones(50), atol=1e-5)
    with torch.no_grad():
        net.mlp[-1].weight.zero_()
        net.mlp[-1].bias.zero_()
    assert torch.allclose(net(points, torch.randn(4), torch.randn(50, 16)), torch.tensor([0.0, 0.0, 1.0]).expand(50, 3))
    # a shear x' = x + 2 z: the plane z = 0 (normal e_z) maps to itself; J^{-T} e_z must stay e_z
    jacobian = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    inverse_t = torch.linalg.inv(jacobian).T
    moved = posed_normals(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), inverse_t.expand(2, 3, 3))
    assert torch.allclose(moved[0], torch.tensor([0.0, 0.0, 1.0]))
    # the plane x = 0 (normal e_x): its posed normal is orthogonal to the posed tangents J e_y, J e_z, still outward
    for tangent in (torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])):
        assert abs(float(moved[1] @ (jacobian @ tangent))) < 1e-6
    assert float(moved[1] @ (jacobian @ torch.tensor([1.0, 0.0, 0.0]))) > 0


def test_posed_logits_take_the_largest_valid_candidate():
    coarse = CoarseShape(torch.full((3,), -1.0), torch.ones(3), SMALL)
    candidates = torch.randn(5, 3, 3) * 0.3
    valid = torch.tensor([[True, True, False], [False, True, True], [False, False, False], [True, False, False],
                          [True, True, True]])
    out = posed_logits(coarse, candidates, valid, torch.zeros(4), torch.zeros(2))
    every, _ = coarse(candidates.reshape(-1, 3), torch.zeros(4), torch.zeros(2))
    every = every.reshape(5, 3).detach()
    for i in range(5):
        expected = max(float(every[i, k]) for k in range(3) if valid[i, k]) if valid[i].any() else -20.0
        assert float(out[i].detach()) == pytest.approx(expected, abs=1e-5)


def test_latent_prior_and_fitted_distribution():
    codes = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert float(prior_loss(codes, 0.1)) == pytest.approx(0.1 * 25.0 / 2)
    generator = torch.Generator().manual_seed(0)
    shape = torch.randn(4000, 2, generator=generator) * torch.tensor([1.0, 0.5]) + 2.0
    detail = torch.randn(4000, 1, generator=generator)
    beta = torch.rand(4000, 2, generator=generator)
    dist = fit_distribution(shape, detail, beta)
    drawn = dist.sample(4000, seed=1)
    assert torch.allclose(drawn[:, :2].mean(dim=0), torch.tensor([2.0, 2.0]), atol=0.08)
    assert torch.allclose(drawn[:, :2].std(dim=0), torch.tensor([1.0, 0.5]), atol=0.08)
    _, _, colour, shapes = dist.split(drawn)
    assert colour.shape == (len(drawn), 0)
    assert bool((shapes >= dist.shapes_min).all() and (shapes <= dist.shapes_max).all())
    with pytest.raises(ValueError):
        fit_distribution(shape, detail[:3], beta)
