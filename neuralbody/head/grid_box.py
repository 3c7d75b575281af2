"""A dense grid of nodes over an axis-aligned box: the lattice of the head's learnable fields.

Node ``(i, j, k)`` sits at ``origin + (i, j, k) * spacing`` (metres); a point's node
coordinates are ``q = (x - origin) / spacing``, what :func:`neuralbody.skinning.trilinear.trilinear`
takes. The box is the face model's rest mesh padded by ``padding`` metres, with cubic voxels
of side ``voxel``.
"""

from __future__ import annotations

import dataclasses
import math

import torch


@dataclasses.dataclass(frozen=True)
class GridBox:
    """Node lattice of a box.

    Attributes:
        origin: (3,) first node, metres (tuple).
        spacing: node spacing, metres.
        shape: (X, Y, Z) node counts.
    """

    origin: tuple[float, float, float]
    spacing: float
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        if self.spacing <= 0 or min(self.shape) < 2:
            raise ValueError(f"GridBox: spacing must be > 0 and >= 2 nodes per axis, got {self.spacing}, {self.shape}")

    def coords(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) node coordinates of points (N, 3), metres."""
        return (points - torch.tensor(self.origin, dtype=points.dtype, device=points.device)) / self.spacing

    @property
    def box_max(self) -> tuple[float, float, float]:
        return tuple(o + (n - 1) * self.spacing for o, n in zip(self.origin, self.shape))

    def contains(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) bool, points (N, 3) inside the box."""
        low = torch.tensor(self.origin, dtype=points.dtype, device=points.device)
        high = torch.tensor(self.box_max, dtype=points.dtype, device=points.device)
        return ((points >= low) & (points <= high)).all(dim=1)


def box_around(vertices: torch.Tensor, voxel: float, padding: float = 0.02) -> GridBox:
    """The :class:`GridBox` of cubic voxels ``voxel`` (metres) around vertices (V, 3) padded by ``padding``."""
    if vertices.ndim != 2 or vertices.shape[1] != 3 or voxel <= 0:
        raise ValueError(f"box_around: vertices (V, 3) and voxel > 0 needed, got {tuple(vertices.shape)}, {voxel}")
    low = vertices.min(dim=0).values - padding
    high = vertices.max(dim=0).values + padding
    shape = tuple(max(2, math.ceil(float(h - l) / voxel) + 1) for l, h in zip(low, high))
    return GridBox(origin=tuple(float(v) for v in low), spacing=float(voxel), shape=shape)
