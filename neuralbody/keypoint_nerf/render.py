"""Volume rendering of a KeypointNeRF field along rays, sampled only inside the person's box.

A ray is clipped to the box (slab test, :func:`neuralbody.data.cameras.ray_box_intersection`) and
sampled at S stratified depths in that segment (:func:`neuralbody.rendering.sampling.stratified_samples`);
rays that miss the box are background. The network is evaluated only at samples inside the input
views' visual hull (:meth:`KeypointNeRF.inside_hull`); the others are empty. Then NeRF's
quadrature (:func:`neuralbody.rendering.volrend.render_weights`)::

    C(r) = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i + (1 - sum_i w_i) background
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
    points = samples.points.reshape(1, -1, 3)
    sigma = points.new_zeros(points.shape[1])
    rgb = points.new_zeros(points.shape[1], 3)
    if points.shape[1]:
        inside = model.inside_hull(inputs.views, points)[0]
        if inside.any():
            s, c = model.query(inputs.maps, inputs.views, inputs.keypoints, points[:, inside])
            sigma = sigma.index_put((inside,), s[0])
            rgb = rgb.index_put((inside,), c[0])
    weights, _ = render_weights(sigma.reshape(samples.deltas.shape), samples.deltas)
    hit_rgb = composite(weights, rgb.reshape(*samples.deltas.shape, 3))
    hit_opacity = weights.sum(dim=1)
    out_rgb = background.to(rays_o.dtype).expand(rays_o.shape[0], 3).clone()
    out_opacity = rays_o.new_zeros(rays_o.shape[0])
    out_rgb = out_rgb.index_put((hit,), hit_rgb + (1.0 - hit_opacity)[:, None] * background)
    out_opacity = out_opacity.index_put((hit,), hit_opacity)
    return RenderedRays(rgb=out_rgb, opacity=out_opacity)
