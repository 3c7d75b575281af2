"""Trilinear interpolation of features stored at the active voxels of a sparse volume.

A voxel with integer coordinates ``c`` at a level of stride s sits at position ``s * c`` in
units of finest voxels. A query at ``p`` (finest-voxel units) has level coordinates
``q = p / s``, lower corner ``c0 = floor(q)``, fraction ``f = q - c0`` and::

    value(p) = sum_{b in {0,1}^3} prod_k (f_k if b_k else 1 - f_k) * x[c0 + b]

where inactive corners contribute zero (as a dense grid of zeros outside the active set
would). The eight corner rows come from a dense row index over the volume's bounding box
(:func:`~neuralbody.models.sparse_conv.dense_row_index`: one int32 per cell, built once per
volume and kept in its cache; the volumes are small at 1 cm) with a single gather, or, for
volumes whose box exceeds ``MAX_DENSE_CELLS``, by binary search on the sorted voxel keys
(:func:`~neuralbody.models.sparse_conv.lookup_rows`). The rows are combined by :class:`WeightedRowSum`: ``embedding_bag`` (weighted sum) forward and an
``index_add`` backward (half the time of ``embedding_bag``'s sorting backward on CPU).

:func:`trilinear_dense_reference` does the same with ``F.grid_sample`` on a dense grid: the
test oracle.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from neuralbody.models.sparse_conv import SparseVolume, corner_rows, dense_grid, dense_row_index  # noqa: F401

CORNERS = tuple(itertools.product((0, 1), repeat=3))


class WeightedRowSum(torch.autograd.Function):
    """``out[m] = sum_j weights[m, j] * table[rows[m, j]]`` with the gradient to ``table`` only.

    table: (N, C); rows: (M, J) int64 or int32 in [0, N); weights: (M, J) constant -> (M, C).
    Backward: ``grad_table = index_add over rows of weights[m, j] * grad_out[m]``.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows, weights)
        ctx.num_rows = table.shape[0]
        return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        rows, weights = ctx.saved_tensors
        contributions = (weights[:, :, None] * grad_out[:, None, :]).reshape(-1, grad_out.shape[1])
        grad_table = grad_out.new_zeros(ctx.num_rows, grad_out.shape[1]).index_add_(0, rows.reshape(-1), contributions)
        return grad_table, None, None


def weighted_row_sum(table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(M, C) weighted sums of rows of table (N, C) at rows (M, J) with weights (M, J).

    Uses :class:`WeightedRowSum` unless the weights need a gradient (then ``embedding_bag``).
    """
    if rows.ndim != 2 or weights.shape != rows.shape or table.ndim != 2:
        raise ValueError(f"table must be (N, C), rows and weights (M, J); got {tuple(table.shape)}, "
                         f"{tuple(rows.shape)}, {tuple(weights.shape)}")
    if weights.requires_grad:
        return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")
    return WeightedRowSum.apply(table, rows, weights)


def trilinear_weights(frac: torch.Tensor) -> torch.Tensor:
    """(M, 3) fractions in [0, 1] -> (M, 8) corner weights ``prod_k (f_k if b_k else 1 - f_k)``, ``CORNERS`` order."""
    columns = frac.T  # (3, M): products of whole rows of points vectorise where (M, 2, 2, 2) broadcasts do not
    w = torch.stack([1 - columns, columns], dim=1)  # (3, 2, M): axis, bit, point
    xy = (w[0][:, None, :] * w[1][None, :, :]).reshape(4, -1)  # (4, M), corners (bx, by)
    return (xy[:, None, :] * w[2][None, :, :]).reshape(8, -1).T.contiguous()  # CORNERS order


def cell_corner_rows(volume: SparseVolume, base: torch.Tensor) -> torch.Tensor:
    """Rows (M, 8) of the corners ``base + b`` (``CORNERS`` order) of cells with lower corners base (M, 3).

    Same result as :func:`corner_rows` on the eight corners (N where inactive); with a dense row
    index, a cell whose corners all lie in the index's box costs one flat offset per corner.
    """
    corners = torch.tensor(CORNERS, dtype=torch.long, device=base.device)
    index = dense_row_index(volume)
    if index is None:
        return corner_rows(volume, base[:, None, :] + corners[None])
    missing = volume.coords.shape[0]
    cells = base - index.low
    shape = index.shape
    interior = ((cells >= 0) & (cells < shape - 1)).all(dim=1)  # all 8 corners in the box
    border = ~interior & ((cells >= -1) & (cells < shape)).all(dim=1)  # some corners in the box
    offsets = (corners[:, 0] * shape[1] + corners[:, 1]) * shape[2] + corners[:, 2]
    if bool(interior.all()):  # the common case: one gather, no scatter
        flat = (cells[:, 0] * shape[1] + cells[:, 1]) * shape[2] + cells[:, 2]
        return index.rows[flat[:, None] + offsets[None]].long()
    rows = torch.full((base.shape[0], 8), missing, dtype=torch.long, device=base.device)
    ids = torch.nonzero(interior).squeeze(1)
    if ids.numel():
        c = cells[ids]
        flat = (c[:, 0] * shape[1] + c[:, 1]) * shape[2] + c[:, 2]
        rows[ids] = index.rows[flat[:, None] + offsets[None]].long()
    ids = torch.nonzero(border).squeeze(1)
    if ids.numel():
        rows[ids] = corner_rows(volume, base[ids][:, None, :] + corners[None])
    return rows


def trilinear_lookup(volume: SparseVolume, points: torch.Tensor) -> torch.Tensor:
    """Features of a sparse volume at points.

    Args:
        volume: active coordinates, features (N, C) and stride s.
        points: (M, 3) positions in units of finest voxels (voxel c of the finest level at c).

    Returns:
        (M, C) trilinearly interpolated features, zero where no corner is active.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (M, 3), got {tuple(points.shape)}")
    q = points / volume.stride
    base = torch.floor(q)
    weights = trilinear_weights((q - base).to(volume.features.dtype))  # (M, 8)
    rows = cell_corner_rows(volume, base.long())  # (M, 8)
    padded = torch.cat([volume.features, volume.features.new_zeros(1, volume.features.shape[1])], dim=0)
    return weighted_row_sum(padded, rows, weights)


def gather_codes(levels: list[SparseVolume], positions: torch.Tensor) -> torch.Tensor:
    """Codes of several volumes at the same points, concatenated in the order of ``levels``.

    Args:
        levels: volumes of any strides over one finest grid.
        positions: (M, 3) points in finest-voxel units.

    Returns:
        (M, C) with C the sum of the levels' channels.
    """
    return torch.cat([trilinear_lookup(level, positions) for level in levels], dim=1)


def trilinear_dense_reference(volume: SparseVolume, points: torch.Tensor) -> torch.Tensor:
    """Slow oracle: the same lookup with ``F.grid_sample`` (align_corners=True) on a dense grid.

    Requires non-negative coordinates. points: (M, 3) finest-voxel units -> (M, C).
    """
    shape = tuple(int(s) + 2 for s in volume.coords.max(dim=0).values)
    grid = dense_grid(volume.coords, volume.features, shape)[None]  # (1, C, X, Y, Z)
    q = points / volume.stride
    size = torch.tensor(shape, dtype=q.dtype, device=q.device)
    normalized = q / (size - 1) * 2 - 1  # (M, 3) in x, y, z order of the grid's dims X, Y, Z
    # grid_sample's last dim is (W, H, D) = (Z, Y, X)
    sample = normalized.flip(-1).reshape(1, -1, 1, 1, 3).to(grid.dtype)
    out = F.grid_sample(grid, sample, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(grid.shape[1], -1).T
