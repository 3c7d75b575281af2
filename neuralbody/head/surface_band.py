"""Volume rendering in a band around a ray's surface hit, the band's canonical points found by cheap local inversion.

A trained grid avatar is foggy: a volume-rendered pixel's colour is a composite of samples
spread over centimetres in front of and behind the surface (on the seed-1 IMAvatar the weights
reach 10 cm behind the opacity-1/2 silhouette's iso-surface), not the colour of one level set.
Once a ray's first hit with the posed canonical surface is known (:mod:`neuralbody.head.surface_render`)
with its canonical point ``x_h``, the band's world samples ``y`` get canonical points without a
search from scratch:

1. **the hit's rigid blend:** with the skinning weights ``w`` and offset ``o = E psi + Pc theta``
   at ``x_h`` (the frame's fold, :func:`neuralbody.head.deformation.frame_grid`), the deformation
   there is ``d(x) = A (x + o) + b`` with ``A = sum_b w_b R_b``, ``b = sum_b w_b t_b``; holding
   ``w`` and ``o`` fixed along the band gives ``x_0(y) = x_h + A^{-1} (y - d(x_h))``;
2. **``refine`` chord steps** towards the root of ``d(x) = y`` with that fixed matrix,
   ``x_{k+1} = x_k + A^{-1} (y - d(x_k))`` (:func:`neuralbody.head.deformation.deform`, one
   7-channel lookup a step: no Jacobian, no Broyden update, no second start).

The band's samples are the volume renderer's own (:func:`neuralbody.head.raymarch.render_rays`:
``S`` evenly spaced in the frame's posed box, ``t_i = near + (far - near)(i + 1/2)/S``), those
with ``t_h - front <= t_i <= t_h + back``; their density and colour are the canonical fields at
``x(y_i)`` (zero density outside the canonical box, as for an invalid candidate), composited as
the volume renderer does (:mod:`neuralbody.rendering.volrend`): colour, opacity, expected depth and
the depth where the opacity reaches 1/2. Where the deformation is rigid over the band (the
rest pose, a rigid head turn) and the band holds all of a ray's weight, the result is the
volume render's; what the band leaves out (fog farther than ``front`` before the hit or
``back`` behind it, rays that never meet the surface, the other branch where the deformation
folds, e.g. between the lips) is empty.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from neuralbody.head.avatar import ImAvatar
from neuralbody.head.deformation import deform
from neuralbody.head.grid_box import GridBox
from neuralbody.head.raymarch import RayColours
from neuralbody.rendering.volrend import composite, render_weights
from neuralbody.skinning.forward_skinning import invert_jacobians
from neuralbody.skinning.trilinear import trilinear


@dataclasses.dataclass(frozen=True)
class Band:
    """The band around a hit.

    Attributes:
        front: metres of ray before the hit.
        back: metres of ray behind the hit.
        samples: the volume renderer's samples over a ray's stretch in the posed box.
        refine: chord steps of the local inversion (module docstring; 0: the rigid blend alone).
    """

    front: float = 0.05
    back: float = 0.15
    samples: int = 32
    refine: int = 2

    def __post_init__(self) -> None:
        if self.front < 0 or self.back < 0 or self.samples < 2 or self.refine < 0:
            raise ValueError(f"Band: front, back >= 0 and samples >= 2 needed, got {self}")


def _hit_blend(canonical: torch.Tensor, frame_values: torch.Tensor, box: GridBox, transforms: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``d(x_h)`` (R, 3) and ``A^{-1}`` (R, 3, 3), the inverse blended rotation, at canonical points (R, 3)."""
    sample = trilinear(frame_values, box.coords(canonical)).values
    logits = sample[:, 3:]
    w = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
    w = w / w.sum(dim=1, keepdim=True)
    blended = (w @ transforms[:, :3, :].reshape(-1, 12).to(canonical)).reshape(-1, 3, 4)
    posed = (blended[:, :, :3] @ (canonical + sample[:, :3])[:, :, None])[:, :, 0] + blended[:, :, 3]
    return posed, invert_jacobians(blended[:, :, :3])[0]


