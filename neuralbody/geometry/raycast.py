"""Ray casting against a triangle mesh with Warp (BVH on CPU or CUDA), plus a brute-force oracle.

For a ray ``x(t) = o + t d`` and a triangle ``(a, b, c)`` the first hit is the smallest
``t >= 0`` with ``x(t) = u a + v b + (1 - u - v) c``, ``u, v >= 0``, ``u + v <= 1``.
:func:`cast_rays` returns ``t`` in units of ``|d|`` (metres for unit directions), the face,
the barycentric weights ``(u, v, 1 - u - v)`` of the face's three vertices in index order,
and the unit geometric normal ``(b - a) x (c - a) / |...|`` (it follows the face winding and
is not flipped towards the ray).

:func:`cast_rays_reference` is the slow, obvious Möller–Trumbore implementation over all
(ray, face) pairs, used as the test oracle.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import warp as wp

from neuralbody.geometry.normals import face_normals
from neuralbody.geometry.warp_init import init_warp


@dataclasses.dataclass
class RayHits:
    """First intersections of N rays with a mesh (torch tensors on the rays' device).

    Attributes:
        hit: (N,) bool, True where the ray meets the mesh within ``max_t``.
        t: (N,) distance along the ray in units of ``|rays_d|`` (metres for unit
            directions); ``inf`` where there is no hit.
        face_ids: (N,) int64 index of the hit face; -1 where there is no hit.
        barycentrics: (N, 3) weights of the face's vertices ``faces[face_ids]``; zeros where
            there is no hit.
        normals: (N, 3) unit geometric normal of the hit face (face winding); zeros where
            there is no hit.
    """

    hit: torch.Tensor
    t: torch.Tensor
    face_ids: torch.Tensor
    barycentrics: torch.Tensor
    normals: torch.Tensor

    def points(self, rays_o: torch.Tensor, rays_d: torch.Tensor) -> torch.Tensor:
        """(N, 3) hit points ``o + t d``; rows without a hit are meaningless (zeros)."""
        t = torch.where(self.hit, self.t, torch.zeros_like(self.t))
        return rays_o + t[:, None] * rays_d


@wp.kernel
def _cast_kernel(
    mesh: wp.uint64,
    rays_o: wp.array(dtype=wp.vec3),
    rays_d: wp.array(dtype=wp.vec3),
    max_t: float,
    hit: wp.array(dtype=wp.int32),
    t_out: wp.array(dtype=float),
    face_out: wp.array(dtype=wp.int32),
    uv_out: wp.array(dtype=wp.vec2),
):
    tid = wp.tid()
    query = wp.mesh_query_ray(mesh, rays_o[tid], rays_d[tid], max_t)
    if query.result:
        hit[tid] = 1
        t_out[tid] = query.t
        face_out[tid] = query.face
        uv_out[tid] = wp.vec2(query.u, query.v)
    else:
        hit[tid] = 0
        t_out[tid] = 0.0
        face_out[tid] = -1
        uv_out[tid] = wp.vec2(0.0, 0.0)


def _check_inputs(vertices, faces, rays_o, rays_d) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"cast_rays: vertices must be (V, 3), got {tuple(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(
            f"cast_rays: faces must be (F, 3) triangles, got {tuple(faces.shape)}; triangulate quads first"
        )
    if rays_o.shape != rays_d.shape or rays_o.ndim != 2 or rays_o.shape[1] != 3:
        raise ValueError(
            f"cast_rays: rays_o and rays_d must both be (N, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}"
        )
    if len(faces) and (int(faces.min()) < 0 or int(faces.max()) >= len(vertices)):
        raise ValueError(
            f"cast_rays: face indices must lie in [0, {len(vertices)}), got [{int(faces.min())}, {int(faces.max())}]"
        )


def cast_rays(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    max_t: float = 1.0e6,
) -> RayHits:
    """First hit of each ray with a triangle mesh (Warp BVH, on the device of ``rays_o``).

    Args:
        vertices: (V, 3) mesh vertices, metres (any frame, same as the rays).
        faces: (F, 3) int triangle indices.
        rays_o: (N, 3) ray origins, metres.
        rays_d: (N, 3) ray directions (unit for ``t`` in metres).
        max_t: hits farther than this are ignored.

    Returns:
        :class:`RayHits` with tensors on ``rays_o``'s device (float32).
    """
    vertices, faces, rays_o, rays_d = (torch.as_tensor(x) for x in (vertices, faces, rays_o, rays_d))
    _check_inputs(vertices, faces, rays_o, rays_d)
    device = rays_o.device
    num_rays = rays_o.shape[0]
    if num_rays == 0 or faces.shape[0] == 0:
        return RayHits(
            hit=torch.zeros(num_rays, dtype=torch.bool, device=device),
            t=torch.full((num_rays,), float("inf"), device=device),
            face_ids=torch.full((num_rays,), -1, dtype=torch.int64, device=device),
            barycentrics=torch.zeros(num_rays, 3, device=device),
            normals=torch.zeros(num_rays, 3, device=device),
        )
    points = vertices.detach().to(device=device, dtype=torch.float32).contiguous()
    indices = faces.detach().to(device=device, dtype=torch.int32).reshape(-1).contiguous()
    origins = rays_o.detach().to(dtype=torch.float32).contiguous()
    directions = rays_d.detach().to(device=device, dtype=torch.float32).contiguous()
    init_warp()
    wp_device = wp.device_from_torch(device)
    hit = torch.empty(num_rays, dtype=torch.int32, device=device)
    t = torch.empty(num_rays, dtype=torch.float32, device=device)
    face = torch.empty(num_rays, dtype=torch.int32, device=device)
    uv = torch.empty(num_rays, 2, dtype=torch.float32, device=device)
    mesh = wp.Mesh(
        points=wp.from_torch(points, dtype=wp.vec3),
        indices=wp.from_torch(indices, dtype=wp.int32),
    )
    wp.launch(
        _cast_kernel,
        dim=num_rays,
        inputs=[
            mesh.id,
            wp.from_torch(origins, dtype=wp.vec3),
            wp.from_torch(directions, dtype=wp.vec3),
            float(max_t),
        ],
        outputs=[
            wp.from_torch(hit, dtype=wp.int32),
            wp.from_torch(t, dtype=wp.float32),
            wp.from_torch(face, dtype=wp.int32),
            wp.from_torch(uv, dtype=wp.vec2),
        ],
        device=wp_device,
    )
    wp.synchronize_device(wp_device)
    del mesh
    hit_mask = hit.bool()
    face_ids = torch.where(hit_mask, face.long(), torch.full_like(face, -1, dtype=torch.int64))
    barycentrics = torch.stack([uv[:, 0], uv[:, 1], 1.0 - uv[:, 0] - uv[:, 1]], dim=1) * hit_mask[:, None]
    normals = torch.zeros(num_rays, 3, dtype=torch.float32, device=device)
    if bool(hit_mask.any()):
        normals[hit_mask] = face_normals(points, indices.view(-1, 3).long())[face_ids[hit_mask]]
    return RayHits(
        hit=hit_mask,
        t=torch.where(hit_mask, t, torch.full_like(t, float("inf"))),
        face_ids=face_ids,
        barycentrics=barycentrics,
        normals=normals,
    )


def cast_rays_reference(
    vertices: np.ndarray, faces: np.ndarray, rays_o: np.ndarray, rays_d: np.ndarray, max_t: float = 1.0e6
) -> RayHits:
    """Brute-force Möller–Trumbore over every (ray, face) pair, float64. Test oracle only.

    Solves ``o + t d = a + s1 (b - a) + s2 (c - a)`` by Cramer's rule for each pair, keeps
    ``t >= 0, s1, s2 >= 0, s1 + s2 <= 1, t <= max_t`` and the smallest ``t``. The barycentric
    weights of ``(a, b, c)`` are ``(1 - s1 - s2, s1, s2)``. Memory is O(N F): small meshes only.
    """
    vertices, faces = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    rays_o, rays_d = np.asarray(rays_o, np.float64), np.asarray(rays_d, np.float64)
    _check_inputs(vertices, faces, rays_o, rays_d)
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    e1, e2 = b - a, c - a  # (F, 3)
    p = np.cross(rays_d[:, None, :], e2[None])  # (N, F, 3)
    det = np.einsum("nfk,fk->nf", p, e1)
    ok = np.abs(det) > 1e-12
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = rays_o[:, None, :] - a[None]  # (N, F, 3)
    s1 = np.einsum("nfk,nfk->nf", s, p) * inv_det
    q = np.cross(s, e1[None])
    s2 = np.einsum("nk,nfk->nf", rays_d, q) * inv_det
    t = np.einsum("fk,nfk->nf", e2, q) * inv_det
    valid = ok & (s1 >= 0) & (s2 >= 0) & (s1 + s2 <= 1) & (t >= 0) & (t <= max_t)
    t = np.where(valid, t, np.inf)
    face = np.argmin(t, axis=1)
    rows = np.arange(len(rays_o))
    t_best = t[rows, face]
    hit = np.isfinite(t_best)
    s1b, s2b = s1[rows, face], s2[rows, face]
    bary = np.stack([1 - s1b - s2b, s1b, s2b], axis=1) * hit[:, None]
    n = np.cross(e1, e2)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    return RayHits(
        hit=torch.from_numpy(hit),
        t=torch.from_numpy(t_best),
        face_ids=torch.from_numpy(np.where(hit, face, -1)),
        barycentrics=torch.from_numpy(bary),
        normals=torch.from_numpy(n[face] * hit[:, None]),
    )
