"""Exact inference-time folds of Neural Body's decoder: the same numbers with fewer products.

Without gradients the weights are constants, so linear maps that follow one another, or that
follow a linear interpolation, can be composed once per frame instead of per sample.

**Codes and the first density layer.** The density MLP's first layer sees the codes of all
levels at a point, each a trilinear interpolation (sparse volumes, strides s = 1, 2, 4, ...;
:mod:`neuralbody.models.sparse_grid`)::

    z(p) = W_1 [c_1(p), c_2(p), ...] + b_1

Inside one cell of the finest level (integer corners, position p in finest-voxel units) every
coarser level's interpolation is multilinear too (a finest cell lies inside one cell of each
coarser level, whose corners sit at multiples of s), and a multilinear function equals the
trilinear interpolation of its values at the cell's corners. So with ``Z[c] = z(c)`` at the
finest-level corners c (zeros of inactive voxels included in z, and the bias carried by the
corner weights that sum to one)::

    z(p) = sum_{b in {0,1}^3} w_b(p) Z[floor(p) + b]

exactly, wherever all eight corners of p's cell are stored. :func:`fuse_first_layer` stores
Z at the corners within ``dilation`` voxels of the frame's active finest voxels (the posed
body; not at all when that would exceed a memory budget, e.g. the faithful configuration's
5 mm voxels and 256-wide layer), :func:`fused_first_layer` reads it: one lookup of the layer's output in place of one
lookup per level plus the layer's product. Points whose cell misses a stored corner are
reported, and the caller decodes them the usual way.

**The colour chain.** :func:`fold_colour_chain`: ``view_fc([latent_fc([feature_fc(h), a]),
rest])`` has no non-linearity between its three layers, so for the frame's appearance code a
it is one map ``W_h h + W_rest rest + b``.
"""

from __future__ import annotations

import torch

from neuralbody.models.inference_mlp import linear_act
from neuralbody.models.occupancy import dilate_cells
from neuralbody.models.sparse_conv import SparseVolume
from neuralbody.models.sparse_grid import cell_corner_rows, gather_codes, trilinear_weights, weighted_row_sum
from neuralbody.workers import map_in_threads


def fuse_first_layer(
    levels: list[SparseVolume],
    active_coords: torch.Tensor,
    first_layer: torch.nn.Linear,
    *,
    dilation: int,
    max_bytes: int = 256 << 20,
    chunk_points: int = 16384,
    workers: int = 1,
) -> SparseVolume | None:
    """The first density layer's output ``Z`` at the finest-level corners near the body.

    Args:
        levels: the code volumes, in the order their features are concatenated.
        active_coords: (N, 3) int64 active voxels of the finest level (finest-voxel units).
        first_layer: maps the concatenated codes (sum of the levels' channels) to its width W.
        dilation: corners within this many voxels (max-norm) of an active voxel are stored.
        max_bytes: None is returned (nothing fused) when ``Z`` would take more memory than this.
        chunk_points: corners decoded at a time (bounds the memory of their codes).
        workers: CPU threads decoding chunks at once (:mod:`neuralbody.workers`).

    Returns:
        A stride-1 :class:`SparseVolume` of the corners with features (M, W), or None.
    """
    if active_coords.ndim != 2 or active_coords.shape[1] != 3:
        raise ValueError(f"active_coords must be (N, 3), got {tuple(active_coords.shape)}")
    if dilation < 0:
        raise ValueError(f"dilation must be >= 0, got {dilation}")
    channels = sum(level.features.shape[1] for level in levels)
    if first_layer.in_features != channels:
        raise ValueError(f"first_layer takes {first_layer.in_features} channels, the levels hold {channels}")
    low = active_coords.min(dim=0).values - dilation
    shape = active_coords.max(dim=0).values - low + dilation + 1
    grid = torch.zeros(tuple(int(n) for n in shape), dtype=torch.bool, device=active_coords.device)
    cells = active_coords - low
    grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    corners = torch.nonzero(dilate_cells(grid, dilation)) + low  # row-major: sorted keys
    dtype = levels[0].features.dtype
    if corners.shape[0] * first_layer.out_features * torch.finfo(dtype).bits // 8 > max_bytes:
        return None
    fused = torch.empty(corners.shape[0], first_layer.out_features, dtype=dtype, device=corners.device)

    def decode(start: int) -> None:  # each thread fills its own rows of ``fused``
        positions = corners[start : start + chunk_points].to(dtype)
        codes = gather_codes(levels, positions)
        fused[start : start + chunk_points] = linear_act(codes, first_layer.weight, first_layer.bias, "none")

    map_in_threads(decode, list(range(0, corners.shape[0], chunk_points)), workers)
    return SparseVolume(corners, fused, 1)


def fused_first_layer(fused: SparseVolume, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first layer's output at points from the fused corners.

    Args:
        fused: from :func:`fuse_first_layer`.
        positions: (M, 3) points in finest-voxel units.

    Returns:
        values (M, W), the layer's output at every point whose eight cell corners are all
        stored, and the rows ``missing`` (J,) int64 of the other points, whose values are
        left unspecified (finite) for the caller to compute the usual way and write in.
    """
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must be (M, 3), got {tuple(positions.shape)}")
    base = torch.floor(positions)
    rows = cell_corner_rows(fused, base.long())  # (M, 8), N where a corner is not stored
    num_stored = fused.coords.shape[0]
    missing = torch.nonzero((rows >= num_stored).any(dim=1)).squeeze(1)
    if missing.numel():
        rows = rows.clamp_max(num_stored - 1)  # any stored row: those points are recomputed
    weights = trilinear_weights((positions - base).to(fused.features.dtype))
    return weighted_row_sum(fused.features, rows, weights), missing


def fold_colour_chain(
    view_fc: torch.nn.Linear,
    latent_fc: torch.nn.Linear,
    feature_fc: torch.nn.Linear,
    appearance: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``view_fc([latent_fc([feature_fc(h), a]), rest])`` as ``h W_h^T + rest W_rest^T + b``.

    With F = ``feature_fc.out_features``, V = view_fc's weight and L = latent_fc's::

        W_h = V[:, :F] L[:, :F] W_feature
        b   = V[:, :F] (L[:, :F] b_feature + L[:, F:] a + b_L) + b_V
        W_rest = V[:, F:]

    Args:
        appearance: (A,) the frame's appearance code a.

    Returns:
        W_h (C, H), W_rest (C, R) and b (C,), C = ``view_fc.out_features``.
    """
    width = feature_fc.out_features
    if appearance.shape != (latent_fc.in_features - width,):
        raise ValueError(f"appearance must be ({latent_fc.in_features - width},), got {tuple(appearance.shape)}")
    view = view_fc.weight[:, :width]
    latent = latent_fc.weight[:, :width]
    weight_hidden = view @ latent @ feature_fc.weight
    inner = latent @ feature_fc.bias + latent_fc.weight[:, width:] @ appearance + latent_fc.bias
    return weight_hidden, view_fc.weight[:, width:], view @ inner + view_fc.bias
