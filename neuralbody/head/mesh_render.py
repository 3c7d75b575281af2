"""Ground-truth images of the posed head mesh: colour, mask and depth for one camera.

Per pixel, ``s x s`` rays (:func:`neuralbody.synth.generate.camera_rays`) are cast against the
posed mesh with Warp (:func:`neuralbody.geometry.raycast.cast_rays`); at each hit the rest-mesh
albedo is interpolated with the barycentrics and shaded with the studio lights fixed in the
world (:func:`neuralbody.synth.shading.shade`, smooth vertex normals). A pixel's colour is the
mean of its samples over a black background; mask = hit coverage >= 1/2; depth = camera z
(metres, along the optical axis) of the nearest sample hit, 0 where nothing is hit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.cameras import Camera
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.raycast import cast_rays
from neuralbody.synth.generate import camera_rays
from neuralbody.synth.shading import Lighting, interpolate, shade


@dataclasses.dataclass
class MeshView:
    """One rendered view.

    Attributes:
        image: (H, W, 3) float32 in [0, 1].
        mask: (H, W) bool.
        depth: (H, W) float32 camera z, metres (0: background).
    """

    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray


def render_mesh(camera: Camera, vertices: torch.Tensor, faces: torch.Tensor, albedo: torch.Tensor,
                *, supersample: int = 2, lighting: Lighting = Lighting()) -> MeshView:
    """Render the mesh (vertices (V, 3) world metres, faces (F, 3), per-vertex albedo (V, 3)) for a camera."""
    if vertices.ndim != 2 or vertices.shape[1] != 3 or albedo.shape != vertices.shape:
        raise ValueError(f"render_mesh: vertices and albedo must both be (V, 3), got {tuple(vertices.shape)}, "
                         f"{tuple(albedo.shape)}")
    if supersample < 1:
        raise ValueError(f"render_mesh: supersample must be >= 1, got {supersample}")
    rays = camera_rays([camera], supersample)
    rays_o, rays_d = rays.rays_o[0], rays.rays_d[0]
    vertices = vertices.float()
    hits = cast_rays(vertices, faces, rays_o, rays_d)
    colour = torch.zeros_like(rays_o)
    hit = hits.hit
    normals = interpolate(vertex_normals(vertices, faces), faces, hits.face_ids[hit], hits.barycentrics[hit])
    normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
    base = interpolate(albedo.float(), faces, hits.face_ids[hit], hits.barycentrics[hit])
    colour[hit] = shade(base, normals, rays_d[hit], lighting)
    forward = rays.forward[0]
    z = torch.where(hit, hits.t * (rays_d @ forward), torch.full_like(hits.t, float("inf")))
    h, w, s = camera.height, camera.width, supersample
    colour = colour.reshape(h, w, s * s, 3)
    coverage = hit.reshape(h, w, s * s).float().mean(dim=2)
    depth = z.reshape(h, w, s * s).min(dim=2).values
    depth = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
    return MeshView(image=colour.mean(dim=2).numpy().astype(np.float32), mask=(coverage >= 0.5).numpy(),
                    depth=depth.numpy().astype(np.float32))
