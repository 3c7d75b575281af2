"""Sparse 3D convolution in plain PyTorch (differentiable, CPU or CUDA), with a dense reference.

A sparse volume holds features at N active integer voxel coordinates ``c`` (N, 3). Voxels are
identified by a linear key ``key(c) = ((x + B) * S + (y + B)) * S + (z + B)`` (S = 2^20,
B = 2^19, so coordinates in [-B, B) are valid); coordinates are kept sorted by key, so the
row of any voxel is found with ``torch.searchsorted`` (:func:`lookup_rows`). Faster, a volume
whose bounding box holds at most ``MAX_DENSE_CELLS`` cells gets a dense row index (one int32
per cell, :func:`dense_row_index`, cached) and rows are then one gather (:func:`corner_rows`).

Convolutions use 3x3x3 kernels ``W[d]`` (d in {-1, 0, 1}^3, stored as (27, C_in, C_out) in
``itertools.product`` order) and follow ``torch.nn.functional.conv3d`` (cross-correlation):

* submanifold: ``y[c] = sum_d W[d]^T x[c + d] + b`` at the active set itself;
* strided (stride 2, padding 1): ``y[o] = sum_d W[d]^T x[2 o + d] + b`` at the output set
  ``unique(floor(c / 2))``,

where missing inputs count as zero. A neighbour map (N_out, 27) holds the input row of each
``(output, offset)`` or N_in for "missing"; the convolution is then one gather to
(N_out, 27 C_in), one matrix multiply, and autograd's scatter-add backward.

The dense reference (:func:`sparse_conv_dense_reference`) scatters the features into a dense
grid, runs ``conv3d`` and reads the outputs at the active set: the test oracle.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
import torch.nn.functional as F

KEY_SPAN = 1 << 20
KEY_OFFSET = 1 << 19
KERNEL_OFFSETS = tuple(itertools.product((-1, 0, 1), repeat=3))
MAX_DENSE_CELLS = 1 << 25  # dense row index: 128 MiB of int32 at most per volume


def voxel_keys(coords: torch.Tensor) -> torch.Tensor:
    """Linear keys of integer voxel coordinates. coords: (..., 3) int64 -> (...) int64."""
    shifted = coords.long() + KEY_OFFSET
    return (shifted[..., 0] * KEY_SPAN + shifted[..., 1]) * KEY_SPAN + shifted[..., 2]


def lookup_rows(sorted_keys: torch.Tensor, query_keys: torch.Tensor, *, missing: int) -> torch.Tensor:
    """Row of each query key in ``sorted_keys`` (M,) -> same shape as query_keys, ``missing`` if absent."""
    if sorted_keys.numel() == 0:
        return torch.full_like(query_keys, missing)
    rows = torch.searchsorted(sorted_keys, query_keys).clamp_max(sorted_keys.numel() - 1)
    found = sorted_keys[rows] == query_keys
    return torch.where(found, rows, torch.full_like(rows, missing))


def sort_coords(coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique coordinates sorted by key: (N, 3) -> coords (U, 3), inverse (N,) row of each input."""
    keys = voxel_keys(coords)
    unique_keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    rows = torch.empty_like(unique_keys)
    rows[inverse] = torch.arange(keys.numel(), device=keys.device)
    return coords[rows].long(), inverse


@dataclasses.dataclass
class SparseVolume:
    """Features at active voxels of one level.

    Attributes:
        coords: (N, 3) int64 voxel coordinates at this level, unique and sorted by key.
        features: (N, C) features.
        stride: size of one voxel of this level in voxels of the finest level.
        keys: (N,) sorted int64 keys of ``coords``.
        cache: neighbour maps computed for this active set, shared by the layers using it.
    """

    coords: torch.Tensor
    features: torch.Tensor
    stride: int = 1
    keys: torch.Tensor | None = None
    cache: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.coords.ndim != 2 or self.coords.shape[1] != 3:
            raise ValueError(f"coords must be (N, 3), got {tuple(self.coords.shape)}")
        if self.features.ndim != 2 or self.features.shape[0] != self.coords.shape[0]:
            raise ValueError(
                f"features must be (N, C) with N = {self.coords.shape[0]}, got {tuple(self.features.shape)}"
            )
        if self.keys is None:
            self.keys = voxel_keys(self.coords)

    def replace(self, features: torch.Tensor) -> "SparseVolume":
        """Same active set (and cached maps), new features (N, C')."""
        return SparseVolume(self.coords, features, self.stride, self.keys, self.cache)


