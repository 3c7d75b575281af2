"""Rays through the occupied cells of a voxel grid: exact band lengths and samples (Warp), plus an oracle.

A grid of ``(X, Y, Z)`` cells of edge ``h`` has cell ``(i, j, k)`` spanning
``origin + h * [i, i + 1) x [j, j + 1) x [k, k + 1)`` (metres, the rays' frame). A ray
``x(t) = o + t d`` on ``[near, far]`` crosses a sequence of cells (Amanatides & Woo's 3D DDA:
from the current cell, the next boundary along axis a is at ``t_a = (plane_a - o_a) / d_a``;
the ray leaves through the axis with the smallest ``t_a``). The crossings of occupied cells are
intervals ``[a_m, b_m]``; their union, concatenated front to back, has length

    L = sum_m (b_m - a_m)

and gets S stratified samples: sample ``i`` at compressed distance ``u_i = (i + o_i) L / S``
(``o_i`` in [0, 1): 0.5 for bin centres) lies at ``t_i = a_m + (u_i - c_m)`` in the interval m
with ``c_m <= u_i < c_m + (b_m - a_m)``, ``c_m`` the length of the intervals before it. Each
sample stands for ``L / S`` of the ray (the same rule as :func:`neuralbody.rendering.sampling.band_samples`,
but with the occupied stretch measured exactly instead of from bin tests). Rays crossing no
occupied cell get ``L = 0`` and all samples at ``near``.

:func:`grid_band_samples` runs one Warp thread per ray (CPU or CUDA, the rays' device), two
passes over the cells (measure L, then place the samples); :func:`grid_band_samples_reference`
is the slow, obvious version (every plane crossing computed and sorted per ray, float64) used
as the test oracle.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
import warp as wp

from neuralbody.geometry.warp_init import init_warp

_FAR = 1.0e30
_WARP_LOCK = threading.Lock()


@wp.func
def _axis_start(o: float, d: float, origin: float, index: int, cell: float) -> wp.vec3:
    """Along one axis from cell ``index``: (step -1/0/+1, t of the next cell boundary, t between boundaries)."""
    if d > 0.0:
        return wp.vec3(1.0, (origin + float(index + 1) * cell - o) / d, cell / d)
    if d < 0.0:
        return wp.vec3(-1.0, (origin + float(index) * cell - o) / d, -cell / d)
    return wp.vec3(0.0, _FAR, _FAR)


@wp.func
def _walk(
    occupied: wp.array3d(dtype=wp.uint8),
    origin: wp.vec3,
    cell: float,
    o: wp.vec3,
    d: wp.vec3,
    t_start: float,
    t_end: float,
    total: float,
    emit: int,
    ray: int,
    offsets: wp.array2d(dtype=float),
    t_out: wp.array2d(dtype=float),
) -> float:
    """Walk the cells from t_start to t_end; return the occupied length; with emit, place the samples of ``total``."""
    nx = occupied.shape[0]
    ny = occupied.shape[1]
    nz = occupied.shape[2]
    p = (o + d * t_start - origin) / cell
    ix = wp.clamp(int(wp.floor(p[0])), 0, nx - 1)
    iy = wp.clamp(int(wp.floor(p[1])), 0, ny - 1)
    iz = wp.clamp(int(wp.floor(p[2])), 0, nz - 1)
    axis_x = _axis_start(o[0], d[0], origin[0], ix, cell)
    axis_y = _axis_start(o[1], d[1], origin[1], iy, cell)
    axis_z = _axis_start(o[2], d[2], origin[2], iz, cell)
    sx = int(axis_x[0])
    sy = int(axis_y[0])
    sz = int(axis_z[0])
    tx = axis_x[1]
    ty = axis_y[1]
    tz = axis_z[1]
    dx = axis_x[2]
    dy = axis_y[2]
    dz = axis_z[2]
    num_samples = t_out.shape[1]
    length = float(0.0)
    k = int(0)
    t = t_start
    last = t_start
    steps = int(0)
    max_steps = nx + ny + nz + 3
    while t < t_end and steps < max_steps:
        t_exit = wp.min(wp.min(tx, ty), wp.min(tz, t_end))
        if occupied[ix, iy, iz] != wp.uint8(0) and t_exit > t:
            span = t_exit - t
            if emit != 0:
                while k < num_samples:
                    u = (float(k) + offsets[ray, k]) * total / float(num_samples)
                    if u >= length + span:
                        break
                    t_out[ray, k] = t + wp.max(u - length, 0.0)
                    k += 1
            length += span
            last = t_exit
        t = t_exit
        steps += 1
        if tx <= ty and tx <= tz:
            ix += sx
            tx += dx
            if ix < 0 or ix >= nx:
                break
        elif ty <= tz:
            iy += sy
            ty += dy
            if iy < 0 or iy >= ny:
                break
        else:
            iz += sz
            tz += dz
            if iz < 0 or iz >= nz:
                break
    if emit != 0:
        while k < num_samples:  # rounding at the very end of the band (or an empty band: at near)
            t_out[ray, k] = last
            k += 1
    return length


@wp.kernel
def _band_kernel(
    occupied: wp.array3d(dtype=wp.uint8),
    origin: wp.vec3,
    cell: float,
    rays_o: wp.array(dtype=wp.vec3),
    rays_d: wp.array(dtype=wp.vec3),
    near: wp.array(dtype=float),
    far: wp.array(dtype=float),
    offsets: wp.array2d(dtype=float),
    t_out: wp.array2d(dtype=float),
    length_out: wp.array(dtype=float),
):
    ray = wp.tid()
    o = rays_o[ray]
    d = rays_d[ray]
    t0 = near[ray]
    t1 = far[ray]
    total = _walk(occupied, origin, cell, o, d, t0, t1, 0.0, 0, ray, offsets, t_out)
    length_out[ray] = total
    _walk(occupied, origin, cell, o, d, t0, t1, total, 1, ray, offsets, t_out)


def _check(occupied, origin, rays_o, rays_d, near, far, offsets) -> None:
    if occupied.ndim != 3:
        raise ValueError(f"occupied must be an (X, Y, Z) grid, got shape {tuple(occupied.shape)}")
    if tuple(origin.shape) != (3,):
        raise ValueError(f"origin must be (3,), got {tuple(origin.shape)}")
    if rays_o.ndim != 2 or rays_o.shape[1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must be (R, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}")
    num_rays = rays_o.shape[0]
    if near.shape != (num_rays,) or far.shape != (num_rays,):
        raise ValueError(f"near and far must be (R,) = ({num_rays},), got {tuple(near.shape)} and {tuple(far.shape)}")
    if offsets.ndim != 2 or offsets.shape[0] != num_rays or offsets.shape[1] < 1:
        raise ValueError(f"offsets must be (R, S) with S >= 1, got {tuple(offsets.shape)} for R = {num_rays}")


def grid_band_samples(
    occupied: torch.Tensor,
    origin: torch.Tensor,
    cell: float,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    offsets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples spread over the occupied cells each ray crosses (see the module docstring).

    Args:
        occupied: (X, Y, Z) bool grid.
        origin: (3,) corner of cell (0, 0, 0), metres, the rays' frame.
        cell: cell edge, metres.
        rays_o: (R, 3) origins, metres.
        rays_d: (R, 3) directions (unit for distances in metres).
        near, far: (R,) the stretch of each ray to walk (inside the grid's box), metres.
        offsets: (R, S) in [0, 1): each sample's place in its stratum (0.5: centres).

    Returns:
        t (R, S) sample distances, non-decreasing along each ray, and length (R,) the occupied
        length L of each ray (each sample stands for ``L / S``), float32 on the rays' device.
    """
    _check(occupied, origin, rays_o, rays_d, near, far, offsets)
    if not cell > 0:
        raise ValueError(f"cell must be positive, got {cell}")
    device = rays_o.device
    num_rays, num_samples = offsets.shape
    t = torch.empty((num_rays, num_samples), dtype=torch.float32, device=device)
    length = torch.empty(num_rays, dtype=torch.float32, device=device)
    if num_rays == 0:
        return t, length
    grid = occupied.to(device=device, dtype=torch.uint8).contiguous()
    tensors = [rays_o.detach().float().contiguous()] + [
        x.detach().to(device).float().contiguous() for x in (rays_d, near, far, offsets)]
    with _WARP_LOCK:  # renderer threads call at once; Warp's first load of a module is not thread-safe
        init_warp()
        inputs = [
            wp.from_torch(grid, dtype=wp.uint8),
            wp.vec3(*(float(v) for v in origin.detach().cpu())),
            float(cell),
            wp.from_torch(tensors[0], dtype=wp.vec3),
            wp.from_torch(tensors[1], dtype=wp.vec3),
            *(wp.from_torch(x) for x in tensors[2:]),
        ]
        stream = wp.stream_from_torch(device) if device.type == "cuda" else None
        wp.launch(_band_kernel, dim=num_rays, inputs=inputs, outputs=[wp.from_torch(t), wp.from_torch(length)],
                  device=wp.device_from_torch(device), stream=stream)
    return t, length


