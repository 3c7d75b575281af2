"""Deformers: posed points to canonical points, with validity.

A model that keeps the person in a canonical space (a body frame, a reference pose, a T-pose)
asks a deformer where a posed point comes from. A point may have several canonical candidates
(forward skinning finds one per initial guess, SNARF's correspondence search) or none (the
point is far from the body); so the answer is K candidates per point with a validity mask::

    to_canonical(x_posed) -> points (N, K, 3), valid (N, K)

The implementations here are the ones Neural Body uses:

* :class:`RigidDeformer`: world to the body frame, ``x_body = R^T (x_world - Th)`` (K = 1,
  always valid).
* :class:`CarryDeformer`: the body frame to a reference pose by carrying each point with its
  nearest vertices (see :func:`carried_points`; K = 1, valid where vertices are near).
"""

from __future__ import annotations

import abc
import dataclasses

import torch

from neuralbody.models.sparse_conv import SparseVolume
from neuralbody.models.sparse_grid import trilinear_lookup


@dataclasses.dataclass
class CanonicalPoints:
    """Canonical candidates of N posed points.

    Attributes:
        points: (N, K, 3) candidates, canonical coordinates, metres.
        valid: (N, K) bool, candidates that are real correspondences.
    """

    points: torch.Tensor
    valid: torch.Tensor


class Deformer(abc.ABC):
    """Maps posed points to canonical candidates (see the module docstring)."""

    @abc.abstractmethod
    def to_canonical(self, points: torch.Tensor) -> CanonicalPoints:
        """Canonical candidates of points (N, 3) in the posed space, metres."""


@dataclasses.dataclass
class RigidDeformer(Deformer):
    """World to body frame: ``x_body = R^T (x_world - t)``; directions ``d_body = R^T d_world``.

    Attributes:
        rotation: (3, 3) body-to-world rotation R.
        translation: (3,) body-to-world translation t, metres.
    """

    rotation: torch.Tensor
    translation: torch.Tensor

    def to_body(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) body-frame points of world points (N, 3), metres."""
        return (points - self.translation) @ self.rotation

    def directions_to_body(self, directions: torch.Tensor) -> torch.Tensor:
        """(N, 3) body-frame directions of world directions (N, 3)."""
        return directions @ self.rotation

    def to_canonical(self, points: torch.Tensor) -> CanonicalPoints:
        body = self.to_body(points)
        return CanonicalPoints(body[:, None, :], torch.ones(body.shape[0], 1, dtype=torch.bool, device=body.device))


def carried_points(pairs: SparseVolume, positions: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points carried from a posed body to a reference pose by their nearby vertices.

    Per active voxel the mean posed position ``p`` and mean reference position ``r`` of its
    vertices are stored; a point ``x`` gets the trilinear, weight-normalised interpolations
    ``P``, ``R`` of both and::

        x_reference = R + (x - P)

    exact where the map from posed to reference positions is a translation, first-order
    accurate where it rotates (``|x - P|`` is a few millimetres at the surface).

    Args:
        pairs: volume whose (M, 7) features are p (3), r (3) (metres) and 1.
        positions: (N, 3) the points in voxel units of that volume.
        points: (N, 3) the same points, metres, in the frame of ``p``.

    Returns:
        carried: (N, 3) ``R + (x - P)`` where some corner is active, else ``points``.
        valid: (N,) bool, whether some corner was active.
    """
    sums = trilinear_lookup(pairs, positions)  # (N, 7): weighted sums and the weight
    weight = sums[:, 6:7]
    found = weight > 1e-6
    safe = weight.clamp_min(1e-6)
    carried = sums[:, 3:6] / safe + (points - sums[:, 0:3] / safe)
    return torch.where(found, carried, points), found[:, 0]


@dataclasses.dataclass
class CarryDeformer(Deformer):
    """Body frame to a reference pose by :func:`carried_points` (invalid points stay where they are).

    Attributes:
        pairs: the (M, 7) volume of mean posed / reference positions per voxel (body frame).
        origin: (3,) body-frame position of voxel (0, 0, 0), metres.
        voxel_size: voxel edge, metres.
    """

    pairs: SparseVolume
    origin: torch.Tensor
    voxel_size: float

    def carry(self, points: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`carried_points` of body-frame points (N, 3); ``positions`` (N, 3) voxel units if known."""
        if positions is None:
            positions = (points - self.origin) / self.voxel_size
        return carried_points(self.pairs, positions, points)

    def to_canonical(self, points: torch.Tensor) -> CanonicalPoints:
        carried, valid = self.carry(points)
        return CanonicalPoints(carried[:, None, :], valid[:, None])
