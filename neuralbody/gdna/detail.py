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

from neuralbody.models.encoding import encoded_size, positional_encoding


@dataclasses.dataclass(frozen=True)
class DetailOptions:
    """Size of the detail network.

    Attributes:
        freqs: positional-encoding frequencies of the point.
        hidden: width of the hidden layers.
        layers: hidden layers (at least 1).
        latent: width of ``z_detail``.
        feature: width of the coarse feature ``f``.
    """

    freqs: int = 6
    hidden: int = 64
    layers: int = 3
    latent: int = 16
    feature: int = 64

    def __post_init__(self) -> None:
        if min(self.hidden, self.layers, self.latent, self.feature) < 1 or self.freqs < 0:
            raise ValueError(f"DetailOptions: hidden, layers, latent, feature >= 1 and freqs >= 0; got {self}")


class DetailNormals(torch.nn.Module):
    """``N(x, z_detail, f) -> n`` (module docstring)."""

    def __init__(self, options: DetailOptions = DetailOptions()) -> None:
        super().__init__()
        self.options = options
        width = encoded_size(3, options.freqs) + options.latent + options.feature
        layers: list[torch.nn.Module] = []
        for _ in range(options.layers):
            layers += [torch.nn.Linear(width, options.hidden), torch.nn.ReLU()]
            width = options.hidden
        layers.append(torch.nn.Linear(width, 3))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, points: torch.Tensor, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(N, 3) unit canonical normals.

        Args:
            points: (N, 3) canonical points, metres.
            latent: (N, L) or (L,) detail latents ``z_detail``.
            features: (N, F) coarse features at the points.
        """
        count, options = points.shape[0], self.options
        if points.ndim != 2 or points.shape[1] != 3 or features.shape != (count, options.feature):
            raise ValueError(f"DetailNormals: points (N, 3) and features (N, {options.feature}), got "
                             f"{tuple(points.shape)}, {tuple(features.shape)}")
        if latent.shape == (options.latent,):
            latent = latent[None].expand(count, -1)
        if latent.shape != (count, options.latent):
            raise ValueError(f"DetailNormals: latent must be ({options.latent},) or ({count}, {options.latent}), "
                             f"got {tuple(latent.shape)}")
        raw = self.mlp(torch.cat([positional_encoding(points, options.freqs), latent, features], dim=1))
        fallback = torch.tensor([0.0, 0.0, 1.0], dtype=raw.dtype, device=raw.device)
        length = raw.norm(dim=1, keepdim=True)
        return torch.where(length > 1e-12, raw / length.clamp_min(1e-12), fallback)
