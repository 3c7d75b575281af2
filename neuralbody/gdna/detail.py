"""The detail network ``N(x, z_detail, f) -> n``: a unit surface normal in canonical space.

gDNA models fine detail (wrinkles, seams) as surface normals rather than geometry: a second
network reads the canonical point, the scan's detail latent ``z_detail`` and the coarse
network's feature ``f`` at the point (:mod:`neuralbody.gdna.coarse`), and returns the normal
there, which the coarse surface then wears (normal maps on the coarse mesh)::

    n = v / |v|,   v = MLP([gamma(x), z_detail, f])

with ``gamma`` the positional encoding (more frequencies than the coarse network: detail is
high-frequency). The output is normalised (a zero vector maps to a fixed unit vector).
Canonical points in metres; normals point out of the body.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.gdna.latent_mlp import LatentMLP, LatentMLPOptions


@dataclasses.dataclass(frozen=True)
class DetailOptions(LatentMLPOptions):
    """Size of the detail network (:class:`~neuralbody.gdna.latent_mlp.LatentMLPOptions`)."""


class DetailNormals(LatentMLP):
    """``N(x, z_detail, f) -> n`` (module docstring)."""

    def __init__(self, options: DetailOptions = DetailOptions()) -> None:
        super().__init__(options)

    def forward(self, points: torch.Tensor, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(N, 3) unit canonical normals.

        Args:
            points: (N, 3) canonical points, metres.
            latent: (N, L) or (L,) detail latents ``z_detail``.
            features: (N, F) coarse features at the points.
        """
        raw = self.raw(points, latent, features)
        fallback = torch.tensor([0.0, 0.0, 1.0], dtype=raw.dtype, device=raw.device)
        length = raw.norm(dim=1, keepdim=True)
        return torch.where(length > 1e-12, raw / length.clamp_min(1e-12), fallback)
