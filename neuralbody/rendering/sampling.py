"""Placing samples along rays between per-ray near and far distances.

Sample i of S (``i = 0..S-1``) on a ray with ``[near, far]`` lies at::

    t_i = near + (far - near) * (i + u_i) / S

with ``u_i = 0.5`` (deterministic, bin centres) or ``u_i ~ U[0, 1)`` (stratified, for
training). Segment lengths ``delta_i = (far - near) / S`` (metres for unit directions), so
that a constant density ``sigma`` integrates exactly to ``1 - exp(-sigma (far - near))``.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class RaySamples:
    """Samples along R rays, S each.

    Attributes:
        t: (R, S) distances along the rays, metres (units of |rays_d|).
        deltas: (R, S) segment lengths, metres.
        points: (R, S, 3) sample positions, world coordinates, metres.
    """

    t: torch.Tensor
    deltas: torch.Tensor
    points: torch.Tensor


def stratum_offsets(
    num_rays: int, num_samples: int, *, perturb: bool, generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """(R, S) places of the samples in their strata, in [0, 1): uniform random (``perturb``,
    training) or 0.5 (stratum centres); dtype and device of ``like``."""
    shape = (num_rays, num_samples)
    if perturb:
        return torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)
    return torch.full(shape, 0.5, dtype=like.dtype, device=like.device)


def stratified_samples(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    *,
    num_samples: int,
    perturb: bool = False,
    generator: torch.Generator | None = None,
) -> RaySamples:
    """Stratified samples in ``[near, far]`` on each ray.

    Args:
        rays_o: (R, 3) origins, world, metres.
        rays_d: (R, 3) unit directions, world.
        near: (R,) entry distances, metres.
        far: (R,) exit distances, metres (``far >= near``).
        num_samples: S, samples per ray.
        perturb: jitter each sample uniformly inside its bin (training) instead of the centre.
        generator: random generator for the jitter.
    """
    if rays_o.ndim != 2 or rays_o.shape[1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must be (R, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}")
    if near.shape != (rays_o.shape[0],) or far.shape != near.shape:
        raise ValueError(f"near and far must be (R,), got {tuple(near.shape)} and {tuple(far.shape)}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_rays = rays_o.shape[0]
    bins = torch.arange(num_samples, dtype=rays_o.dtype, device=rays_o.device)
    offsets = stratum_offsets(num_rays, num_samples, perturb=perturb, generator=generator, like=rays_o)
    span = (far - near).clamp_min(0.0)
    step = span / num_samples
    t = near[:, None] + step[:, None] * (bins[None, :] + offsets)
    deltas = step[:, None].expand(num_rays, num_samples)
    points = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
    return RaySamples(t=t, deltas=deltas, points=points)


def band_samples(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: torch.Tensor,
    far: torch.Tensor,
    occupied_bins: torch.Tensor,
    *,
    num_samples: int,
    perturb: bool = False,
    generator: torch.Generator | None = None,
) -> RaySamples:
    """Stratified samples spread over the occupied part of each ray only.

    ``[near, far]`` is cut into K equal bins of length ``b = (far - near) / K``;
    ``occupied_bins`` marks those where the field may be non-zero (elsewhere its density is
    zero, so skipping them changes nothing). The occupied bins, concatenated front to back,
    form a segment of length ``L = n b`` (n occupied bins) that gets S stratified samples
    with ``delta_i = L / S``: the i-th lies at compressed distance ``u_i = (i + o_i) n / S``
    bins, mapped back to the ray through the cumulative count of occupied bins. Rays with no
    occupied bin get zero-length samples (they render the background).

    Args:
        rays_o: (R, 3) origins, world, metres.
        rays_d: (R, 3) unit directions, world.
        near: (R,) entry distances, metres.
        far: (R,) exit distances, metres.
        occupied_bins: (R, K) bool, bin k covers ``[near + k b, near + (k + 1) b]``.
        num_samples: S, samples per ray.
        perturb: jitter each sample uniformly inside its stratum (training).
        generator: random generator for the jitter.
    """
    if rays_o.ndim != 2 or rays_o.shape[1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must be (R, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}")
    if near.shape != (rays_o.shape[0],) or far.shape != near.shape:
        raise ValueError(f"near and far must be (R,), got {tuple(near.shape)} and {tuple(far.shape)}")
    if occupied_bins.ndim != 2 or occupied_bins.shape[0] != rays_o.shape[0]:
        raise ValueError(f"occupied_bins must be (R, K), got {tuple(occupied_bins.shape)} for {rays_o.shape[0]} rays")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_rays, num_bins = occupied_bins.shape
    dtype, device = rays_o.dtype, rays_o.device
    bin_length = (far - near).clamp_min(0.0) / num_bins  # (R,)
    counts = occupied_bins.to(dtype).cumsum(dim=1)  # (R, K) occupied bins up to and including k
    total = counts[:, -1]  # (R,)
    offsets = stratum_offsets(num_rays, num_samples, perturb=perturb, generator=generator, like=rays_o)
    strata = torch.arange(num_samples, dtype=dtype, device=device)
    compressed = (strata[None, :] + offsets) * (total / num_samples)[:, None]  # (R, S) in occupied bins
    # bin holding compressed distance u: first k with counts[k] > u; position inside it
    bins = torch.searchsorted(counts, compressed.contiguous(), right=True).clamp_max(num_bins - 1)
    before = torch.gather(counts, 1, bins) - 1.0  # occupied bins in front of the chosen one
    inside = (compressed - before).clamp(0.0, 1.0)
    t = near[:, None] + (bins.to(dtype) + inside) * bin_length[:, None]
    deltas = (total * bin_length / num_samples)[:, None].expand(num_rays, num_samples)
    points = rays_o[:, None, :] + t[..., None] * rays_d[:, None, :]
    return RaySamples(t=t, deltas=deltas, points=points)


def band_samples_reference(
    near: torch.Tensor, far: torch.Tensor, occupied_bins: torch.Tensor, *, num_samples: int, offsets: torch.Tensor
) -> torch.Tensor:
    """Slow oracle of :func:`band_samples`' distances: a loop that walks the occupied bins.

    near, far: (R,) metres; occupied_bins: (R, K) bool; offsets: (R, S) in [0, 1) -> t (R, S) metres.
    """
    num_rays, num_bins = occupied_bins.shape
    t = torch.zeros((num_rays, num_samples), dtype=near.dtype)
    for r in range(num_rays):
        bin_length = float(far[r] - near[r]) / num_bins
        occupied = [k for k in range(num_bins) if bool(occupied_bins[r, k])]
        for i in range(num_samples):
            if not occupied:
                t[r, i] = near[r] + (num_bins - 1 + 1.0) * bin_length  # searchsorted clamps to the last bin
                continue
            u = (i + float(offsets[r, i])) * len(occupied) / num_samples
            k = min(int(u), len(occupied) - 1)
            t[r, i] = near[r] + (occupied[k] + (u - k)) * bin_length
    return t