def band_render(avatar: ImAvatar, frame_values: torch.Tensor, transforms: torch.Tensor, canonical: torch.Tensor,
                rays_o: torch.Tensor, rays_d: torch.Tensor, t_hit: torch.Tensor, near: torch.Tensor,
                far: torch.Tensor, forward: torch.Tensor, band: Band = Band()) -> RayColours:
    """Colour, opacity and depths of R rays that hit the surface (module docstring), no gradients.

    Args:
        avatar: the trained avatar (canonical density and colour grids, deformation lattice).
        frame_values: (X, Y, Z, 3 + B) the frame's fold of the deformation grid (``avatar.fold(frame)``).
        transforms: (B, 4, 4) the frame's bone transforms, canonical to world.
        canonical: (R, 3) canonical points of the hits, metres.
        rays_o, rays_d: (R, 3) ray origins and unit directions, world metres.
        t_hit: (R,) distance of the hit along the ray, metres.
        near, far: (R,) the ray's stretch in the frame's posed box, metres along the ray.
        forward: (3,) the camera's optical axis (world), for camera z.
        band: the band's extent and sample spacing.
    """
    count = canonical.shape[0]
    if canonical.shape != (count, 3) or rays_o.shape != (count, 3) or rays_d.shape != (count, 3) or \
            not (t_hit.shape == near.shape == far.shape == (count,)):
        raise ValueError(f"band_render: canonical, rays (R, 3) and t_hit, near, far (R,) needed, got "
                         f"{tuple(canonical.shape)}, {tuple(rays_o.shape)}, {tuple(t_hit.shape)}")
    posed, inverse = _hit_blend(canonical, frame_values, avatar.deform_box, transforms)
    delta = (far - near) / band.samples  # (R,)
    first = torch.ceil((t_hit - band.front - near) / delta.clamp_min(1e-9) - 0.5).clamp_min(0)
    width = int(math.ceil((band.front + band.back) / max(float(delta.min()), 1e-9))) + 1 if count else 1
    index = first[:, None] + torch.arange(min(width, band.samples), dtype=first.dtype)  # (R, K)
    t = near[:, None] + delta[:, None] * (index + 0.5)
    inside = (index < band.samples) & (t <= t_hit[:, None] + band.back) & (t >= t_hit[:, None] - band.front)
    rows, cols = torch.nonzero(inside, as_tuple=True)
    world = rays_o[rows] + t[rows, cols, None] * rays_d[rows]  # (M, 3) the band's samples
    step = inverse[rows]
    points = canonical[rows] + (step @ (world - posed[rows])[:, :, None])[:, :, 0]
    for _ in range(band.refine):
        residual = world - deform(points, frame_values, avatar.deform_box, transforms)[0]
        points = points + (step @ residual[:, :, None])[:, :, 0]
    found = trilinear(avatar.canonical.detach(), avatar.box.coords(points)).values
    sigma, colour = t.new_zeros(t.shape), t.new_zeros(*t.shape, 3)
    sigma[rows, cols] = avatar.settings.density_scale * torch.nn.functional.softplus(found[:, 0]) * \
        avatar.box.contains(points)
    colour[rows, cols] = torch.sigmoid(found[:, 1:])
    weights, _ = render_weights(sigma, (delta[:, None] * inside).expand_as(t).contiguous())
    z = t * (rays_d @ forward.to(rays_d))[:, None]
    out = composite(weights, torch.cat([colour, z[..., None]], dim=2))
    acc = weights.sum(dim=1)
    depth = torch.where(acc > 1e-3, out[:, 3] / acc.clamp_min(1e-3), torch.zeros_like(acc))
    reached = weights.cumsum(dim=1) >= 0.5
    surface = torch.where(reached.any(dim=1), z.gather(1, reached.float().argmax(dim=1, keepdim=True))[:, 0],
                          torch.zeros_like(acc))
    return RayColours(rgb=out[:, :3], opacity=acc, depth=depth, surface=surface)
