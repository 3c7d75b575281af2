"""One frame of the canonical avatar as a decoder: density and colour at any world point.

Made by :meth:`CanonicalAvatar.prepare_frame <neuralbody.models.canonical_avatar.CanonicalAvatar.prepare_frame>`
(``compile_frame`` is the default: the same field without gradients). Per point ``x`` (world,
metres)::

    x_body      = R^T (x - Th)                                  (RigidDeformer)
    decoded     = x_body in the occupancy of the posed vertices
    x_c^k, v^k  = canonical candidates, valid flags             (ForwardSkinningDeformer, K starts)
    sigma       = max over valid k of sigma_c(x_c^k)            (0 without a valid candidate)
    k*          = the candidate that gives it
    n           = R normalize(A(x_c^k*) n_c(x_c^k*))            (A: the blended rotation-and-scale)
    rgb         = min(albedo(x_c^k*) * shading(n), 1)

Gradients reach the canonical networks and, when the weight grid is trained, the weight grid
and the bone transforms through the candidates' implicit gradients (the hash grid reads its
points without gradient; the surface prior passes the gradient to the point).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from neuralbody.models.base import DensityQuery, FrameField, check_points, kept_rows
from neuralbody.models.deformer import RigidDeformer
from neuralbody.models.occupancy import OccupancyGrid, points_occupied
from neuralbody.models.skinning_deformer import ForwardSkinningDeformer

if TYPE_CHECKING:
    from neuralbody.models.canonical_avatar import CanonicalAvatar


@dataclasses.dataclass
class AvatarDensity(DensityQuery):
    """:class:`DensityQuery` of an avatar field.

    Attributes:
        keep: (K,) rows of the points with a valid canonical candidate (the only ones decoded).
        canonical: (K, 3) their chosen candidate, canonical, metres.
        features: (K, F) colour features there.
        normals: (K, 3) the surface prior's normal there (canonical, not normalised).
    """

    keep: torch.Tensor
    canonical: torch.Tensor
    features: torch.Tensor
    normals: torch.Tensor

    def subset(self, slots: torch.Tensor) -> "AvatarDensity":
        """The kept points ``slots`` (J,) (indices into ``keep``) only."""
        return AvatarDensity(self.sigma, self.points, self.keep[slots], self.canonical[slots], self.features[slots],
                             self.normals[slots])


@dataclasses.dataclass
class AvatarField(FrameField):
    """A frame of the canonical avatar (see the module docstring).

    Attributes:
        model: the module whose weights decode (not copied).
        frame_index: the frame (no per-frame codes: informational).
        box_min, box_max: (3,) the posed vertices' padded box, world, metres.
        body_frame: world to body frame.
        deformer: body frame to canonical candidates (the frame's bone transforms).
        occupancy: cells near the posed vertices, body frame.
    """

    model: "CanonicalAvatar"
    frame_index: int
    box_min: torch.Tensor
    box_max: torch.Tensor
    body_frame: RigidDeformer
    deformer: ForwardSkinningDeformer
    occupancy: OccupancyGrid

    def occupied(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) bool: points (N, 3), world, metres, in the occupancy of the posed vertices."""
        return points_occupied(self.occupancy, self.body_frame.to_body(points))

    def query(self, points: torch.Tensor, viewdirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density (N,) 1/metres and colour (N, 3) at points (N, 3) world, metres (viewdirs (N, 3) unused:
        the avatar's colour does not depend on the view)."""
        check_points(points, viewdirs)
        density = self.density(points)
        rgb = points.new_zeros(points.shape[0], 3)
        if density.keep.numel():
            rgb = rgb.index_put((density.keep,), self._colour(density))
        return density.sigma, rgb

    def density(self, points: torch.Tensor) -> AvatarDensity:
        """Density at points (N, 3) world, metres: the largest over the valid canonical candidates."""
        check_points(points)
        model = self.model
        points_body = self.body_frame.to_body(points)
        rows = torch.nonzero(points_occupied(self.occupancy, points_body)).squeeze(1)
        sigma_all = points.new_zeros(points.shape[0])
        if rows.numel():
            found = self.deformer.correspondences(points_body[rows])
            valid = found.valid
            flat = torch.nonzero(valid.reshape(-1)).squeeze(1)
        if rows.numel() == 0 or flat.numel() == 0:
            empty = points.new_zeros(0, 3)
            anchor = 0.0 * sum(p.sum() for p in model.density_mlp[2].parameters())  # keeps backward() legal
            return AvatarDensity(sigma_all + anchor, points, rows[:0], empty, points.new_zeros(0, model.config.feature_dim),
                                 empty)
        candidates = found.points.reshape(-1, 3)[flat]
        sigma_c, features, normals = model.canonical(candidates)
        table = torch.full(valid.shape, -1.0, dtype=sigma_c.dtype, device=sigma_c.device)
        table = table.reshape(-1).index_put((flat,), sigma_c).reshape(valid.shape)
        sigma, best = table.max(dim=1)  # (R,): invalid candidates hold -1 < any density
        has = valid.any(dim=1)
        chosen = torch.nonzero(has).squeeze(1)
        # the chosen candidate's place among the valid ones
        slot = torch.cumsum(valid.reshape(-1).long(), 0).reshape(valid.shape) - 1
        picked = slot[chosen, best[chosen]]
        sigma_all = sigma_all.index_put((rows[chosen],), sigma[chosen])
        return AvatarDensity(sigma_all, points, rows[chosen], candidates[picked], features[picked], normals[picked])

    def colour(self, density: AvatarDensity, rows: torch.Tensor, viewdirs: torch.Tensor) -> torch.Tensor:
        """Colour (J, 3) of the points ``rows`` (J,) of a :meth:`density` (viewdirs (J, 3) unused).

        Points without a valid candidate (zero density) get black.
        """
        if rows.ndim != 1 or viewdirs.shape != (rows.shape[0], 3):
            raise ValueError(f"rows must be (J,) and viewdirs (J, 3), got {tuple(rows.shape)}, {tuple(viewdirs.shape)}")
        found, slots = kept_rows(density.keep, density.sigma.shape[0], rows)
        rgb = viewdirs.new_zeros(rows.shape[0], 3)
        if found.numel():
            rgb[found] = self._colour(density.subset(slots))
        return rgb

    def world_normals(self, canonical: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        """(K, 3) unit world normals of canonical normals (K, 3) at canonical points (K, 3), turned by the
        blended skinning rotation and the global rotation."""
        blend, _ = self.deformer.field.blended(canonical)
        turned = (blend[:, :, :3] @ normals[:, :, None])[:, :, 0]
        return F.normalize(turned, dim=1, eps=1e-12) @ self.body_frame.rotation.T

    def _colour(self, density: AvatarDensity) -> torch.Tensor:
        """(K, 3) colour of the K kept points of ``density``."""
        model = self.model
        shade = model.shading(self.world_normals(density.canonical, density.normals))
        return (model.albedo(density.features) * shade).clamp_max(1.0)
