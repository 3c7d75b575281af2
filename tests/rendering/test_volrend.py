"""Volume rendering: vectorised weights vs the loop reference, known answers, rendering rays."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from neuralbody.models.base import DensityQuery, FrameField, RadianceFieldModel
from toy_fields import DelegateField
from neuralbody.rendering import (
    RenderSettings,
    composite,
    render_rays,
    render_view,
    render_weights,
    render_weights_reference,
    stratified_samples,
)
from neuralbody.rendering.sampling import band_samples, band_samples_reference


def test_weights_match_loop_reference_with_gradients():
    generator = torch.Generator().manual_seed(0)
    sigmas = (torch.rand(7, 13, dtype=torch.float64, generator=generator) * 30).requires_grad_(True)
    deltas = torch.rand(7, 13, dtype=torch.float64, generator=generator) * 0.05
    weights, transmittance = render_weights(sigmas, deltas)
    ref_weights, ref_transmittance = render_weights_reference(sigmas, deltas)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(transmittance, ref_transmittance)
    (grad,) = torch.autograd.grad(weights.sum(), sigmas)
    (ref_grad,) = torch.autograd.grad(ref_weights.sum(), sigmas)
    torch.testing.assert_close(grad, ref_grad)


def test_constant_density_gives_beer_lambert_opacity():
    sigma, length, samples = 7.5, 0.4, 64
    sigmas = torch.full((3, samples), sigma, dtype=torch.float64)
    deltas = torch.full((3, samples), length / samples, dtype=torch.float64)
    weights, _ = render_weights(sigmas, deltas)
    torch.testing.assert_close(weights.sum(dim=1), torch.full((3,), 1 - math.exp(-sigma * length), dtype=torch.float64))


def test_composite_is_weighted_sum_and_guards_shapes():
    weights = torch.tensor([[0.2, 0.3, 0.5]])
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    torch.testing.assert_close(composite(weights, values), torch.tensor([[0.7, 0.8]]))
    with pytest.raises(ValueError, match="values"):
        composite(weights, values[:, :2])
    with pytest.raises(ValueError, match="sigmas"):
        render_weights(torch.zeros(2, 3), torch.zeros(2, 4))


def test_stratified_samples_stay_in_bins():
    rays_o = torch.zeros(5, 3)
    rays_d = torch.tensor([[0.0, 0.0, 1.0]]).expand(5, 3)
    near, far = torch.full((5,), 1.0), torch.full((5,), 3.0)
    samples = stratified_samples(rays_o, rays_d, near, far, num_samples=8, perturb=True)
    bins = torch.arange(8) * 0.25 + 1.0
    assert torch.all(samples.t >= bins) and torch.all(samples.t < bins + 0.25)
    torch.testing.assert_close(samples.points[..., 2], samples.t)
    torch.testing.assert_close(samples.deltas.sum(dim=1), far - near)


def test_band_samples_match_loop_reference_and_cover_only_the_band():
    generator = torch.Generator().manual_seed(3)
    num_rays, num_bins, num_samples = 7, 20, 9
    rays_o = torch.zeros(num_rays, 3, dtype=torch.float64)
    rays_d = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(num_rays, 3)
    near = torch.rand(num_rays, dtype=torch.float64, generator=generator)
    far = near + 0.5 + torch.rand(num_rays, dtype=torch.float64, generator=generator)
    occupied = torch.rand(num_rays, num_bins, generator=generator) < 0.4
    occupied[0] = False  # a ray that sees nothing
    occupied[1] = True  # a fully occupied ray: plain stratified samples
    samples = band_samples(rays_o, rays_d, near, far, occupied, num_samples=num_samples, perturb=True, generator=generator)
    # the jitter band_samples drew: replay the generator
    replay = torch.Generator().manual_seed(3)
    torch.rand(num_rays, dtype=torch.float64, generator=replay), torch.rand(num_rays, dtype=torch.float64, generator=replay)
    torch.rand(num_rays, num_bins, generator=replay)
    offsets = torch.rand(num_rays, num_samples, dtype=torch.float64, generator=replay)
    expected = band_samples_reference(near, far, occupied, num_samples=num_samples, offsets=offsets)
    torch.testing.assert_close(samples.t, expected, rtol=0, atol=1e-12)
    bin_length = (far - near) / num_bins
    bins = ((samples.t - near[:, None]) / bin_length[:, None]).floor().long().clamp(0, num_bins - 1)
    assert torch.all(torch.gather(occupied[2:], 1, bins[2:]))  # every sample lies in an occupied bin
    torch.testing.assert_close(samples.deltas.sum(dim=1), occupied.sum(dim=1) * bin_length)
    assert torch.all(samples.deltas[0] == 0)
    assert torch.all(samples.t[:, 1:] >= samples.t[:, :-1])  # front to back
    plain = stratified_samples(rays_o[1:2], rays_d[1:2], near[1:2], far[1:2], num_samples=num_samples)
    centred = band_samples(rays_o[1:2], rays_d[1:2], near[1:2], far[1:2], occupied[1:2], num_samples=num_samples)
    torch.testing.assert_close(centred.t, plain.t)
    with pytest.raises(ValueError, match="occupied_bins"):
        band_samples(rays_o, rays_d, near, far, occupied[:3], num_samples=4)


class _ConstantSphere(RadianceFieldModel):
    """Density ``sigma`` inside a ball of radius ``radius`` at the origin, colour (1, 0.5, 0)."""

    def __init__(self, sigma: float, radius: float) -> None:
        super().__init__()
        self.sigma, self.radius = sigma, radius

    def prepare_frame(self, frame_index, body):
        r = self.radius + 0.1
        return DelegateField(self, frame_index, torch.full((3,), -r), torch.full((3,), r))

    def field_query(self, field, points_world, viewdirs):
        inside = points_world.norm(dim=1) < self.radius
        sigma = torch.where(inside, torch.full_like(points_world[:, 0], self.sigma), torch.zeros_like(points_world[:, 0]))
        rgb = torch.tensor([1.0, 0.5, 0.0]).expand(points_world.shape[0], 3)
        return sigma, rgb


@pytest.mark.parametrize("early_stop", [0.0, 1e-3])
def test_render_rays_known_answer_background_and_misses(early_stop):
    model = _ConstantSphere(sigma=4.0, radius=0.5)
    field = model.prepare_frame(0, None)
    rays_o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 3.0, -3.0]])
    rays_d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    background = torch.tensor([0.0, 0.0, 1.0])
    settings = RenderSettings(num_samples=512, early_stop_transmittance=early_stop, segment_samples=64)
    with torch.no_grad():
        out = render_rays(field, rays_o, rays_d, settings=settings, background=background)
    acc = 1 - math.exp(-4.0 * 1.0)  # chord of length 1 through the centre
    assert out.acc[0].item() == pytest.approx(acc, abs=5e-3)
    torch.testing.assert_close(out.rgb[0], torch.tensor([acc, 0.5 * acc, 1 - acc]), atol=5e-3, rtol=0)
    assert out.acc[1] == 0 and torch.equal(out.rgb[1], background) and out.depth[1] == 0
    assert 2.5 < out.depth[0] / acc < 3.5


def test_early_termination_changes_little():
    model = _ConstantSphere(sigma=200.0, radius=0.5)
    field = model.prepare_frame(0, None)
    rays_o = torch.tensor([[0.0, 0.0, -3.0], [0.1, 0.2, -3.0]])
    rays_d = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.05, 0.0, 1.0]]), dim=1)
    full = render_rays(field, rays_o, rays_d, settings=RenderSettings(early_stop_transmittance=0.0), background=torch.zeros(3))
    with torch.no_grad():
        early = render_rays(field, rays_o, rays_d, settings=RenderSettings(), background=torch.zeros(3))
    torch.testing.assert_close(early.rgb, full.rgb.detach(), atol=2e-3, rtol=0)


class _BandSphere(_ConstantSphere):
    """The sphere, telling the renderer where its density lives (a shell 0.1 m wider)."""

    def field_occupied(self, field, points_world):
        return points_world.norm(dim=1) < self.radius + 0.1


def test_band_sampling_renders_the_same_with_fewer_samples():
    field = _BandSphere(sigma=4.0, radius=0.5).prepare_frame(0, None)
    rays_o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.3, -3.0], [0.0, 3.0, -3.0]])
    rays_d = torch.tensor([[0.0, 0.0, 1.0]]).expand(3, 3)
    background = torch.tensor([0.0, 0.0, 1.0])
    with torch.no_grad():
        band = render_rays(field, rays_o, rays_d, settings=RenderSettings(num_samples=64, band_bins=256),
                           background=background)
        uniform = render_rays(field, rays_o, rays_d, settings=RenderSettings(num_samples=1024),
                              background=background)
    torch.testing.assert_close(band.rgb, uniform.rgb, atol=3e-3, rtol=0)
    torch.testing.assert_close(band.depth, uniform.depth, atol=1e-2, rtol=0)
    acc = 1 - math.exp(-4.0 * 1.0)
    assert band.acc[0].item() == pytest.approx(acc, abs=3e-3)


def test_render_view_shapes():
    from neuralbody.data.cameras import Camera

    model = _ConstantSphere(sigma=50.0, radius=0.5)
    field = model.prepare_frame(0, None)
    camera = Camera(K=np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]]), R=np.eye(3), T=np.array([0, 0, 3.0]),
                    D=np.zeros(5), width=16, height=12)
    image = render_view(field, camera, settings=RenderSettings(chunk_rays=50), background=torch.zeros(3))
    assert image.rgb.shape == (12, 16, 3) and image.acc.shape == (12, 16) and image.depth.shape == (12, 16)
    assert image.acc[6, 8] > 0.99 and image.acc[0, 0] == 0


@dataclasses.dataclass
class _SoftBallColouredByDirection(FrameField):
    """Density falling off smoothly from a centre (many faint samples), colour constant along each ray;
    density and colour decoded separately, as Neural Body does; counts decoded colours."""

    frame_index: int = 0
    box_min: torch.Tensor = dataclasses.field(default_factory=lambda: torch.full((3,), -1.0))
    box_max: torch.Tensor = dataclasses.field(default_factory=lambda: torch.full((3,), 1.0))
    decoded: int = 0

    def prepare_frame(self, frame_index, body):
        return self

    def density(self, points):
        return DensityQuery(sigma=30.0 * torch.exp(-(points.norm(dim=1) / 0.4) ** 2), points=points)

    def colour(self, density, rows, viewdirs):
        self.decoded += rows.numel()
        return (viewdirs * 0.5 + 0.5).clamp(0, 1)

    def query(self, points, viewdirs):
        density = self.density(points)
        return density.sigma, self.colour(density, torch.arange(points.shape[0]), viewdirs)


def test_faint_samples_skipped_take_the_mean_colour_of_the_decoded_ones():
    """With colour constant along a ray, skipping faint samples changes nothing (they take the mean
    colour of the decoded samples, not black), while fewer colours are decoded."""
    model = _SoftBallColouredByDirection()
    field = model.prepare_frame(0, None)
    generator = torch.Generator().manual_seed(0)
    rays_d = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, 1.0]) + 0.2 * torch.randn(64, 3, generator=generator), dim=1)
    rays_o = -2.0 * rays_d + 0.1 * torch.randn(64, 3, generator=generator)
    outputs, decoded = [], []
    with torch.no_grad():
        for threshold in (0.0, 0.05):
            model.decoded = 0
            settings = RenderSettings(num_samples=64, band_bins=0, colour_weight_min=threshold, density_grid_cell=0.0)
            outputs.append(render_rays(field, rays_o, rays_d, settings=settings, background=torch.zeros(3)))
            decoded.append(model.decoded)
    assert decoded[1] < 0.5 * decoded[0]
    assert outputs[0].acc.min() > 0.3
    torch.testing.assert_close(outputs[1].acc, outputs[0].acc)
    torch.testing.assert_close(outputs[1].rgb, outputs[0].rgb, rtol=0, atol=1e-5)


def test_distortion_loss_matches_the_double_sum_and_its_gradient_checks():
    from neuralbody.rendering.volrend import distortion_loss, distortion_loss_reference

    generator = torch.Generator().manual_seed(3)
    weights = torch.rand(6, 11, generator=generator, dtype=torch.float64, requires_grad=True)
    t = torch.sort(torch.rand(6, 11, generator=generator, dtype=torch.float64), dim=1).values
    deltas = torch.rand(6, 11, generator=generator, dtype=torch.float64) * 0.05
    torch.testing.assert_close(distortion_loss(weights, t, deltas), distortion_loss_reference(weights, t, deltas),
                               rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda w: distortion_loss(w, t, deltas), (weights,))
    # known answers: all weight on one sample -> w^2 delta / 3; two samples d apart -> 2 w1 w2 d + ...
    one = torch.zeros(1, 4, dtype=torch.float64)
    one[0, 2] = 1.0
    spaced = torch.tensor([[0.0, 0.1, 0.2, 0.3]], dtype=torch.float64)
    assert float(distortion_loss(one, spaced, torch.full_like(one, 0.1))) == pytest.approx(0.1 / 3)
    two = torch.tensor([[0.5, 0.0, 0.0, 0.5]], dtype=torch.float64)
    assert float(distortion_loss(two, spaced, torch.zeros_like(two))) == pytest.approx(2 * 0.25 * 0.3)
    with pytest.raises(ValueError, match="weights, t and deltas"):
        distortion_loss(weights, t[:, :3], deltas)


def test_render_rays_returns_the_distortion_of_its_samples_when_asked():
    model = _SoftBallColouredByDirection()
    field = model.prepare_frame(0, None)
    rays_o = torch.tensor([[0.0, 0.0, -2.0], [5.0, 5.0, -2.0]])  # the second misses the box
    rays_d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    settings = RenderSettings(num_samples=32, band_bins=0, density_grid_cell=0.0)
    plain = render_rays(field, rays_o, rays_d, settings=settings, background=torch.zeros(3))
    assert plain.distortion is None
    out = render_rays(field, rays_o, rays_d, settings=RenderSettings(num_samples=32, band_bins=0, density_grid_cell=0.0,
                      distortion=True), background=torch.zeros(3))
    samples = stratified_samples(rays_o[:1], rays_d[:1], torch.tensor([1.0]), torch.tensor([3.0]), num_samples=32)
    from neuralbody.rendering.volrend import distortion_loss_reference

    sigma = field.density(samples.points.reshape(-1, 3)).sigma.reshape(1, 32)
    weights, _ = render_weights(sigma, samples.deltas)
    expected = distortion_loss_reference(weights, samples.t, samples.deltas)
    torch.testing.assert_close(out.distortion, torch.cat([expected, torch.zeros(1)]))
    torch.testing.assert_close(out.rgb, plain.rgb)
