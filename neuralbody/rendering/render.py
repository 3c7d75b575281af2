"""Rendering rays and whole images of a radiance-field model.

Near and far distances come from the slab test of each ray against the frame's box
(``state.box_min``, ``state.box_max``, world, metres); rays that miss it see only the
background (``acc = 0``, ``depth = 0``). Along each ray, S stratified samples (see
:mod:`neuralbody.rendering.sampling`) are queried and composited (see
:mod:`neuralbody.rendering.volrend`). Models that know where their density may be non-zero
(a method ``occupied_world(state, points_world) -> (N,) bool or None``, e.g. Neural Body's
occupancy grid) get their S samples spread over the occupied part of each ray only
(:func:`band_samples`, ``settings.band_bins`` bins tested per ray) instead of over the whole
box: the same integral (the density is zero elsewhere), with all samples where the body is::

    rgb   = sum_i w_i c_i + (1 - acc) * background
    acc   = sum_i w_i
    depth = sum_i w_i t_i          (metres along the unit ray; 0 where nothing is hit)

Without gradients, samples are processed in segments front to back and rays whose
transmittance fell below ``settings.early_stop_transmittance`` are not queried further
(early ray termination; the result changes by at most that transmittance), rays whose
band is empty are not queried at all, and colour is decoded only for samples whose weight
reaches ``settings.colour_weight_min`` (density first, then colour where it counts; the
faint ones take the mean colour of the decoded ones on their ray).
Whole-image renders (:func:`render_view`) first build
the frame's density occupancy (:mod:`neuralbody.rendering.density_grid`, once per frame
state, cached in ``state.extras``) and place the samples only where the trained density is,
not merely where the body could be: over the exact stretch of its kept cells that each ray
crosses (a Warp walk through the grid, :mod:`neuralbody.geometry.grid_traversal`). On the
CPU, chunks of rays are rendered by ``settings.workers`` threads at once (one per core by
default; the image does not change).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, ray_box_intersection
from neuralbody.models.base import FrameState, RadianceFieldModel
from neuralbody.rendering.density_grid import DensityOccupancy, build_density_grid, grid_samples
from neuralbody.rendering.sampling import RaySamples, band_samples, stratified_samples
from neuralbody.rendering.volrend import distortion_loss, render_weights
from neuralbody.workers import cpu_workers, map_in_threads


@dataclasses.dataclass
class RenderSettings:
    """How rays are sampled and batched.

    Attributes:
        num_samples: samples per ray between near and far.
        chunk_rays: rays per model batch (memory bound).
        perturb: stratified jitter of the samples (training).
        early_stop_transmittance: without gradients, stop rays whose transmittance is below
            this (0 disables early termination).
        segment_samples: samples per front-to-back segment when terminating early.
        band_bins: bins per ray tested against the model's occupancy (``occupied_world``) to
            place the samples in the occupied band only (0: uniform over the box).
        density_grid_cell: spacing (metres) of the centres where whole-image renders evaluate
            the density once per frame to build the density occupancy (kept cells grown by half
            a cell, :func:`~neuralbody.rendering.density_grid.build_density_grid`; 0: off, use
            the model's occupancy only).
        density_grid_min: density (1/metres) below which a cell counts as empty.
        density_grid_samples: samples per ray, in place of ``num_samples``, when the density
            occupancy is on: its band is a few centimetres deep where the model's occupancy
            band is tens, so half the samples keep a finer spacing (on the demo model, 16
            samples render within 50 dB PSNR of 32 without the grid, 2.7x faster).
        colour_weight_min: without gradients, models with ``query_density`` /
            ``query_colour`` (Neural Body) decode colour only for samples whose compositing
            weight reaches this; the skipped samples take the weighted mean colour of the
            decoded ones on their ray, so a pixel moves by less than the weight skipped, and
            not at all where colour is constant along the ray (0: decode all; on the demo
            model 1e-2 decodes 44 % fewer colours, the image within 64 dB of decoding all).
        distortion: also return each ray's distortion loss (training; samples are then
            never terminated early).
        workers: without gradients on the CPU, chunks of rays are rendered by this many
            threads at once, each with one torch thread (0: one per CPU core available to the
            process, or ``$NEURALBODY_THREADS``; always 1 on CUDA). The image is the same.
    """

    num_samples: int = 64
    chunk_rays: int = 8192
    perturb: bool = False
    early_stop_transmittance: float = 1e-3
    segment_samples: int = 8
    band_bins: int = 128
    density_grid_cell: float = 0.02
    density_grid_min: float = 1.0
    density_grid_samples: int = 16
    colour_weight_min: float = 1e-2
    distortion: bool = False
    workers: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RenderOutput:
    """Rendered rays.

    Attributes:
        rgb: (N, 3) colour in [0, 1], background composited.
        acc: (N,) accumulated opacity in [0, 1].
        depth: (N,) expected termination distance along the ray, metres (0 where acc = 0).
        distortion: (N,) each ray's distortion loss, metres (:func:`~neuralbody.rendering.volrend.distortion_loss`;
            0 for rays that miss the box), when ``settings.distortion`` asked for it, else None.
    """

    rgb: torch.Tensor
    acc: torch.Tensor
    depth: torch.Tensor
    distortion: torch.Tensor | None = None


@dataclasses.dataclass
class ImageRender:
    """A rendered image: rgb (H, W, 3) in [0, 1], acc (H, W), depth (H, W) metres along the ray."""

    rgb: torch.Tensor
    acc: torch.Tensor
    depth: torch.Tensor


def _query_samples(model, state, points: torch.Tensor, rays_d: torch.Tensor):
    """Query (R, S, 3) points seen along (R, 3) unit directions -> sigma (R, S), rgb (R, S, 3)."""
    num_rays, num_samples = points.shape[:2]
    viewdirs = rays_d[:, None, :].expand(num_rays, num_samples, 3)
    sigma, rgb = model.query(state, points.reshape(-1, 3), viewdirs.reshape(-1, 3))
    return sigma.reshape(num_rays, num_samples), rgb.reshape(num_rays, num_samples, 3)


def _query_weighted(model, state, points, deltas, rays_d, light, settings: RenderSettings):
    """Density of (R, S, 3) points, then colour only where the weight reaches ``settings.colour_weight_min``.

    Returns sigma (R, S), weights (R, S) (times the light (R,) that reaches the segment),
    rgb (R, S, 3) (zero where skipped) and the weights of the decoded samples (R, S) (zero
    where skipped), from which the caller gives the skipped ones the mean decoded colour.
    """
    num_rays, num_samples = points.shape[:2]
    density = model.query_density(state, points.reshape(-1, 3))
    sigma = density.sigma.reshape(num_rays, num_samples)
    weights, _ = render_weights(sigma, deltas)
    weights = weights * light[:, None]
    needed = torch.nonzero(weights.reshape(-1) >= settings.colour_weight_min).squeeze(1)
    rgb = points.new_zeros(num_rays * num_samples, 3)
    if needed.numel():
        viewdirs = rays_d[needed // num_samples]
        rgb[needed] = model.query_colour(state, density, needed, viewdirs)
    coloured = points.new_zeros(num_rays * num_samples)
    coloured[needed] = weights.reshape(-1)[needed]
    return sigma, weights, rgb.reshape(num_rays, num_samples, 3), coloured.reshape(num_rays, num_samples)


def place_samples(model, state, rays_o, rays_d, near, far, settings: RenderSettings) -> RaySamples:
    """Samples on rays (R, 3) world, metres between near and far (R,): in the frame's density
    occupancy when one is attached (``settings.density_grid_samples`` of them over the exact
    stretch of its kept cells that each ray crosses, :func:`grid_samples`), else in the
    model's occupied band when it has one (see the module docstring), else stratified over
    ``[near, far]``."""
    grid = state.extras.get(DENSITY_GRID_KEY)
    if isinstance(grid, DensityOccupancy) and settings.band_bins > 0:
        return grid_samples(grid, rays_o, rays_d, near, far, num_samples=settings.density_grid_samples,
                            perturb=settings.perturb)
    occupied_world = getattr(model, "occupied_world", None)
    num_bins = settings.band_bins
    if num_bins > 0 and occupied_world is not None:
        with torch.no_grad():
            centres = (torch.arange(num_bins, dtype=rays_o.dtype, device=rays_o.device) + 0.5) / num_bins
            t_centres = near[:, None] + (far - near).clamp_min(0.0)[:, None] * centres[None, :]  # (R, K)
            points = rays_o[:, None, :] + t_centres[..., None] * rays_d[:, None, :]
            occupied = occupied_world(state, points.reshape(-1, 3))
        if occupied is not None:
            return band_samples(
                rays_o, rays_d, near, far, occupied.reshape(-1, num_bins),
                num_samples=settings.num_samples, perturb=settings.perturb,
            )
    return stratified_samples(rays_o, rays_d, near, far, num_samples=settings.num_samples, perturb=settings.perturb)


def _render_hit_rays(model, state, rays_o, rays_d, near, far, settings: RenderSettings):
    """Render rays known to hit the box. Returns rgb (R, 3) without background, acc (R,), depth (R,)
    and the distortion loss (R,) (None unless ``settings.distortion``)."""
    samples = place_samples(model, state, rays_o, rays_d, near, far, settings)
    early = settings.early_stop_transmittance > 0 and not torch.is_grad_enabled() and not settings.distortion
    if not early:
        sigma, rgb = _query_samples(model, state, samples.points, rays_d)
        weights, _ = render_weights(sigma, samples.deltas)
        color = torch.einsum("rs,rsc->rc", weights, rgb)
        distortion = distortion_loss(weights, samples.t, samples.deltas) if settings.distortion else None
        return color, weights.sum(dim=1), (weights * samples.t).sum(dim=1), distortion
    num_rays = rays_o.shape[0]
    color = torch.zeros((num_rays, 3), dtype=rays_o.dtype, device=rays_o.device)
    acc = torch.zeros(num_rays, dtype=rays_o.dtype, device=rays_o.device)
    depth = torch.zeros(num_rays, dtype=rays_o.dtype, device=rays_o.device)
    # rays with an empty band (zero-length samples) see only the background: never queried
    light = (samples.deltas[:, 0] > 0).to(rays_o.dtype)
    num_samples = samples.t.shape[1]
    skip_faint = settings.colour_weight_min > 0 and hasattr(model, "query_density")
    coloured_acc = torch.zeros_like(acc)
    for start in range(0, num_samples, settings.segment_samples):
        alive = torch.nonzero(light > settings.early_stop_transmittance).squeeze(1)
        if alive.numel() == 0:
            break
        stop = min(start + settings.segment_samples, num_samples)
        points = samples.points[alive, start:stop]
        deltas = samples.deltas[alive, start:stop]
        if skip_faint:
            sigma, weights, rgb, coloured = _query_weighted(model, state, points, deltas, rays_d[alive], light[alive],
                                                            settings)
            coloured_acc.index_add_(0, alive, coloured.sum(dim=1))
        else:
            sigma, rgb = _query_samples(model, state, points, rays_d[alive])
            weights, _ = render_weights(sigma, deltas)
            weights = weights * light[alive, None]
        color.index_add_(0, alive, torch.einsum("rs,rsc->rc", weights, rgb))
        acc.index_add_(0, alive, weights.sum(dim=1))
        depth.index_add_(0, alive, (weights * samples.t[alive, start:stop]).sum(dim=1))
        optical_depth = (sigma * deltas).sum(dim=1)
        light[alive] = light[alive] * torch.exp(-optical_depth)
    if skip_faint:  # the skipped samples take the mean colour of the decoded ones
        color = color * torch.where(coloured_acc > 0, acc / coloured_acc.clamp_min(1e-12), torch.ones_like(acc))[:, None]
    return color, acc, depth, None


def render_workers(settings: RenderSettings, device: torch.device) -> int:
    """Threads that render chunks of rays at once (``settings.workers``; see :class:`RenderSettings`)."""
    return cpu_workers(settings.workers, device)


def render_rays(
    model: RadianceFieldModel,
    state: FrameState,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    *,
    settings: RenderSettings,
    background: torch.Tensor,
) -> RenderOutput:
    """Volume-render rays through one frame of a model.

    Args:
        model: the radiance field.
        state: ``model.prepare_frame(...)`` of the frame.
        rays_o: (N, 3) ray origins, world, metres.
        rays_d: (N, 3) unit ray directions, world.
        settings: sampling and batching.
        background: (3,) colour in [0, 1] seen where the rays are not fully absorbed.
    """
    if rays_o.ndim != 2 or rays_o.shape[1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must be (N, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}")
    background = torch.as_tensor(background, dtype=rays_o.dtype, device=rays_o.device).reshape(-1)
    if background.shape != (3,):
        raise ValueError(f"background must be an RGB triple, got shape {tuple(background.shape)}")
    num_rays = rays_o.shape[0]
    near, far, hit = ray_box_intersection(rays_o, rays_d, state.box_min, state.box_max)
    hit_ids = torch.nonzero(hit).squeeze(1)
    chunks = [hit_ids[start : start + settings.chunk_rays] for start in range(0, hit_ids.numel(), settings.chunk_rays)]

    def render_chunk(ids: torch.Tensor):
        return _render_hit_rays(model, state, rays_o[ids], rays_d[ids], near[ids], far[ids], settings)

    workers = render_workers(settings, rays_o.device)
    if workers > 1 and len(chunks) > 1 and not torch.is_grad_enabled():
        results = map_in_threads(render_chunk, chunks, workers)
    else:
        results = [render_chunk(ids) for ids in chunks]
    colors, accs, depths, distortions = (list(column) for column in zip(*results)) if results else ([], [], [], [])
    rgb = background.expand(num_rays, 3).clone()
    acc_all = torch.zeros(num_rays, dtype=rays_o.dtype, device=rays_o.device)
    depth_all = torch.zeros(num_rays, dtype=rays_o.dtype, device=rays_o.device)
    distortion_all = torch.zeros(num_rays, dtype=rays_o.dtype, device=rays_o.device) if settings.distortion else None
    if colors:
        color, acc, depth = torch.cat(colors), torch.cat(accs), torch.cat(depths)
        # index_put keeps the graph (training renders need gradients through it)
        rgb = rgb.index_put((hit_ids,), color + (1.0 - acc)[:, None] * background)
        acc_all = acc_all.index_put((hit_ids,), acc)
        depth_all = depth_all.index_put((hit_ids,), depth)
        if settings.distortion:
            distortion_all = distortion_all.index_put((hit_ids,), torch.cat(distortions))
    return RenderOutput(rgb=rgb, acc=acc_all, depth=depth_all, distortion=distortion_all)


def camera_rays(camera: Camera, *, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through every pixel centre of a camera, row-major: rays_o, rays_d (H*W, 3), world, metres."""
    rays_o, rays_d = pixel_rays(camera)
    return (
        torch.as_tensor(np.ascontiguousarray(rays_o), dtype=dtype, device=device),
        torch.as_tensor(np.ascontiguousarray(rays_d), dtype=dtype, device=device),
    )


