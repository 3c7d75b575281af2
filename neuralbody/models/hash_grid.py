"""Multi-resolution hash encoding of 3D points (Müller et al., Instant-NGP, 2022).

Level l has cells of ``cell_sizes[l]`` metres and a table ``T_l`` of ``2^table_log2`` rows of
``F`` learnable features. A point ``x`` (metres) has level coordinates ``q = x / cell``, lower
corner ``c0 = floor(q)``, fraction ``f = q - c0``, and::

    h_l(x) = sum_{b in {0,1}^3} prod_k (f_k if b_k else 1 - f_k) * T_l[hash(c0 + b)]
    hash(c) = (c_x * 1  xor  c_y * 2654435761  xor  c_z * 805459861)  mod 2^table_log2

The encoding is the concatenation over levels, (M, L * F). Distinct cells may share a row
(hash collisions); the finer levels learn to disambiguate, as in Instant-NGP. Fine levels
store detail that an MLP over a positional encoding learns slowly (a texture, here).

:func:`hash_encoding_reference` loops over points and corners in Python: the test oracle.
"""

from __future__ import annotations

import math

import torch

from neuralbody.models.sparse_grid import CORNERS, trilinear_weights, weighted_row_sum

PRIMES = (1, 2654435761, 805459861)


def hash_cells(cells: torch.Tensor, table_log2: int) -> torch.Tensor:
    """Rows of integer cell coordinates: (..., 3) int64 -> (...) int64 in [0, 2^table_log2)."""
    if cells.shape[-1] != 3:
        raise ValueError(f"cells must be (..., 3), got {tuple(cells.shape)}")
    cells = cells.long()
    mixed = (cells[..., 0] * PRIMES[0]) ^ (cells[..., 1] * PRIMES[1]) ^ (cells[..., 2] * PRIMES[2])
    return mixed & ((1 << table_log2) - 1)


def _corner_rows_weights(points: torch.Tensor, cells: torch.Tensor, table_log2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, L, 8) int32 table rows (within each level's table) and trilinear weights of the corners
    around points (M, 3), metres, at the L levels of cell edges ``cells`` (L,), metres.

    The hash is a xor of per-axis terms and ``(a ^ b ^ c) & m = (a & m) ^ (b & m) ^ (c & m)``, so
    each axis's two masked terms are computed once per point and level (int64, then int32: they
    fit), and the eight corners are their xors, laid out corner-major so every operation runs
    over whole rows of points.
    """
    q = (points[:, None, :] / cells[None, :, None]).reshape(-1, 3)  # (M L, 3)
    base = torch.floor(q)
    weights = trilinear_weights(q - base)  # (M L, 8)
    mask = (1 << table_log2) - 1
    lower = base.long().T  # (3, M L)
    terms = [torch.stack([(lower[k] * PRIMES[k]) & mask, ((lower[k] + 1) * PRIMES[k]) & mask]).int()
             for k in range(3)]  # (2, M L) each: bit, point-level
    rows = terms[0][:, None, None, :] ^ terms[1][None, :, None, :] ^ terms[2][None, None, :, :]  # (2, 2, 2, M L)
    shape = (points.shape[0], cells.shape[0], 8)
    return rows.reshape(8, -1).T.reshape(shape), weights.reshape(shape)


class HashGrid(torch.nn.Module):
    """Learnable multi-resolution hash tables (state: the tables); see the module docstring.

    Args:
        cell_sizes: cell edge of each level, metres (coarse to fine).
        table_log2: log2 of the rows per level.
        features: features per row (F).
        init_scale: the tables start uniform in [-init_scale, init_scale].
    """

    def __init__(self, cell_sizes: tuple[float, ...], *, table_log2: int = 17, features: int = 4,
                 init_scale: float = 1e-4) -> None:
        super().__init__()
        if not cell_sizes or any(not (c > 0 and math.isfinite(c)) for c in cell_sizes):
            raise ValueError(f"cell_sizes must be positive metres, got {cell_sizes}")
        if not 4 <= table_log2 <= 24 or features < 1:
            raise ValueError(f"table_log2 must lie in [4, 24] and features >= 1, got {table_log2}, {features}")
        self.cell_sizes = tuple(float(c) for c in cell_sizes)
        self.table_log2 = int(table_log2)
        rows = len(self.cell_sizes) << self.table_log2
        self.tables = torch.nn.Parameter(torch.empty(rows, features).uniform_(-init_scale, init_scale))

    @property
    def out_features(self) -> int:
        return len(self.cell_sizes) * self.tables.shape[1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points: (M, 3) metres -> (M, L * F) features."""
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be (M, 3), got {tuple(points.shape)}")
        cells = torch.tensor(self.cell_sizes, dtype=points.dtype, device=points.device)
        rows, weights = _corner_rows_weights(points.detach(), cells, self.table_log2)  # (M, L, 8) each
        levels = torch.arange(len(self.cell_sizes), dtype=torch.int32, device=points.device) << self.table_log2
        rows = rows + levels[None, :, None]  # one table holds the levels one after another
        features = weighted_row_sum(self.tables, rows.reshape(-1, 8), weights.reshape(-1, 8).to(self.tables.dtype))
        return features.reshape(points.shape[0], -1)  # (M, L * F), level-major


def hash_encoding_reference(grid: HashGrid, points: torch.Tensor) -> torch.Tensor:
    """Slow oracle of :meth:`HashGrid.forward`: explicit loops over points, levels and corners."""
    size = 1 << grid.table_log2
    out = []
    for point in points.tolist():
        row = []
        for level, cell in enumerate(grid.cell_sizes):
            q = [value / cell for value in point]
            base = [math.floor(value) for value in q]
            acc = torch.zeros(grid.tables.shape[1], dtype=grid.tables.dtype)
            for corner in CORNERS:
                c = [base[k] + corner[k] for k in range(3)]
                key = ((c[0] * PRIMES[0]) ^ (c[1] * PRIMES[1]) ^ (c[2] * PRIMES[2])) % size
                weight = 1.0
                for k in range(3):
                    f = q[k] - base[k]
                    weight *= f if corner[k] else 1 - f
                acc = acc + weight * grid.tables[level * size + key]
            row.append(acc)
        out.append(torch.cat(row))
    return torch.stack(out)
