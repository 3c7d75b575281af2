"""Closest points, signed distances and inside tests against a triangle mesh (Warp BVH), plus oracles.

For a point ``p`` and a triangle ``(a, b, c)`` the closest point is
``q = w_a a + w_b b + w_c c`` with barycentric weights ``w >= 0, sum w = 1`` minimising
``|p - q|``; against a mesh it is the closest over all faces. Warp finds the face with its
BVH (float32, on the device of the mesh) together with the barycentric weights, and the
point is rebuilt from them in the query's dtype: distances agree with the float64 brute-force
oracle (:func:`closest_points_reference`, Ericson's Voronoi-region method) to ~1e-6 of the
mesh's size.

Inside-ness uses the generalised winding number ``w(p) = sum_f Omega_f(p) / (4 pi)``
(``Omega_f`` the signed solid angle of face ``f``, outward-facing winding): 1 inside a closed
mesh, 0 outside, and a smooth value in between near holes. A point is inside where
``w(p) > 0.5`` (Warp's fast dipole approximation, ``accuracy = 2``), which stays robust for
non-watertight meshes such as body scans and marching-cubes output with open borders.
Signed distances are negative inside.

All coordinates are metres in one common frame (whatever frame the vertices are in).
Inputs may be numpy arrays or torch tensors (CPU or CUDA); results come back as the same
kind, on the points' device. :class:`WarpMesh` holds the BVH so callers can build it once
and query it many times. :func:`closest_points_reference` and :func:`winding_number_reference` are
the slow brute-force oracles used by the tests.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import warp as wp

from neuralbody.geometry.warp_init import init_warp

WINDING_THRESHOLD = 0.5
"""Winding number above which a point counts as inside."""

_MAX_QUERY_DIST = 1.0e10
_ACCURACY = 2.0  # Barnes-Hut opening criterion of Warp's dipole approximation (its default)


@wp.kernel
def _closest_face_kernel(
    mesh: wp.uint64,
    points: wp.array(dtype=wp.vec3),
    max_dist: float,
    face_out: wp.array(dtype=wp.int32),
    uv_out: wp.array(dtype=wp.vec2),
):
    tid = wp.tid()
    query = wp.mesh_query_point_no_sign(mesh, points[tid], max_dist)
    if query.result:
        face_out[tid] = query.face
        uv_out[tid] = wp.vec2(query.u, query.v)
    else:
        face_out[tid] = -1
        uv_out[tid] = wp.vec2(0.0, 0.0)


@wp.func_native("return wp::mesh_query_winding_number(mesh, point, accuracy);")
def _winding_number(mesh: wp.uint64, point: wp.vec3, accuracy: float) -> float:
    """Warp's fast winding number (the routine behind ``mesh_query_point_sign_winding_number``).

    Called directly: the builtin also runs a closest-point search first, which costs ~10x
    more than the winding number itself for points far from the surface.
    """
    ...


@wp.kernel
def _winding_number_kernel(
    mesh: wp.uint64,
    points: wp.array(dtype=wp.vec3),
    accuracy: float,
    winding_out: wp.array(dtype=float),
):
    tid = wp.tid()
    winding_out[tid] = _winding_number(mesh, points[tid], accuracy)


@dataclasses.dataclass
class ClosestPoints:
    """Closest surface points of N query points (numpy arrays or torch tensors, like the query).

    Attributes:
        points: (N, 3) closest points on the mesh, metres.
        distances: (N,) unsigned distances ``|p - q|``, metres.
        face_ids: (N,) int64 index of the face holding the closest point. Warp skips degenerate
            (sliver) triangles, whose area is ~0; if every face is degenerate the id is -1, the
            point and distance infinite and the barycentrics zero.
        barycentrics: (N, 3) weights of the face's vertices ``faces[face_ids]`` in index order
            (non-negative, summing to 1).
    """

    points: np.ndarray | torch.Tensor
    distances: np.ndarray | torch.Tensor
    face_ids: np.ndarray | torch.Tensor
    barycentrics: np.ndarray | torch.Tensor


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x * y).sum(dim=-1)


def closest_point_on_triangles(
    points: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closest point on each triangle, by Ericson's Voronoi regions (Real-Time Collision Detection 5.1.5).

    With ``d1 = ab.ap, d2 = ac.ap, d3 = ab.bp, d4 = ac.bp, d5 = ab.cp, d6 = ac.cp`` the point lies
    in the region of vertex A (``d1 <= 0, d2 <= 0``), B (``d3 >= 0, d4 <= d3``), C
    (``d6 >= 0, d5 <= d6``), edge AB (``vc = d1 d4 - d3 d2 <= 0, d1 >= 0, d3 <= 0``), edge AC
    (``vb = d5 d2 - d1 d6 <= 0, d2 >= 0, d6 <= 0``), edge BC (``va = d3 d6 - d5 d4 <= 0,
    d4 >= d3, d5 >= d6``), or projects inside the face (weights ``(va, vb, vc) / (va + vb + vc)``).

    Args:
        points: (..., 3) query points, metres.
        a, b, c: (..., 3) triangle corners (broadcastable against ``points``).

    Returns:
        closest: (..., 3) closest points.
        barycentrics: (..., 3) weights of ``(a, b, c)``.
    """
    ab, ac = b - a, c - a
    d1, d2 = _dot(ab, points - a), _dot(ac, points - a)
    d3, d4 = _dot(ab, points - b), _dot(ac, points - b)
    d5, d6 = _dot(ab, points - c), _dot(ac, points - c)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def safe(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x.abs() > 1e-30, x, torch.full_like(x, 1e-30))

    zero, one = torch.zeros_like(d1), torch.ones_like(d1)
    denom = safe(va + vb + vc)
    weights = torch.stack([va / denom, vb / denom, vc / denom], dim=-1)  # face interior
    # Regions in reverse order of precedence, so that earlier tests win (as in Ericson's early returns).
    t_bc = (d4 - d3) / safe((d4 - d3) + (d5 - d6))
    regions = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), (zero, 1 - t_bc, t_bc)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), (1 - d2 / safe(d2 - d6), zero, d2 / safe(d2 - d6))),
        ((d6 >= 0) & (d5 <= d6), (zero, zero, one)),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), (1 - d1 / safe(d1 - d3), d1 / safe(d1 - d3), zero)),
        ((d3 >= 0) & (d4 <= d3), (zero, one, zero)),
        ((d1 <= 0) & (d2 <= 0), (one, zero, zero)),
    ]
    for condition, region_weights in regions:
        weights = torch.where(condition[..., None], torch.stack(region_weights, dim=-1), weights)
    closest = weights[..., 0:1] * a + weights[..., 1:2] * b + weights[..., 2:3] * c
    return closest, weights