@dataclasses.dataclass
class DenseRowIndex:
    """Row of every cell of a volume's bounding box.

    Attributes:
        low: (3,) int64 smallest active coordinate (cell (0, 0, 0) of the grid).
        shape: (3,) int64 grid size (X, Y, Z) in cells of the volume's level.
        rows: (X * Y * Z,) int32 row of the active voxel in each cell, row-major, or N (the
            number of active voxels) where the cell is inactive.
    """

    low: torch.Tensor
    shape: torch.Tensor
    rows: torch.Tensor


def dense_row_index(volume: SparseVolume) -> DenseRowIndex | None:
    """The volume's :class:`DenseRowIndex` (cached in ``volume.cache``); None if the box is too large."""
    if "dense_rows" in volume.cache:
        return volume.cache["dense_rows"]
    index = None
    num_active = volume.coords.shape[0]
    if num_active > 0:
        low = volume.coords.min(dim=0).values
        shape = volume.coords.max(dim=0).values - low + 1
        if int(shape.prod()) <= MAX_DENSE_CELLS:
            cells = volume.coords - low
            flat = (cells[:, 0] * shape[1] + cells[:, 1]) * shape[2] + cells[:, 2]
            rows = torch.full((int(shape.prod()),), num_active, dtype=torch.int32, device=volume.coords.device)
            rows[flat] = torch.arange(num_active, dtype=torch.int32, device=volume.coords.device)
            index = DenseRowIndex(low=low, shape=shape, rows=rows)
    volume.cache["dense_rows"] = index
    return index


def corner_rows(volume: SparseVolume, corner_coords: torch.Tensor) -> torch.Tensor:
    """Rows of integer coordinates (..., 3) at the volume's level -> (...) int64, N where inactive."""
    missing = volume.coords.shape[0]
    index = dense_row_index(volume)
    if index is None:
        return lookup_rows(volume.keys, voxel_keys(corner_coords), missing=missing)
    cells = corner_coords - index.low
    inside = ((cells >= 0) & (cells < index.shape)).all(dim=-1)
    flat = (cells[..., 0] * index.shape[1] + cells[..., 1]) * index.shape[2] + cells[..., 2]
    flat = torch.where(inside, flat, torch.zeros_like(flat))
    rows = index.rows[flat].long()
    return torch.where(inside, rows, torch.full_like(rows, missing))


def submanifold_neighbours(volume: SparseVolume) -> torch.Tensor:
    """(N, 27) input row of ``c + d`` for each active c and offset d; N where inactive. Cached."""
    if "subm" not in volume.cache:
        offsets = torch.tensor(KERNEL_OFFSETS, dtype=torch.long, device=volume.coords.device)
        volume.cache["subm"] = corner_rows(volume, volume.coords[:, None, :] + offsets[None, :, :])
    return volume.cache["subm"]


def downsampled_coords(coords: torch.Tensor) -> torch.Tensor:
    """Output active set of a stride-2 convolution: unique(floor(coords / 2)), sorted. (N, 3) -> (M, 3)."""
    coarse, _ = sort_coords(torch.div(coords, 2, rounding_mode="floor"))
    return coarse


def strided_neighbours(volume: SparseVolume, coords_out: torch.Tensor) -> torch.Tensor:
    """(M, 27) input row of ``2 o + d`` for each output o and offset d; N_in where inactive. Cached."""
    if "down" not in volume.cache:
        offsets = torch.tensor(KERNEL_OFFSETS, dtype=torch.long, device=volume.coords.device)
        volume.cache["down"] = corner_rows(volume, 2 * coords_out[:, None, :] + offsets[None, :, :])
    return volume.cache["down"]


