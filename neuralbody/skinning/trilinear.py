"""Trilinear interpolation on a dense grid of nodes, with the spatial gradient.

A grid of ``X x Y x Z`` nodes holds C values per node; node ``(i, j, k)`` sits at
``origin + (i, j, k) * spacing``. A point ``x`` has node coordinates ``q = (x - origin) / spacing``,
lower corner ``c = floor(q)``, fraction ``f = q - c`` and::

    value(x) = sum_{b in {0,1}^3} prod_a (f_a if b_a else 1 - f_a) * values[c + b]

Points outside the grid take the value at the nearest point of the grid (the coordinates are
clamped), so the value is continuous everywhere and its gradient is zero outside.

:func:`trilinear_reference` does the same with ``F.grid_sample``: the test oracle.
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
import torch.nn.functional as F

CORNERS = tuple(itertools.product((0, 1), repeat=3))  # (bx, by, bz), z fastest


@dataclasses.dataclass
class TrilinearSample:
    """Interpolated values at N points.

    Attributes:
        values: (N, C) interpolated values.
        gradient: (N, C, 3) derivative of each value by the node coordinates ``q`` (divide by
            the spacing for metres); None when not asked for.
    """

    values: torch.Tensor
    gradient: torch.Tensor | None


def check_grid(values: torch.Tensor, where: str) -> None:
    """Raise ValueError unless values is (X, Y, Z, C) with at least two nodes along each axis."""
    if values.ndim != 4 or min(values.shape[:3]) < 2:
        raise ValueError(f"{where}: grid values must be (X, Y, Z, C) with X, Y, Z >= 2, got {tuple(values.shape)}")


def _axis_weights(fraction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis linear weights (3, 2, N) ``(1 - f, f)`` and their derivatives (3, 2, N) ``(-1, 1)``."""
    columns = fraction.T  # (3, N)
    weights = torch.stack([1 - columns, columns], dim=1)
    slopes = torch.stack([-torch.ones_like(columns), torch.ones_like(columns)], dim=1)
    return weights, slopes


def _corner_products(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(N, 8) products ``a[bx] b[by] c[bz]`` in ``CORNERS`` order of three (2, N) factors."""
    ab = (a[:, None, :] * b[None, :, :]).reshape(4, -1)
    return (ab[:, None, :] * c[None, :, :]).reshape(8, -1).T.contiguous()


def trilinear(values: torch.Tensor, coords: torch.Tensor, *, with_gradient: bool = False) -> TrilinearSample:
    """Trilinear interpolation of a dense grid at points given in node coordinates.

    Args:
        values: (X, Y, Z, C) node values; differentiable (the lookup is a gather).
        coords: (N, 3) node coordinates ``q`` of the points (any real values; clamped to the grid).
        with_gradient: also return d value / d q (computed in closed form, not by autograd).

    Returns:
        :class:`TrilinearSample`.
    """
    check_grid(values, "trilinear")
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"trilinear: coords must be (N, 3), got {tuple(coords.shape)}")
    size_x, size_y, size_z, channels = values.shape
    upper = torch.tensor([size_x - 1, size_y - 1, size_z - 1], dtype=coords.dtype, device=coords.device)
    clamped = torch.minimum(coords.clamp_min(0.0), upper)
    base = torch.minimum(torch.floor(clamped), upper - 1)
    fraction = (clamped - base).to(values.dtype)
    base = base.long()
    flat = (base[:, 0] * size_y + base[:, 1]) * size_z + base[:, 2]
    offsets = torch.tensor(
        [(bx * size_y + by) * size_z + bz for bx, by, bz in CORNERS], dtype=torch.long, device=coords.device
    )
    rows = flat[:, None] + offsets[None, :]  # (N, 8) corner rows of the flattened grid
    table = values.reshape(-1, channels)
    weights, slopes = _axis_weights(fraction)
    products = [_corner_products(weights[0], weights[1], weights[2])]
    if with_gradient:
        inside = ((coords >= 0) & (coords <= upper)).to(values.dtype).T  # (3, N): clamped axes have zero slope
        products += [
            _corner_products(slopes[0], weights[1], weights[2]) * inside[0, :, None],
            _corner_products(weights[0], slopes[1], weights[2]) * inside[1, :, None],
            _corner_products(weights[0], weights[1], slopes[2]) * inside[2, :, None],
        ]
    if not with_gradient:
        return TrilinearSample(F.embedding_bag(rows, table, per_sample_weights=products[0], mode="sum"), None)
    sums = F.embedding_bag(  # one weighted gather-and-sum for the value and the three slopes
        rows.repeat(4, 1), table, per_sample_weights=torch.cat(products), mode="sum"
    ).reshape(4, -1, channels)
    return TrilinearSample(sums[0], sums[1:].permute(1, 2, 0))


def trilinear_reference(values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Slow oracle for :func:`trilinear` values: ``F.grid_sample`` (border padding) in float64.

    Args:
        values: (X, Y, Z, C) node values.
        coords: (N, 3) node coordinates.

    Returns:
        (N, C) float64.
    """
    check_grid(values, "trilinear_reference")
    grid = values.detach().double().permute(3, 2, 1, 0)[None]  # (1, C, Z, Y, X): grid_sample's (D, H, W)
    upper = torch.tensor(values.shape[:3], dtype=torch.float64) - 1
    normalised = 2.0 * coords.detach().double() / upper - 1.0  # align_corners=True: -1, 1 at the end nodes
    sampled = F.grid_sample(grid, normalised[None, :, None, None, :], mode="bilinear", padding_mode="border",
                            align_corners=True)
    return sampled[0, :, :, 0, 0].T
