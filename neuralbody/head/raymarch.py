"""Volume rendering of a head avatar along rays (the project's compositing, :mod:`neuralbody.rendering.volrend`).

Each ray is cut by the frame's posed box (:func:`neuralbody.data.cameras.ray_box_intersection`);
S samples are spread evenly between entry and exit (jittered within their strata when
``perturb``); the avatar gives sigma and colour there; ``w_i = T_i (1 - exp(-sigma_i delta_i))``;
colour ``sum w_i c_i`` over a black background, opacity ``sum w_i``, depth ``sum w_i z_i / sum w_i``
(camera z of the samples, metres; 0 where the opacity is below 1e-3) and the surface depth,
the z of the first sample where the accumulated opacity reaches 1/2 (the median of the
weights; 0 where it never does). Rays missing the box
are black, empty and at depth 0. With an ``occupancy`` (:mod:`neuralbody.head.occupancy`),
only the samples in its occupied voxels are queried (the others are empty), front to back,
and a ray stops querying once its transmittance is below 1e-3 (inference).
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.data.cameras import ray_box_intersection
from neuralbody.head.frame import HeadFrame
from neuralbody.rendering.volrend import composite, render_weights


@dataclasses.dataclass
class RayColours:
    """What R rays see.

    Attributes:
        rgb: (R, 3) in [0, 1].
        opacity: (R,) accumulated opacity.
        depth: (R,) expected camera z, metres (0: empty).
        surface: (R,) camera z where the opacity reaches 1/2, metres (0: never).
    """

    rgb: torch.Tensor
    opacity: torch.Tensor
    depth: torch.Tensor
    surface: torch.Tensor


def _query_front_to_back(avatar, frame: HeadFrame, points: torch.Tensor, deltas: torch.Tensor, occupancy,
                         block: int = 8, stop: float = 1e-3, frame_values=None) -> tuple[torch.Tensor, torch.Tensor]:
    """sigma (R S,), rgb (R S, 3) of samples (R, S, 3): only occupied samples of rays still seen.

    Blocks of ``block`` samples go front to back; a ray whose transmittance fell below ``stop``
    queries no more (what lies behind adds at most ``stop`` to its colour and opacity).
    """
    count, samples = points.shape[:2]
    sigma, colour = points.new_zeros(count, samples), points.new_zeros(count, samples, 3)
    transmittance = points.new_ones(count)
    for first in range(0, samples, block):
        part = slice(first, min(samples, first + block))
        seen = (transmittance > stop)[:, None].expand(-1, part.stop - first)
        chosen = seen & occupancy.contains(points[:, part].reshape(-1, 3)).reshape(seen.shape)
        rows, cols = torch.nonzero(chosen, as_tuple=True)
        if rows.numel():
            some_sigma, some_colour = avatar.query(points[rows, cols + first], frame, frame_values=frame_values)
            sigma[rows, cols + first], colour[rows, cols + first] = some_sigma, some_colour
        transmittance = transmittance * torch.exp(-(sigma[:, part] * deltas[:, part]).sum(dim=1))
    return sigma.reshape(-1), colour.reshape(-1, 3)


def render_rays(avatar, frame: HeadFrame, rays_o: torch.Tensor, rays_d: torch.Tensor, forward: torch.Tensor,
                *, samples: int = 32, perturb: bool = False, occupancy=None, frame_values=None) -> RayColours:
    """Render rays (R, 3) origins and unit directions, world metres; forward (3,) the camera's z axis.

    ``occupancy``: a :class:`~neuralbody.head.occupancy.PosedOccupancy` of the frame, or None.
    ``frame_values``: the avatar's per-frame fold (``avatar.fold(frame)``, inference), or None.
    """
    if rays_o.shape != rays_d.shape or rays_o.ndim != 2 or rays_o.shape[1] != 3 or samples < 2:
        raise ValueError(f"render_rays: rays must both be (R, 3) and samples >= 2, got {tuple(rays_o.shape)}, "
                         f"{tuple(rays_d.shape)}, {samples}")
    count = rays_o.shape[0]
    rgb, opacity, depth = rays_o.new_zeros(count, 3), rays_o.new_zeros(count), rays_o.new_zeros(count)
    surface = rays_o.new_zeros(count)
    near, far, hit = ray_box_intersection(rays_o, rays_d, frame.box_min, frame.box_max)
    rows = torch.nonzero(hit).squeeze(1)
    if rows.numel() == 0:
        return RayColours(rgb, opacity, depth, surface)
    near, far = near[rows, None], far[rows, None]
    steps = (torch.arange(samples, dtype=rays_o.dtype, device=rays_o.device) + 0.5) / samples
    if perturb:
        steps = steps + (torch.rand(rows.numel(), samples, device=rays_o.device) - 0.5) / samples
    t = near + (far - near) * steps  # (R', S)
    points = rays_o[rows, None, :] + t[..., None] * rays_d[rows, None, :]
    deltas = ((far - near) / samples).expand_as(t)
    if occupancy is None:
        sigma, colour = avatar.query(points.reshape(-1, 3), frame, frame_values=frame_values)
    else:
        sigma, colour = _query_front_to_back(avatar, frame, points, deltas, occupancy, frame_values=frame_values)
    weights, _ = render_weights(sigma.reshape(t.shape), deltas)
    z = t * (rays_d[rows] @ forward.to(rays_d))[:, None]
    values = composite(weights, torch.cat([colour.reshape(*t.shape, 3), z[..., None]], dim=2))
    acc = weights.sum(dim=1)
    ray_depth = torch.where(acc > 1e-3, values[:, 3] / acc.clamp_min(1e-3), torch.zeros_like(acc))
    reached = weights.detach().cumsum(dim=1) >= 0.5
    first = reached.float().argmax(dim=1)
    ray_surface = torch.where(reached.any(dim=1), z.detach().gather(1, first[:, None])[:, 0], torch.zeros_like(acc))
    return RayColours(rgb.index_copy(0, rows, values[:, :3]), opacity.index_copy(0, rows, acc),
                      depth.index_copy(0, rows, ray_depth), surface.index_copy(0, rows, ray_surface))
