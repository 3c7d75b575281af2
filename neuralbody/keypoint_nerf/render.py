"""Volume rendering of a KeypointNeRF field along rays, sampled only inside the person's box.

A ray is clipped to the box (slab test, :func:`neuralbody.data.cameras.ray_box_intersection`) and
sampled at S stratified depths in that segment (:func:`neuralbody.rendering.sampling.stratified_samples`);
rays that miss the box are background. The network is evaluated only at samples inside the input
views' visual hull (:meth:`KeypointNeRF.inside_hull`); the others are empty. Then NeRF's
quadrature (:func:`neuralbody.rendering.volrend.render_weights`)::

    C(r) = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i + (1 - sum_i w_i) background

:func:`render_rays` evaluates every sample at once (training; the reference).
:func:`render_rays_front_to_back` (inference) walks the samples front to back ``segment`` at a time
and drops a ray once its transmittance ``T = prod_i (1 - alpha_i)`` falls below
``min_transmittance``: the samples behind an opaque surface are never evaluated, and the image
differs from the reference by at most ``min_transmittance`` per channel (for colours in [0, 1]).
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.data.cameras import ray_box_intersection
from neuralbody.keypoint_nerf.model import KeypointNeRF
from neuralbody.recon.views import ViewInputs
from neuralbody.rendering.sampling import RaySamples, stratified_samples
from neuralbody.rendering.volrend import composite, render_weights


@dataclasses.dataclass
class ConditionedInputs:
    """One person at one instant, as the field sees them (batch of one).

    Attributes:
        views: crops and cameras, leading dims (1, V).
        maps: the encoder's feature maps of ``views.images``.
        keypoints: (1, K, 3) world metres.
        box_min, box_max: (3,) where the person can be, world metres.
    """

    views: ViewInputs
    maps: list[torch.Tensor]
    keypoints: torch.Tensor
    box_min: torch.Tensor
    box_max: torch.Tensor


@dataclasses.dataclass
class RenderedRays:
    """rgb (R, 3) in [0, 1]; opacity (R,) accumulated alpha."""

    rgb: torch.Tensor
    opacity: torch.Tensor


def box_samples(rays_o: torch.Tensor, rays_d: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor, *,
                num_samples: int, perturb: bool = False,
                generator: torch.Generator | None = None) -> tuple[RaySamples, torch.Tensor]:  # fmt: skip
    """S stratified samples in each ray's segment inside the box.

    Args:
        rays_o, rays_d: (R, 3) origins (metres) and unit directions, world.
        box_min, box_max: (3,) the box, world metres.
        num_samples: S.
        perturb: jitter within strata (training).

    Returns:
        the samples of the rays that hit the box (R_hit rows, in order), and hit (R,) bool.
    """
    near, far, hit = ray_box_intersection(rays_o, rays_d, box_min, box_max)
    samples = stratified_samples(rays_o[hit], rays_d[hit], near[hit], far[hit], num_samples=num_samples,
                                 perturb=perturb, generator=generator)  # fmt: skip
    return samples, hit


def field_in_hull(model: KeypointNeRF, inputs: ConditionedInputs, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Density (N,) and colour (N, 3) of points (N, 3) world metres: the field inside the views' visual hull, 0 outside."""
    sigma, rgb = points.new_zeros(points.shape[0]), points.new_zeros(points.shape[0], 3)
    if points.shape[0]:
        inside = model.inside_hull(inputs.views, points[None])[0]
        if inside.any():
            s, c = model.query(inputs.maps, inputs.views, inputs.keypoints, points[None, inside])
            sigma, rgb = sigma.index_put((inside,), s[0]), rgb.index_put((inside,), c[0])
    return sigma, rgb


