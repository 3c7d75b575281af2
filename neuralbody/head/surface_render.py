"""Animating IMAvatar from its canonical surface: the mesh forward-mapped per frame, ray cast, then shaded.

IMAvatar's deformation is a forward map, ``x_d = d(x_c) = LBS_W(x_c + E psi + P theta)``
(:func:`neuralbody.head.deformation.deform`); volume rendering inverts it for every sample
(Broyden from two starts), which is what makes a frame cost seconds. A surface is cheap to move:

1. once per run, the canonical iso-surface ``sigma = level`` (:mod:`neuralbody.head.canonical_surface`;
   the level from :mod:`neuralbody.head.surface_level`);
2. per frame, its vertices are forward-mapped, ``v_d = d(v_c)`` (the frame's fold of the
   deformation grid, as the volume renderer uses);
3. each pixel's rays (``supersample`` x ``supersample`` sub-pixel rays; with 1, the volume
   renderer's rays through the pixel centres), cut by the frame's posed box as the volume
   renderer cuts them, are cast against the posed mesh (:func:`neuralbody.geometry.raycast.cast_rays`,
   Warp): face ``f``, barycentrics ``(b_0, b_1, b_2)`` and distance of the first hit;
4. the hit's canonical point is the same barycentric combination of the face's CANONICAL
   vertices, ``x_c = sum_i b_i v_c[f_i]`` (``d(x_c)`` is the posed hit up to the linearisation
   of ``d`` over the facet);
5. shading (:class:`SurfaceSettings`): ``band`` (default) volume-renders the volume renderer's
   own samples in a band around the hit, their canonical points found by a local inversion
   started from the hit (:mod:`neuralbody.head.surface_band`); ``band=None`` takes the avatar's
   canonical colour at ``x_c``, ``sigmoid(c(x_c))``, opacity 1 and the hit's depth (a plain surface);
6. a pixel's colour and opacity are the means over its rays (black and 0 where a ray misses),
   its depths the means over the rays that see something (0: none).

The result is a :class:`neuralbody.head.evaluation.RenderedImage`, scored as the volume render
is. Work is split over the CPU's cores (:func:`neuralbody.workers.map_in_threads`): the vertices
in chunks, the rays in interleaved chunks (Warp builds its BVH of the posed mesh once a chunk).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, ray_box_intersection
from neuralbody.geometry.raycast import cast_rays
from neuralbody.head.avatar import ImAvatar
from neuralbody.head.canonical_surface import CanonicalSurface
from neuralbody.head.deformation import deform
from neuralbody.head.evaluation import RenderedImage
from neuralbody.head.frame import HeadFrame
from neuralbody.head.raymarch import RayColours
from neuralbody.head.surface_band import Band, band_render
from neuralbody.skinning.trilinear import trilinear
from neuralbody.workers import cpu_workers, map_in_threads


def posed_vertices(avatar: ImAvatar, surface: CanonicalSurface, frame: HeadFrame, *, workers: int = 1,
                   frame_values: torch.Tensor | None = None) -> torch.Tensor:
    """(V, 3) the surface's vertices forward-mapped into the frame's world, metres (no gradients).

    ``frame_values``: the avatar's fold of the frame (``avatar.fold(frame)``), computed when None.
    """
    values = avatar.fold(frame) if frame_values is None else frame_values
    pieces = list(surface.vertices.chunk(max(1, workers)))

    def forward(chunk: torch.Tensor) -> torch.Tensor:
        return deform(chunk, values, avatar.deform_box, frame.code.transforms)[0]

    return torch.cat(map_in_threads(forward, pieces, workers)) if len(surface.vertices) else surface.vertices.clone()


def subpixel_rays(camera: Camera, supersample: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions (H W s^2, 3), world metres: ``s x s`` rays a pixel, pixel-major.

    The rays of pixel ``(u, v)`` (row-major) are rows ``(v W + u) s^2 ...`` and pass through
    ``(u + (i + 1/2)/s - 1/2, v + (j + 1/2)/s - 1/2)``: with ``s = 1``, the pixel centres of
    :func:`neuralbody.data.cameras.pixel_rays`.
    """
    if supersample < 1:
        raise ValueError(f"subpixel_rays: supersample must be >= 1, got {supersample}")
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    v, u, dv, du = np.meshgrid(np.arange(camera.height), np.arange(camera.width), offsets, offsets, indexing="ij")
    o, d = pixel_rays(camera, np.stack([(u + du).ravel(), (v + dv).ravel()], axis=1))
    return torch.tensor(o, dtype=torch.float32), torch.tensor(d, dtype=torch.float32)


@dataclasses.dataclass(frozen=True)
class SurfaceSettings:
    """How the surface render shades and samples.

    Attributes:
        supersample: rays a pixel along each axis.
        band: composite the band around each hit (:mod:`neuralbody.head.surface_band`); None:
            the canonical colour at the hit, opacity 1 (a plain surface).
        chunk: most rays a task (Warp builds the posed mesh's BVH once a task).
    """

    supersample: int = 1
    band: Band | None = Band()
    chunk: int = 1 << 20

    def __post_init__(self) -> None:
        if self.supersample < 1 or self.chunk < 1:
            raise ValueError(f"SurfaceSettings: supersample >= 1 and chunk >= 1 needed, got {self}")


@dataclasses.dataclass
class SurfaceHits:
    """First hits of R rays with the posed surface.

    Attributes:
        rows: (H,) int64 indices of the rays that hit (within their stretch in the posed box).
        t: (H,) distance of the hit along the ray from its origin, metres (unit directions).
        canonical: (H, 3) the hit's canonical point, ``sum_i b_i v_c[f_i]``, metres.
    """

    rows: torch.Tensor
    t: torch.Tensor
    canonical: torch.Tensor