DENSITY_GRID_KEY = "density_occupancy"


def attach_density_grid(model: RadianceFieldModel, state: FrameState, settings: RenderSettings) -> None:
    """Build the frame's density occupancy once (``settings.density_grid_cell`` > 0) and cache it in
    ``state.extras``; :func:`place_samples` then samples only inside it (settings with the
    grid off remove it)."""
    if settings.density_grid_cell <= 0:
        state.extras.pop(DENSITY_GRID_KEY, None)
        return
    grid = state.extras.get(DENSITY_GRID_KEY)
    wanted = (float(settings.density_grid_cell), float(settings.density_grid_min))
    if isinstance(grid, DensityOccupancy) and (grid.centre_spacing or grid.cell, grid.min_density) == wanted:
        return
    state.extras[DENSITY_GRID_KEY] = build_density_grid(model, state, cell=wanted[0], min_density=wanted[1],
                                                         workers=render_workers(settings, state.box_min.device))


def apply_colour_gain(rgb: torch.Tensor, acc: torch.Tensor, gain, background) -> torch.Tensor:
    """Composited colours seen through a camera's RGB gain.

    ``rgb = c + (1 - acc) * bg``  ->  ``min(gain * c, acc) + (1 - acc) * bg``  (``c``: the
    person's part, opacity-weighted reference colours, so a camera saturates at full opacity).

    Args:
        rgb: (N, 3) composited colours in [0, 1].
        acc: (N,) opacity.
        gain: (3,) positive RGB gain.
        background: (3,) background colour.
    """
    gain = torch.as_tensor(gain, dtype=rgb.dtype, device=rgb.device)
    behind = (1.0 - acc)[:, None] * torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device).reshape(1, 3)
    person = ((rgb - behind) * gain).clamp_min(0.0)
    return torch.minimum(person, acc[:, None]) + behind