def occupied_intervals_reference(
    occupied: np.ndarray, origin: np.ndarray, cell: float, ray_o: np.ndarray, ray_d: np.ndarray, near: float, far: float
) -> list[tuple[float, float]]:
    """Slow oracle: the ``[a, b]`` stretches of one ray (3,) inside occupied cells, front to back (float64).

    Every crossing of a cell plane within ``(near, far)`` is computed and sorted; each piece
    between consecutive crossings lies in the one cell holding its midpoint.
    """
    occupied = np.asarray(occupied, dtype=bool)
    origin, ray_o, ray_d = (np.asarray(x, dtype=np.float64) for x in (origin, ray_o, ray_d))
    cuts = [near, far]
    for axis in range(3):
        if ray_d[axis] == 0:
            continue
        for plane in range(occupied.shape[axis] + 1):
            t = (origin[axis] + plane * cell - ray_o[axis]) / ray_d[axis]
            if near < t < far:
                cuts.append(t)
    cuts = sorted(cuts)
    intervals: list[tuple[float, float]] = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        if b <= a:
            continue
        index = np.floor((ray_o + 0.5 * (a + b) * ray_d - origin) / cell).astype(int)
        if np.any(index < 0) or np.any(index >= occupied.shape) or not occupied[tuple(index)]:
            continue
        if intervals and math.isclose(intervals[-1][1], a, abs_tol=1e-12):
            intervals[-1] = (intervals[-1][0], b)
        else:
            intervals.append((a, b))
    return intervals


def grid_band_samples_reference(
    occupied: torch.Tensor,
    origin: torch.Tensor,
    cell: float,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    offsets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow oracle of :func:`grid_band_samples` (same arguments and results, float64, one ray at a time)."""
    _check(occupied, origin, rays_o, rays_d, near, far, offsets)
    num_rays, num_samples = offsets.shape
    t = torch.zeros((num_rays, num_samples), dtype=torch.float64)
    length = torch.zeros(num_rays, dtype=torch.float64)
    grid, corner = occupied.cpu().numpy(), origin.detach().cpu().numpy()
    for r in range(num_rays):
        intervals = occupied_intervals_reference(grid, corner, cell, rays_o[r].detach().cpu().numpy(),
                                                 rays_d[r].detach().cpu().numpy(), float(near[r]), float(far[r]))
        total = sum(b - a for a, b in intervals)
        length[r] = total
        for i in range(num_samples):
            u = (i + float(offsets[r, i])) * total / num_samples
            before, placed = 0.0, None
            for a, b in intervals:
                if u < before + (b - a):
                    placed = a + (u - before)
                    break
                before += b - a
            t[r, i] = placed if placed is not None else (intervals[-1][1] if intervals else float(near[r]))
    return t, length