def surface_hits(surface: CanonicalSurface, vertices: torch.Tensor, rays_o: torch.Tensor, rays_d: torch.Tensor,
                 near: torch.Tensor, far: torch.Tensor) -> SurfaceHits:
    """First hits of rays (R, 3) with the posed mesh ``vertices`` (V, 3) between ``near`` and ``far`` (R,), metres.

    The rays start at ``o + near d`` (the volume renderer's stretch of the ray in the posed box);
    the hit's canonical point takes the hit face's barycentrics on the canonical vertices.
    """
    if vertices.shape != surface.vertices.shape:
        raise ValueError(f"surface_hits: posed vertices {tuple(vertices.shape)} do not match the surface's "
                         f"{tuple(surface.vertices.shape)}")
    hits = cast_rays(vertices, surface.faces, rays_o + near[:, None] * rays_d, rays_d)
    rows = torch.nonzero(hits.hit & (hits.t <= far - near)).squeeze(1)
    corners = surface.vertices[surface.faces[hits.face_ids[rows]]]  # (H, 3 corners, 3)
    canonical = (hits.barycentrics[rows, :, None] * corners).sum(dim=1)
    return SurfaceHits(rows=rows, t=near[rows] + hits.t[rows], canonical=canonical)


def _shade(avatar: ImAvatar, surface: CanonicalSurface, vertices: torch.Tensor, values: torch.Tensor,
           frame: HeadFrame, o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
           forward: torch.Tensor, settings: SurfaceSettings) -> RayColours:
    """What rays (R, 3) entering the posed box at ``near`` (R,) and leaving at ``far`` see of the surface."""
    zeros = o.new_zeros(o.shape[0])
    out = RayColours(rgb=o.new_zeros(o.shape[0], 3), opacity=zeros, depth=zeros.clone(), surface=zeros.clone())
    hits = surface_hits(surface, vertices, o, d, near, far)
    rows = hits.rows
    if rows.numel() == 0:
        return out
    if settings.band is None:
        z = hits.t * (d[rows] @ forward)
        rgb = torch.sigmoid(trilinear(avatar.canonical[..., 1:].detach(), avatar.box.coords(hits.canonical)).values)
        shown = RayColours(rgb=rgb, opacity=torch.ones_like(z), depth=z, surface=z)
    else:
        shown = band_render(avatar, values, frame.code.transforms, hits.canonical, o[rows], d[rows], hits.t,
                            near[rows], far[rows], forward, settings.band)
    out.rgb[rows], out.opacity[rows], out.depth[rows], out.surface[rows] = (shown.rgb, shown.opacity, shown.depth,
                                                                              shown.surface)
    return out


def render_surface(avatar: ImAvatar, surface: CanonicalSurface, frame: HeadFrame, camera: Camera, *,
                   settings: SurfaceSettings = SurfaceSettings(), workers: int = 0) -> RenderedImage:
    """Render a camera's whole image of a frame from the canonical surface (module docstring).

    Args:
        avatar: the trained :class:`ImAvatar` the surface was extracted from.
        surface: its canonical surface (:func:`~neuralbody.head.canonical_surface.extract_canonical_surface`).
        frame: the frame's parameters and posed box.
        camera: the camera (world-to-camera, OpenCV axes).
        settings: supersampling, shading, chunk size.
        workers: threads (0: ``$NEURALBODY_THREADS``, else one per core).
    """
    if workers < 0:
        raise ValueError(f"render_surface: workers must be >= 0, got {workers}")
    start = time.perf_counter()
    threads = cpu_workers(workers, torch.device("cpu"))
    with torch.no_grad():
        values = avatar.fold(frame)
        vertices = posed_vertices(avatar, surface, frame, workers=threads, frame_values=values)
        o, d = subpixel_rays(camera, settings.supersample)
        forward = torch.tensor(camera.R[2], dtype=torch.float32)
        near, far, inside = ray_box_intersection(o, d, frame.box_min, frame.box_max)
        rows = torch.nonzero(inside).squeeze(1)
        pieces = threads * -(-rows.numel() // (settings.chunk * threads))
        tasks = [rows[i::pieces] for i in range(pieces)] if rows.numel() else []

        def shade(part: torch.Tensor) -> RayColours:
            return _shade(avatar, surface, vertices, values, frame, o[part], d[part], near[part], far[part], forward,
                          settings)

        parts = map_in_threads(shade, tasks, threads)
    count, h, w, s2 = o.shape[0], camera.height, camera.width, settings.supersample ** 2
    rgb, opacity, depth, surface_z = o.new_zeros(count, 3), o.new_zeros(count), o.new_zeros(count), o.new_zeros(count)
    for part, out in zip(tasks, parts):
        rgb[part], opacity[part], depth[part], surface_z[part] = out.rgb, out.opacity, out.depth, out.surface

    def pixel_depth(z: torch.Tensor) -> np.ndarray:
        z = z.reshape(h, w, s2)
        seen = (z > 0).float().sum(dim=2)
        return torch.where(seen > 0, z.sum(dim=2) / seen.clamp_min(1.0), torch.zeros_like(seen)).numpy()

    return RenderedImage(rgb=rgb.reshape(h, w, s2, 3).mean(dim=2).numpy(),
                         opacity=opacity.reshape(h, w, s2).mean(dim=2).numpy(), depth=pixel_depth(depth),
                         surface=pixel_depth(surface_z), seconds=time.perf_counter() - start)