def _check_mesh(vertices, faces, where: str) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{where}: vertices must be (V, 3) metres, got shape {tuple(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(
            f"{where}: faces must be (F, 3) triangle indices, got shape {tuple(faces.shape)}; triangulate first"
        )
    if faces.shape[0] == 0:
        raise ValueError(f"{where}: the mesh has no faces")
    if int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[0]:
        raise ValueError(
            f"{where}: face indices must lie in [0, {vertices.shape[0]}), got [{int(faces.min())}, {int(faces.max())}]"
        )


def _check_points(points, where: str) -> None:
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{where}: points must be (N, 3) metres, got shape {tuple(points.shape)}")


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float64


def _like_query(value: torch.Tensor, query) -> np.ndarray | torch.Tensor:
    """Return ``value`` as the same kind as ``query``: numpy array, or tensor on its device."""
    if isinstance(query, torch.Tensor):
        return value.to(query.device)
    return value.cpu().numpy()


class WarpMesh:
    """A triangle mesh with its Warp BVH, built once and queried many times.

    Args:
        vertices: (V, 3) vertex positions, metres (numpy or torch).
        faces: (F, 3) integer triangle indices, outward-facing (counter-clockwise seen from outside).
        device: where the BVH lives; default the device of ``vertices`` (CPU for numpy).

    The winding-number hierarchy (needed by :meth:`inside` and :meth:`signed_distance`) is
    built on first use. Queries from another device are moved to the mesh's device and back.
    """

    def __init__(self, vertices, faces, *, device: torch.device | str | None = None) -> None:
        vertices, faces = _as_tensor(vertices), _as_tensor(faces)
        _check_mesh(vertices, faces, "WarpMesh")
        self.device = torch.device(device) if device is not None else vertices.device
        self.vertices = vertices.detach().to(device=self.device, dtype=torch.float64)  # (V, 3) metres
        self.faces = faces.detach().to(device=self.device, dtype=torch.int64)  # (F, 3)
        init_warp()
        self._wp_device = wp.device_from_torch(self.device)
        # Warp meshes reference these buffers: keep them alive as long as the meshes.
        self._points_wp = wp.from_torch(self.vertices.float().contiguous(), dtype=wp.vec3)
        self._indices_wp = wp.from_torch(self.faces.to(torch.int32).reshape(-1).contiguous(), dtype=wp.int32)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # Warp builds the BVH on its own stream
        self._mesh = wp.Mesh(points=self._points_wp, indices=self._indices_wp)
        self._winding_mesh: wp.Mesh | None = None

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def _launch(self, kernel, points: torch.Tensor, inputs: list, outputs: list[tuple[torch.Tensor, type]]) -> None:
        """Run ``kernel(mesh inputs..., points, ..., outputs...)`` over N points on the mesh's device.

        ``inputs`` holds the mesh id first; the float32 copy of ``points`` (N, 3) goes second.
        ``outputs`` are ``(tensor, warp dtype)`` pairs written in place.
        On CUDA the kernel runs on PyTorch's current stream, so it is ordered with the torch ops
        that made its inputs and read its outputs; CPU launches are synchronous.
        """
        points_wp = wp.from_torch(points.float().contiguous(), dtype=wp.vec3)  # kept alive until the launch ends
        outputs_wp = [wp.from_torch(tensor, dtype=dtype) for tensor, dtype in outputs]
        stream = wp.stream_from_torch(self.device) if self.device.type == "cuda" else None
        wp.launch(
            kernel,
            dim=points.shape[0],
            inputs=[inputs[0], points_wp, *inputs[1:]],
            outputs=outputs_wp,
            device=self._wp_device,
            stream=stream,
        )

    def _launch_closest(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3) points on the mesh device -> closest points (N, 3), face ids (N,) int64, barycentrics (N, 3).

        Warp returns ``(u, v)`` with ``q = u a + v b + (1 - u - v) c`` (float32); the point is
        rebuilt from them in the query's dtype.
        """
        num_points = points.shape[0]
        face = torch.empty(num_points, dtype=torch.int32, device=self.device)
        uv = torch.zeros(num_points, 2, dtype=torch.float32, device=self.device)
        if num_points:
            self._launch(_closest_face_kernel, points, [self._mesh.id, _MAX_QUERY_DIST], [(face, wp.int32), (uv, wp.vec2)])
        face_ids = face.long()
        uv = uv.to(points.dtype)
        barycentrics = torch.cat([uv, 1.0 - uv.sum(dim=1, keepdim=True)], dim=1)
        corners = self.vertices.to(points.dtype)[self.faces[face_ids.clamp_min(0)]]  # (N, 3, 3)
        closest = (barycentrics[:, :, None] * corners).sum(dim=1)
        # No face found (only when every face is degenerate): no point, infinite distance.
        found = (face_ids >= 0)[:, None]
        closest = torch.where(found, closest, torch.full_like(closest, math.inf))
        barycentrics = barycentrics * found
        return closest, face_ids, barycentrics

    def _launch_winding(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) points on the mesh device -> (N,) float32 winding numbers."""
        if self._winding_mesh is None:
            self._winding_mesh = wp.Mesh(points=self._points_wp, indices=self._indices_wp, support_winding_number=True)
        winding = torch.empty(points.shape[0], dtype=torch.float32, device=self.device)
        if points.shape[0]:
            self._launch(_winding_number_kernel, points, [self._winding_mesh.id, _ACCURACY], [(winding, wp.float32)])
        return winding

    def _prepare(self, points, where: str) -> torch.Tensor:
        tensor = _as_tensor(points)
        _check_points(tensor, where)
        return tensor.detach().to(device=self.device, dtype=_float_dtype(tensor))

    def closest_points(self, points) -> ClosestPoints:
        """Closest mesh points to ``points`` ((N, 3) metres, numpy or torch); see :class:`ClosestPoints`."""
        query = self._prepare(points, "WarpMesh.closest_points")
        closest, face_ids, barycentrics = self._launch_closest(query)
        distances = (query - closest).norm(dim=-1)
        return ClosestPoints(
            points=_like_query(closest, points),
            distances=_like_query(distances, points),
            face_ids=_like_query(face_ids, points),
            barycentrics=_like_query(barycentrics, points),
        )

    def winding_numbers(self, points) -> np.ndarray | torch.Tensor:
        """(N,) float32 generalised winding number around each point ((N, 3) metres): ~1 inside, ~0 outside."""
        query = self._prepare(points, "WarpMesh.winding_numbers")
        return _like_query(self._launch_winding(query), points)

    def inside(self, points, *, threshold: float = WINDING_THRESHOLD) -> np.ndarray | torch.Tensor:
        """(N,) bool: winding number of the mesh around each point ((N, 3) metres) above ``threshold``."""
        query = self._prepare(points, "WarpMesh.inside")
        return _like_query(self._launch_winding(query) > threshold, points)

    def signed_distance(self, points, *, threshold: float = WINDING_THRESHOLD) -> np.ndarray | torch.Tensor:
        """(N,) distance to the surface in metres, negative inside (winding number > ``threshold``)."""
        query = self._prepare(points, "WarpMesh.signed_distance")
        closest, _, _ = self._launch_closest(query)
        distances = (query - closest).norm(dim=-1)
        inside = self._launch_winding(query) > threshold
        return _like_query(torch.where(inside, -distances, distances), points)


def closest_points(vertices, faces, points) -> ClosestPoints:
    """Closest points on the mesh ``(vertices (V, 3) metres, faces (F, 3))`` to ``points`` (N, 3) metres.

    Builds a :class:`WarpMesh` on the points' device; build one yourself to query a mesh repeatedly.
    """
    return WarpMesh(vertices, faces, device=_as_tensor(points).device).closest_points(points)


def inside(vertices, faces, points, *, threshold: float = WINDING_THRESHOLD) -> np.ndarray | torch.Tensor:
    """(N,) bool: is each point ((N, 3) metres) inside the mesh, by winding number > ``threshold`` (0.5)."""
    return WarpMesh(vertices, faces, device=_as_tensor(points).device).inside(points, threshold=threshold)


def signed_distance(vertices, faces, points, *, threshold: float = WINDING_THRESHOLD) -> np.ndarray | torch.Tensor:
    """(N,) signed distance of each point ((N, 3) metres) to the mesh, metres, negative inside."""
    return WarpMesh(vertices, faces, device=_as_tensor(points).device).signed_distance(points, threshold=threshold)


def closest_points_reference(vertices, faces, points, *, chunk_pairs: int = 2_000_000) -> ClosestPoints:
    """Brute force over every (point, face) pair in float64, numpy in and out. Test oracle only.

    Memory is O(chunk_pairs); time O(N F): keep N F below ~1e8.
    """
    vertices = torch.as_tensor(np.asarray(vertices, dtype=np.float64))
    faces = torch.as_tensor(np.asarray(faces, dtype=np.int64))
    query = torch.as_tensor(np.asarray(points, dtype=np.float64))
    _check_mesh(vertices, faces, "closest_points_reference")
    _check_points(query, "closest_points_reference")
    a, b, c = (vertices[faces[:, k]][None] for k in range(3))  # (1, F, 3)
    chunk = max(1, chunk_pairs // faces.shape[0])
    results = {"points": [], "distances": [], "face_ids": [], "barycentrics": []}
    for start in range(0, query.shape[0], chunk):
        p = query[start : start + chunk, None, :]  # (n, 1, 3)
        closest, weights = closest_point_on_triangles(p, a, b, c)  # (n, F, 3)
        dist = (p - closest).norm(dim=-1)  # (n, F)
        best = dist.argmin(dim=1)
        rows = torch.arange(p.shape[0])
        results["points"].append(closest[rows, best])
        results["distances"].append(dist[rows, best])
        results["face_ids"].append(best)
        results["barycentrics"].append(weights[rows, best])
    return ClosestPoints(**{k: torch.cat(v).numpy() for k, v in results.items()})


def winding_number_reference(vertices, faces, points) -> np.ndarray:
    """(N,) exact generalised winding number, float64 numpy. Test oracle only (O(N F) memory).

    ``w(p) = sum_f Omega_f / (4 pi)`` with the solid angle of the triangle ``(a, b, c)`` seen
    from ``p`` by Van Oosterom and Strackee: ``tan(Omega / 2) = A . (B x C) /
    (|A||B||C| + (A.B)|C| + (B.C)|A| + (C.A)|B|)``, ``A = a - p`` etc.
    """
    vertices, faces = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    points = np.asarray(points, np.float64)
    _check_mesh(vertices, faces, "winding_number_reference")
    _check_points(points, "winding_number_reference")
    A, B, C = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))  # (N, F, 3)
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (A, B, C))
    numerator = np.einsum("nfk,nfk->nf", A, np.cross(B, C))
    denominator = (
        la * lb * lc
        + np.einsum("nfk,nfk->nf", A, B) * lc
        + np.einsum("nfk,nfk->nf", B, C) * la
        + np.einsum("nfk,nfk->nf", C, A) * lb
    )
    return (2.0 * np.arctan2(numerator, denominator)).sum(axis=1) / (4.0 * math.pi)