def render_rays(model: KeypointNeRF, inputs: ConditionedInputs, rays_o: torch.Tensor, rays_d: torch.Tensor, *,
                num_samples: int, background: torch.Tensor, perturb: bool = False,
                generator: torch.Generator | None = None) -> RenderedRays:  # fmt: skip
    """Colour and opacity of rays (R, 3) origins / unit directions, world metres (module docstring).

    ``background``: (3,) colour where the rays end empty.
    """
    if rays_o.ndim != 2 or rays_o.shape != rays_d.shape or rays_o.shape[1] != 3:
        raise ValueError(f"render_rays: rays_o and rays_d must be (R, 3), got {tuple(rays_o.shape)}, {tuple(rays_d.shape)}")
    samples, hit = box_samples(rays_o, rays_d, inputs.box_min, inputs.box_max, num_samples=num_samples,
                               perturb=perturb, generator=generator)  # fmt: skip
    sigma, rgb = field_in_hull(model, inputs, samples.points.reshape(-1, 3))
    weights, _ = render_weights(sigma.reshape(samples.deltas.shape), samples.deltas)
    hit_rgb = composite(weights, rgb.reshape(*samples.deltas.shape, 3))
    hit_opacity = weights.sum(dim=1)
    out_rgb = background.to(rays_o.dtype).expand(rays_o.shape[0], 3).clone()
    out_opacity = rays_o.new_zeros(rays_o.shape[0])
    out_rgb = out_rgb.index_put((hit,), hit_rgb + (1.0 - hit_opacity)[:, None] * background)
    out_opacity = out_opacity.index_put((hit,), hit_opacity)
    return RenderedRays(rgb=out_rgb, opacity=out_opacity)


def render_rays_front_to_back(model: KeypointNeRF, inputs: ConditionedInputs, rays_o: torch.Tensor, rays_d: torch.Tensor,
                              *, num_samples: int, background: torch.Tensor, segment: int = 8,
                              min_transmittance: float = 1e-3) -> RenderedRays:  # fmt: skip
    """:func:`render_rays` without gradients, stopping rays that are opaque (module docstring).

    Args:
        rays_o, rays_d: (R, 3) origins (metres) and unit directions, world.
        num_samples: S per ray (stratum centres).
        background: (3,) colour.
        segment: samples evaluated per ray and pass.
        min_transmittance: a ray stops once its transmittance is below this.
    """
    if rays_o.ndim != 2 or rays_o.shape != rays_d.shape or rays_o.shape[1] != 3 or segment < 1:
        raise ValueError(f"render_rays_front_to_back: rays (R, 3) and segment >= 1 expected, got {tuple(rays_o.shape)}, {segment}")
    samples, hit = box_samples(rays_o, rays_d, inputs.box_min, inputs.box_max, num_samples=num_samples)
    count = samples.points.shape[0]
    light = rays_o.new_ones(count)
    colour = rays_o.new_zeros(count, 3)
    active = torch.arange(count, device=rays_o.device)
    for start in range(0, num_samples, segment):
        if active.numel() == 0:
            break
        points = samples.points[active, start : start + segment]  # (A, s, 3)
        sigma, rgb = field_in_hull(model, inputs, points.reshape(-1, 3))
        alpha = 1.0 - torch.exp(-sigma.reshape(points.shape[:2]) * samples.deltas[active, start : start + segment])
        through = torch.cumprod(1.0 - alpha, dim=1)
        before = torch.cat([torch.ones_like(through[:, :1]), through[:, :-1]], dim=1) * light[active, None]
        colour[active] += ((before * alpha)[..., None] * rgb.reshape(*points.shape[:2], 3)).sum(dim=1)
        light[active] = light[active] * through[:, -1]
        active = active[light[active] >= min_transmittance]
    out_rgb = background.to(rays_o.dtype).expand(rays_o.shape[0], 3).clone()
    out_rgb = out_rgb.index_put((hit,), colour + light[:, None] * background)
    out_opacity = rays_o.new_zeros(rays_o.shape[0]).index_put((hit,), 1.0 - light)
    return RenderedRays(rgb=out_rgb, opacity=out_opacity)
