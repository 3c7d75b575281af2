"""Volume rendering along rays: weights from densities, and compositing.

For S samples along a ray with densities ``sigma_i`` (1/metres) and segment lengths
``delta_i`` (metres)::

    alpha_i = 1 - exp(-sigma_i * delta_i)
    T_i     = prod_{j < i} (1 - alpha_j) = exp(-sum_{j < i} sigma_j * delta_j)
    w_i     = T_i * alpha_i
    C       = sum_i w_i c_i,      acc = sum_i w_i = 1 - T_{S+1}

:func:`render_weights_reference` is the slow loop over samples used as the test oracle.
"""

from __future__ import annotations

import torch


def _check_samples(sigmas: torch.Tensor, deltas: torch.Tensor) -> None:
    if sigmas.ndim != 2 or sigmas.shape != deltas.shape:
        raise ValueError(
            f"sigmas and deltas must both be (R, S), got {tuple(sigmas.shape)} and {tuple(deltas.shape)}"
        )


def render_weights(sigmas: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Compositing weights of samples along rays.

    Args:
        sigmas: (R, S) non-negative densities, 1/metres.
        deltas: (R, S) segment lengths, metres (0 for padding samples).

    Returns:
        weights: (R, S) ``T_i * alpha_i``; their sum over S is the accumulated opacity.
        transmittance: (R, S) ``T_i``, the light reaching sample i (1 at the first sample).
    """
    _check_samples(sigmas, deltas)
    optical_depth = sigmas * deltas
    alphas = 1.0 - torch.exp(-optical_depth)
    # exclusive cumulative sum: T_i = exp(-sum_{j<i} sigma_j delta_j)
    cumulative = torch.cumsum(optical_depth, dim=1)
    exclusive = torch.cat([torch.zeros_like(cumulative[:, :1]), cumulative[:, :-1]], dim=1)
    transmittance = torch.exp(-exclusive)
    return transmittance * alphas, transmittance


def render_weights_reference(sigmas: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow, obvious loop over samples computing the same as :func:`render_weights`."""
    _check_samples(sigmas, deltas)
    num_rays, num_samples = sigmas.shape
    weights = torch.zeros_like(sigmas)
    transmittance = torch.zeros_like(sigmas)
    for r in range(num_rays):
        light = torch.ones((), dtype=sigmas.dtype, device=sigmas.device)
        for i in range(num_samples):
            alpha = 1.0 - torch.exp(-sigmas[r, i] * deltas[r, i])
            transmittance[r, i] = light
            weights[r, i] = light * alpha
            light = light * (1.0 - alpha)
    return weights, transmittance


def composite(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Weighted sum of per-sample values along each ray.

    Args:
        weights: (R, S) from :func:`render_weights`.
        values: (R, S, C) per-sample values (colours, depths, ...).

    Returns:
        (R, C) ``sum_i w_i v_i``.
    """
    if weights.ndim != 2 or values.ndim != 3 or values.shape[:2] != weights.shape:
        raise ValueError(f"weights must be (R, S) and values (R, S, C), got {tuple(weights.shape)} and {tuple(values.shape)}")
    return torch.einsum("rs,rsc->rc", weights, values)


def distortion_loss(weights: torch.Tensor, t: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Mip-NeRF 360's distortion loss per ray: small when a ray's weight sits in one short stretch.

    For samples at distances t_i (metres, non-decreasing along each ray) standing for
    segments of length delta_i::

        L = sum_{i,j} w_i w_j |t_i - t_j| + 1/3 sum_i w_i^2 delta_i

    computed in O(S) from the running sums ``W_i = sum_{j<i} w_j`` and
    ``M_i = sum_{j<i} w_j t_j``: the double sum is ``2 sum_i w_i (t_i W_i - M_i)``. Metres.

    Args:
        weights: (R, S) compositing weights.
        t: (R, S) sample distances, metres, non-decreasing along each ray.
        deltas: (R, S) segment lengths, metres.

    Returns:
        (R,) the loss of each ray, metres.
    """
    if weights.ndim != 2 or t.shape != weights.shape or deltas.shape != weights.shape:
        raise ValueError(f"weights, t and deltas must all be (R, S), got {tuple(weights.shape)}, "
                         f"{tuple(t.shape)}, {tuple(deltas.shape)}")
    weight_before = torch.cumsum(weights, dim=1) - weights
    moment_before = torch.cumsum(weights * t, dim=1) - weights * t
    spread = 2.0 * (weights * (t * weight_before - moment_before)).sum(dim=1)
    return spread + (weights**2 * deltas).sum(dim=1) / 3.0


def distortion_loss_reference(weights: torch.Tensor, t: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Slow, obvious double sum of :func:`distortion_loss` (the test oracle)."""
    pairwise = (weights[:, :, None] * weights[:, None, :] * (t[:, :, None] - t[:, None, :]).abs()).sum(dim=(1, 2))
    return pairwise + (weights**2 * deltas).sum(dim=1) / 3.0
