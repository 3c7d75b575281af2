"""Positional encoding of NeRF: ``gamma(x) = (x, sin(2^0 x), cos(2^0 x), ..., sin(2^{L-1} x), cos(2^{L-1} x))``.

For D input values and L frequencies the output has ``D (1 + 2 L)`` values (27 for view
directions with L = 4, 63 for points with L = 10). Frequencies are ``2^k`` radians per unit of
the input (points in metres, directions unit vectors).
"""

from __future__ import annotations

import torch


def encoded_size(num_inputs: int, num_freqs: int) -> int:
    """Width of :func:`positional_encoding` for ``num_inputs`` values and ``num_freqs`` frequencies."""
    return num_inputs * (1 + 2 * num_freqs)


def positional_encoding(values: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """values: (N, D) -> (N, D (1 + 2 L)), input first, then sin/cos per frequency band."""
    if values.ndim != 2:
        raise ValueError(f"values must be (N, D), got {tuple(values.shape)}")
    if num_freqs == 0:
        return values
    freqs = 2.0 ** torch.arange(num_freqs, dtype=values.dtype, device=values.device)
    scaled = values[:, None, :] * freqs[None, :, None]  # (N, L, D)
    bands = torch.stack([torch.sin(scaled), torch.cos(scaled)], dim=2)  # (N, L, 2, D)
    return torch.cat([values, bands.reshape(values.shape[0], -1)], dim=1)