def render_view(
    model: RadianceFieldModel,
    state: FrameState,
    camera: Camera,
    *,
    settings: RenderSettings,
    background: torch.Tensor,
) -> ImageRender:
    """Render the full image a camera sees of one frame (no gradients, chunks of rays).

    The model's colours are the rig's reference colours; a colour-calibrated camera
    (``camera.colour_gain`` not ones) sees them through its own response: the person's part of
    each pixel is multiplied by the gain (saturating at full opacity), the background is left as given.

    Args:
        model: the radiance field (its parameters' device is used).
        state: ``model.prepare_frame(...)`` of the frame.
        camera: the camera (distortion honoured through :func:`pixel_rays`).
        settings: sampling and batching.
        background: (3,) colour in [0, 1].
    """
    device = state.box_min.device
    rays_o, rays_d = camera_rays(camera, device=device)
    with torch.no_grad():
        attach_density_grid(model, state, settings)
        out = render_rays(model, state, rays_o, rays_d, settings=settings, background=background)
    height, width = camera.height, camera.width
    rgb = out.rgb
    if camera.has_colour_gain:
        rgb = apply_colour_gain(rgb, out.acc, camera.colour_gain, background)
    return ImageRender(
        rgb=rgb.reshape(height, width, 3),
        acc=out.acc.reshape(height, width),
        depth=out.depth.reshape(height, width),
    )
