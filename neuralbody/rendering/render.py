"""Rendering rays and whole images of a radiance-field model.

Near and far distances come from the slab test of each ray against the frame's box
(``field.box_min``, ``field.box_max``, world, metres; a model's
:class:`~neuralbody.models.base.FrameField`); rays that miss it see only the background
(``acc = 0``, ``depth = 0``). Along each ray, S stratified samples (see
:mod:`neuralbody.rendering.sampling`) are queried and composited (see
:mod:`neuralbody.rendering.volrend`). Fields that know where their density may be non-zero
(``field.occupied(points)`` not None, e.g. Neural Body's occupancy grid) get their S samples
spread over the occupied part of each ray only
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
Whole-image renders (:func:`render_view`) use the frame's density occupancy
(:mod:`neuralbody.rendering.density_grid`; built by :func:`frame_occupancy`, once per frame by
callers that render several views of it, else per call) and place the samples only where the trained density is,
not merely where the body could be: over the exact stretch of its kept cells that each ray
crosses (a Warp walk through the grid, :mod:`neuralbody.geometry.grid_traversal`). On the
CPU, chunks of rays are rendered by ``settings.workers`` threads at once (one per core by
default; the image does not change).

Training and inference sample differently, on purpose: training renders random rays with
gradients (stratified jitter, ``num_samples`` in the model's occupied band, colour at every
sample, no early termination); inference renders whole images without gradients (the density
occupancy, ``density_grid_samples`` per ray, early termination, colour only where the weight
counts). Both integrate the same field; the differences change a pixel by at most the
thresholds above (``early_stop_transmittance``, ``colour_weight_min``, ``density_grid_min``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, ray_box_intersection
from neuralbody.models.base import FrameField
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
        band_bins: bins per ray tested against the field's occupancy (``field.occupied``) to
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
        colour_weight_min: without gradients, colour is decoded only for samples whose compositing
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


def _query_samples(field: FrameField, points: torch.Tensor, rays_d: torch.Tensor):
    """Query (R, S, 3) points seen along (R, 3) unit directions -> sigma (R, S), rgb (R, S, 3)."""
    num_rays, num_samples = points.shape[:2]
    viewdirs = rays_d[:, None, :].expand(num_rays, num_samples, 3)
    sigma, rgb = field.query(points.reshape(-1, 3), viewdirs.reshape(-1, 3))
    return sigma.reshape(num_rays, num_samples), rgb.reshape(num_rays, num_samples, 3)


def _query_weighted(field: FrameField, points, deltas, rays_d, light, settings: RenderSettings):
    """Density of (R, S, 3) points, then colour only where the weight reaches ``settings.colour_weight_min``
    (and at each ray's heaviest sample of the segment).

    Returns sigma (R, S), weights (R, S) (times the light (R,) that reaches the segment),
    rgb (R, S, 3) (zero where skipped) and the weights of the decoded samples (R, S) (zero
    where skipped), from which the caller gives the skipped ones the mean decoded colour.
    """
    num_rays, num_samples = points.shape[:2]
    density = field.density(points.reshape(-1, 3))
    sigma = density.sigma.reshape(num_rays, num_samples)
    weights, _ = render_weights(sigma, deltas)
    weights = weights * light[:, None]
    # the heaviest sample of each segment is always decoded, so a ray of faint samples only has a colour
    heaviest = (weights == weights.max(dim=1, keepdim=True).values) & (weights > 0)
    needed = torch.nonzero(((weights >= settings.colour_weight_min) | heaviest).reshape(-1)).squeeze(1)
    rgb = points.new_zeros(num_rays * num_samples, 3)
    if needed.numel():
        viewdirs = rays_d[needed // num_samples]
        rgb[needed] = field.colour(density, needed, viewdirs)
    coloured = points.new_zeros(num_rays * num_samples)
    coloured[needed] = weights.reshape(-1)[needed]
    return sigma, weights, rgb.reshape(num_rays, num_samples, 3), coloured.reshape(num_rays, num_samples)


def place_samples(field: FrameField, rays_o, rays_d, near, far, settings: RenderSettings,
                  occupancy: DensityOccupancy | None = None) -> RaySamples:
    """Samples on rays (R, 3) world, metres between near and far (R,): in the frame's density
    ``occupancy`` when given (``settings.density_grid_samples`` of them over the exact stretch of
    its kept cells that each ray crosses, :func:`grid_samples`), else in the field's occupied
    band when it knows one (see the module docstring), else stratified over ``[near, far]``."""
    if occupancy is not None and settings.band_bins > 0:
        return grid_samples(occupancy, rays_o, rays_d, near, far, num_samples=settings.density_grid_samples,
                            perturb=settings.perturb)
    num_bins = settings.band_bins
    if num_bins > 0:
        with torch.no_grad():
            centres = (torch.arange(num_bins, dtype=rays_o.dtype, device=rays_o.device) + 0.5) / num_bins
            t_centres = near[:, None] + (far - near).clamp_min(0.0)[:, None] * centres[None, :]  # (R, K)
            points = rays_o[:, None, :] + t_centres[..., None] * rays_d[:, None, :]
            occupied = field.occupied(points.reshape(-1, 3))
        if occupied is not None:
            return band_samples(
                rays_o, rays_d, near, far, occupied.reshape(-1, num_bins),
                num_samples=settings.num_samples, perturb=settings.perturb,
            )
    return stratified_samples(rays_o, rays_d, near, far, num_samples=settings.num_samples, perturb=settings.perturb)


def _render_hit_rays(field: FrameField, rays_o, rays_d, near, far, settings: RenderSettings,
                     occupancy: DensityOccupancy | None):
    """Render rays known to hit the box. Returns rgb (R, 3) without background, acc (R,), depth (R,)
    and the distortion loss (R,) (None unless ``settings.distortion``)."""
    samples = place_samples(field, rays_o, rays_d, near, far, settings, occupancy)
    early = settings.early_stop_transmittance > 0 and not torch.is_grad_enabled() and not settings.distortion
    if not early:
        sigma, rgb = _query_samples(field, samples.points, rays_d)
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
    skip_faint = settings.colour_weight_min > 0
    coloured_acc = torch.zeros_like(acc)
    for start in range(0, num_samples, settings.segment_samples):
        alive = torch.nonzero(light > settings.early_stop_transmittance).squeeze(1)
        if alive.numel() == 0:
            break
        stop = min(start + settings.segment_samples, num_samples)
        points = samples.points[alive, start:stop]
        deltas = samples.deltas[alive, start:stop]
        if skip_faint:
            sigma, weights, rgb, coloured = _query_weighted(field, points, deltas, rays_d[alive], light[alive], settings)
            coloured_acc.index_add_(0, alive, coloured.sum(dim=1))
        else:
            sigma, rgb = _query_samples(field, points, rays_d[alive])
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
    field: FrameField,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    *,
    settings: RenderSettings,
    background: torch.Tensor,
    occupancy: DensityOccupancy | None = None,
) -> RenderOutput:
    """Volume-render rays through one frame of a model.

    Args:
        field: the frame's field (``model.prepare_frame`` for training, ``model.compile_frame``
            for inference).
        rays_o: (N, 3) ray origins, world, metres.
        rays_d: (N, 3) unit ray directions, world.
        settings: sampling and batching.
        background: (3,) colour in [0, 1] seen where the rays are not fully absorbed.
        occupancy: the frame's density occupancy (:func:`frame_occupancy`); None: the field's
            own occupied band.
    """
    if rays_o.ndim != 2 or rays_o.shape[1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must be (N, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}")
    background = torch.as_tensor(background, dtype=rays_o.dtype, device=rays_o.device).reshape(-1)
    if background.shape != (3,):
        raise ValueError(f"background must be an RGB triple, got shape {tuple(background.shape)}")
    num_rays = rays_o.shape[0]
    near, far, hit = ray_box_intersection(rays_o, rays_d, field.box_min, field.box_max)
    hit_ids = torch.nonzero(hit).squeeze(1)
    chunks = [hit_ids[start : start + settings.chunk_rays] for start in range(0, hit_ids.numel(), settings.chunk_rays)]

    def render_chunk(ids: torch.Tensor):
        return _render_hit_rays(field, rays_o[ids], rays_d[ids], near[ids], far[ids], settings, occupancy)

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


def frame_occupancy(field: FrameField, settings: RenderSettings) -> DensityOccupancy | None:
    """The frame's density occupancy for whole-image renders (``settings.density_grid_cell`` > 0),
    else None. Build it once per frame and pass it to every :func:`render_view` of that frame."""
    if settings.density_grid_cell <= 0:
        return None
    with torch.no_grad():
        return build_density_grid(field, cell=settings.density_grid_cell, min_density=settings.density_grid_min,
                                  workers=render_workers(settings, field.box_min.device))


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
    field: FrameField,
    camera: Camera,
    *,
    settings: RenderSettings,
    background: torch.Tensor,
    occupancy: DensityOccupancy | None = None,
) -> ImageRender:
    """Render the full image a camera sees of one frame (no gradients, chunks of rays).

    The model's colours are the rig's reference colours; a colour-calibrated camera
    (``camera.colour_gain`` not ones) sees them through its own response: the person's part of
    each pixel is multiplied by the gain (saturating at full opacity), the background is left as given.

    Args:
        field: the frame's field (``model.compile_frame(...)``; its box's device is used).
        camera: the camera (distortion honoured through :func:`pixel_rays`).
        settings: sampling and batching.
        background: (3,) colour in [0, 1].
        occupancy: the frame's density occupancy from :func:`frame_occupancy`; None: built here
            when ``settings`` ask for one (pass it when rendering several views of a frame).
    """
    device = field.box_min.device
    rays_o, rays_d = camera_rays(camera, device=device)
    with torch.no_grad():
        if occupancy is None:
            occupancy = frame_occupancy(field, settings)
        out = render_rays(field, rays_o, rays_d, settings=settings, background=background, occupancy=occupancy)
    height, width = camera.height, camera.width
    rgb = out.rgb
    if camera.has_colour_gain:
        rgb = apply_colour_gain(rgb, out.acc, camera.colour_gain, background)
    return ImageRender(
        rgb=rgb.reshape(height, width, 3),
        acc=out.acc.reshape(height, width),
        depth=out.depth.reshape(height, width),
    )