def gather_conv(
    features: torch.Tensor, neighbours: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``y[o] = sum_k W[k]^T x[neighbours[o, k]] + b`` with row N of x meaning zero.

    Args:
        features: (N_in, C_in).
        neighbours: (N_out, K) int64 rows into features, N_in for missing.
        weight: (K, C_in, C_out).
        bias: (C_out,) or None.
    Returns:
        (N_out, C_out).
    """
    num_out, kernel = neighbours.shape
    if weight.shape[0] != kernel or weight.shape[1] != features.shape[1]:
        raise ValueError(f"weight {tuple(weight.shape)} does not match features {tuple(features.shape)} / K={kernel}")
    padded = torch.cat([features, features.new_zeros(1, features.shape[1])], dim=0)
    gathered = padded[neighbours.reshape(-1)].reshape(num_out, kernel * features.shape[1])
    out = gathered @ weight.reshape(kernel * features.shape[1], -1)
    return out + bias if bias is not None else out


def _init_weight(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    fan_in = weight.shape[0] * weight.shape[1]
    bound = 1.0 / math.sqrt(fan_in)
    torch.nn.init.uniform_(weight, -math.sqrt(3.0) * bound * math.sqrt(2.0), math.sqrt(3.0) * bound * math.sqrt(2.0))
    if bias is not None:
        torch.nn.init.zeros_(bias)


class SubmanifoldConv3d(torch.nn.Module):
    """3x3x3 submanifold sparse convolution: outputs only at the input's active voxels."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(27, in_channels, out_channels))
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias else None
        _init_weight(self.weight, self.bias)

    def forward(self, volume: SparseVolume) -> SparseVolume:
        out = gather_conv(volume.features, submanifold_neighbours(volume), self.weight, self.bias)
        return volume.replace(out)


class StridedConv3d(torch.nn.Module):
    """3x3x3 sparse convolution with stride 2, padding 1; outputs at unique(floor(c / 2))."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(27, in_channels, out_channels))
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias else None
        _init_weight(self.weight, self.bias)

    def forward(self, volume: SparseVolume) -> SparseVolume:
        if "down_coords" not in volume.cache:
            volume.cache["down_coords"] = downsampled_coords(volume.coords)
        coords_out = volume.cache["down_coords"]
        out = gather_conv(volume.features, strided_neighbours(volume, coords_out), self.weight, self.bias)
        if "child" not in volume.cache:
            volume.cache["child"] = SparseVolume(coords_out, out[:, :0], volume.stride * 2)
        return volume.cache["child"].replace(out)


def dense_grid(coords: torch.Tensor, features: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Scatter (N, C) features at (N, 3) non-negative coordinates into a (C, X, Y, Z) zero grid."""
    grid = features.new_zeros((features.shape[1], *shape))
    grid[:, coords[:, 0], coords[:, 1], coords[:, 2]] = features.T
    return grid


def sparse_conv_dense_reference(
    coords: torch.Tensor, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow dense oracle: the same convolution with ``F.conv3d`` on a dense grid.

    Args:
        coords: (N, 3) non-negative int64 active coordinates.
        features: (N, C_in).
        weight: (27, C_in, C_out) in :data:`KERNEL_OFFSETS` order.
        bias: (C_out,) or None.
        stride: 1 (submanifold) or 2 (strided, padding 1).

    Returns:
        coords_out: (M, 3) sorted output active set; features_out: (M, C_out).
    """
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    shape = tuple(int(s) + 2 for s in coords.max(dim=0).values)
    grid = dense_grid(coords, features, shape)[None]
    kernel = weight.reshape(3, 3, 3, weight.shape[1], weight.shape[2]).permute(4, 3, 0, 1, 2)
    out = F.conv3d(grid, kernel, bias, stride=stride, padding=1)[0]
    coords_out, _ = sort_coords(coords) if stride == 1 else (downsampled_coords(coords), None)
    return coords_out, out[:, coords_out[:, 0], coords_out[:, 1], coords_out[:, 2]].T
