"""The MLP shared by gDNA's per-point heads: ``v = MLP([gamma(x), z, f])``, a 3-vector per point.

The detail network (:mod:`neuralbody.gdna.detail`: ``v`` normalised, a surface normal) and the
colour network (:mod:`neuralbody.gdna.colour`: ``sigmoid(v)``, an albedo) read the same inputs:
a canonical point ``x`` (metres) through the positional encoding ``gamma``, the scan's latent
``z`` (``z_detail`` or ``z_colour``, auto-decoded, :mod:`neuralbody.gdna.latents`) and the coarse
network's feature ``f`` at the point (:mod:`neuralbody.gdna.coarse`). ``layers`` hidden ReLU
layers of width ``hidden``, then a linear layer to 3 values.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.encoding import encoded_size, positional_encoding


@dataclasses.dataclass(frozen=True)
class LatentMLPOptions:
    """Size of a per-point head.

    Attributes:
        freqs: positional-encoding frequencies of the point.
        hidden: width of the hidden layers.
        layers: hidden layers (at least 1).
        latent: width of the latent ``z``.
        feature: width of the coarse feature ``f``.
    """

    freqs: int = 6
    hidden: int = 64
    layers: int = 3
    latent: int = 16
    feature: int = 64

    def __post_init__(self) -> None:
        if min(self.hidden, self.layers, self.latent, self.feature) < 1 or self.freqs < 0:
            raise ValueError(f"{type(self).__name__}: hidden, layers, latent, feature >= 1 and freqs >= 0; "
                             f"got {self}")  # fmt: skip


class LatentMLP(torch.nn.Module):
    """``v = MLP([gamma(x), z, f])`` (module docstring); subclasses turn ``v`` into their output."""

    def __init__(self, options: LatentMLPOptions) -> None:
        super().__init__()
        self.options = options
        width = encoded_size(3, options.freqs) + options.latent + options.feature
        layers: list[torch.nn.Module] = []
        for _ in range(options.layers):
            layers += [torch.nn.Linear(width, options.hidden), torch.nn.ReLU()]
            width = options.hidden
        layers.append(torch.nn.Linear(width, 3))
        self.mlp = torch.nn.Sequential(*layers)

    def raw(self, points: torch.Tensor, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(N, 3) ``v`` at the points.

        Args:
            points: (N, 3) canonical points, metres.
            latent: (N, L) or (L,) latents ``z``.
            features: (N, F) coarse features at the points.
        """
        count, options, name = points.shape[0], self.options, type(self).__name__
        if points.ndim != 2 or points.shape[1] != 3 or features.shape != (count, options.feature):
            raise ValueError(f"{name}: points (N, 3) and features (N, {options.feature}), got "
                             f"{tuple(points.shape)}, {tuple(features.shape)}")  # fmt: skip
        if latent.shape == (options.latent,):
            latent = latent[None].expand(count, -1)
        if latent.shape != (count, options.latent):
            raise ValueError(f"{name}: latent must be ({options.latent},) or ({count}, {options.latent}), "
                             f"got {tuple(latent.shape)}")  # fmt: skip
        return self.mlp(torch.cat([positional_encoding(points, options.freqs), latent, features], dim=1))
