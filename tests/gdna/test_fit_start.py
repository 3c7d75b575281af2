"""Best-of-K initialisation of a scan fit: the candidate code with the lowest loss (tiny sizes)."""

import numpy as np
import pytest
import torch

from neuralbody.gdna.coarse import CoarseOptions
from neuralbody.gdna.correspondences import NormalTargets, OccupancyTargets
from neuralbody.gdna.detail import DetailOptions
from neuralbody.gdna.fit_start import lowest_loss_code, lowest_loss_code_reference
from neuralbody.gdna.fitting import CodeCandidates, FitSettings, FitTargets, fit_codes
from neuralbody.gdna.losses import free_space_loss, occupancy_loss
from neuralbody.gdna.meshing import Person
from neuralbody.gdna.model import GenerativeModel, ModelSpec

SMALL = CoarseOptions(spacings=(0.5, 0.25), features=2, freqs=2, hidden=16, layers=2, latent=4, shape_dim=2)
DETAIL = DetailOptions(freqs=2, hidden=16, layers=2, latent=4, feature=16)


def test_lowest_loss_code_picks_the_nearest_code_of_a_quadratic_like_the_loop():
    generator = torch.Generator().manual_seed(0)
    candidates = torch.randn(12, 5, generator=generator)
    target = torch.randn(5, generator=generator)
    best = lowest_loss_code(candidates, lambda z: (z - target).square().sum())
    assert best.index == int((candidates - target).norm(dim=1).argmin())
    assert best.index == lowest_loss_code_reference(candidates, lambda z: (z - target).square().sum())
    torch.testing.assert_close(best.losses, (candidates - target).square().sum(dim=1).double())
    best.code.add_(1.0)  # a copy: the candidates stay as they were
    assert not torch.equal(best.code, candidates[best.index])


def test_nan_never_wins_and_ties_go_to_the_first_candidate():
    candidates = torch.tensor([[1.0], [0.0], [0.0], [5.0]])
    losses = {1.0: 2.0, 0.0: 1.0, 5.0: float("nan")}
    best = lowest_loss_code(candidates, lambda z: torch.tensor(losses[float(z)]))
    assert best.index == 1 == lowest_loss_code_reference(candidates, lambda z: torch.tensor(losses[float(z)]))
    only_nan = lowest_loss_code(candidates[3:], lambda z: torch.tensor(float("nan")))
    assert only_nan.index == 0
    with pytest.raises(ValueError, match="non-empty"):
        lowest_loss_code(torch.zeros(0, 3), lambda z: z.sum())
    with pytest.raises(ValueError, match="start must be"):
        FitSettings(start="random")


def _sphere_targets(radius=0.5, points=512):
    """A sphere scan whose candidates are the points themselves (K = 1): occupancy, surface, free space."""
    generator = torch.Generator().manual_seed(3)
    xyz = 2.0 * torch.rand(points, 3, generator=generator) - 1.0
    occupancy = OccupancyTargets(xyz[:, None], torch.ones(points, 1, dtype=torch.bool), (xyz.norm(dim=1) < radius).float())
    surface = torch.nn.functional.normalize(torch.randn(64, 3, generator=generator), dim=1)
    normals = NormalTargets(surface * radius, torch.eye(3).expand(64, 3, 3).clone(), surface)
    return FitTargets(occupancy, normals, xyz[xyz.norm(dim=1) > 0.9])


def test_fit_starts_from_the_candidate_with_the_lowest_shape_loss():
    torch.manual_seed(0)
    model = GenerativeModel(ModelSpec([-1.0] * 3, [1.0] * 3, SMALL, DETAIL)).requires_grad_(False)
    targets, shapes = _sphere_targets(), torch.tensor([0.1, 0.5])
    start = Person(torch.zeros(4), torch.zeros(4), shapes)
    # a good code: fitted from zero for many steps; the other candidates are random codes
    good, _ = fit_codes(model, targets, start, FitSettings(shape_steps=150, detail_steps=0, colour_steps=0, lr=5e-2,
                                                            points=256, start="mean"), progress=False)
    others = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    candidates = CodeCandidates(torch.stack([torch.zeros(4), others[0], good.shape_code, others[1], others[2]]),
                                torch.zeros(5, 4))
    settings = FitSettings(shape_steps=0, detail_steps=0, colour_steps=0, points=256, start_points=2048)
    person, _ = fit_codes(model, targets, start, settings, candidates=candidates, progress=False)

    def full(code):
        every = torch.arange(len(targets.occupancy.inside))
        return float(occupancy_loss(model.coarse, targets.occupancy, every, code, shapes)
                     + free_space_loss(model.coarse, targets.free, torch.arange(len(targets.free)), code, shapes))

    losses = [full(code) for code in candidates.shape]
    assert int(np.argmin(losses)) == 2 and losses[2] < min(losses[:2] + losses[3:]) - 1e-3  # the toy is not a tie
    torch.testing.assert_close(person.shape_code, good.shape_code)
    # and optimising on from there keeps at least that low a loss, lower than the same steps from zero
    steps = FitSettings(shape_steps=20, detail_steps=0, colour_steps=0, points=256, lr=1e-2)
    from_best, _ = fit_codes(model, targets, start, steps, candidates=candidates, progress=False)
    from_zero, _ = fit_codes(model, targets, start, FitSettings(**{**steps.__dict__, "start": "mean"}), progress=False)
    assert full(from_best.shape_code) < full(from_zero.shape_code)
