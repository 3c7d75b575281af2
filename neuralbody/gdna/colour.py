"""The colour (texture) network ``C(x, z_colour, f) -> rgb``: the albedo of a canonical surface point.

gDNA has no colour; this is the texture network its users ask for, built like the detail network
(:mod:`neuralbody.gdna.detail`): it reads the canonical point, the scan's colour latent
``z_colour`` (auto-decoded like the others, :mod:`neuralbody.gdna.latents`) and the coarse
network's feature ``f`` at the point (which carries ``z_shape`` and ``beta``,
:mod:`neuralbody.gdna.coarse`)::

    rgb = sigmoid(MLP([gamma(x), z_colour, f]))

``gamma`` the positional encoding; the output is the unshaded albedo in ``[0, 1]``. Colour lives
in canonical space, so a posed point's colour is the colour at its canonical correspondence
(found by forward skinning, :mod:`neuralbody.gdna.correspondences`) and a person keeps their
colours in every pose. Trained by an L1 loss against the scans' vertex colours at surface points
(:func:`colour_loss`). Canonical points in metres.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.encoding import encoded_size, positional_encoding


@dataclasses.dataclass(frozen=True)
class ColourOptions:
    """Size of the colour network.

    Attributes:
        freqs: positional-encoding frequencies of the point.
        hidden: width of the hidden layers.
        layers: hidden layers (at least 1).
        latent: width of ``z_colour``.
        feature: width of the coarse feature ``f``.
    """

    freqs: int = 6
    hidden: int = 64
    layers: int = 3
    latent: int = 16
    feature: int = 64

    def __post_init__(self) -> None:
        if min(self.hidden, self.layers, self.latent, self.feature) < 1 or self.freqs < 0:
            raise ValueError(f"ColourOptions: hidden, layers, latent, feature >= 1 and freqs >= 0; got {self}")


class ColourNetwork(torch.nn.Module):
    """``C(x, z_colour, f) -> rgb`` (module docstring)."""

    def __init__(self, options: ColourOptions = ColourOptions()) -> None:
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
        """(N, 3) albedo in [0, 1].

        Args:
            points: (N, 3) canonical points, metres.
            latent: (N, L) or (L,) colour latents ``z_colour``.
            features: (N, F) coarse features at the points.
        """
        count, options = points.shape[0], self.options
        if points.ndim != 2 or points.shape[1] != 3 or features.shape != (count, options.feature):
            raise ValueError(f"ColourNetwork: points (N, 3) and features (N, {options.feature}), got "
                             f"{tuple(points.shape)}, {tuple(features.shape)}")
        if latent.shape == (options.latent,):
            latent = latent[None].expand(count, -1)
        if latent.shape != (count, options.latent):
            raise ValueError(f"ColourNetwork: latent must be ({options.latent},) or ({count}, {options.latent}), "
                             f"got {tuple(latent.shape)}")
        return torch.sigmoid(self.mlp(torch.cat([positional_encoding(points, options.freqs), latent, features], dim=1)))


def colour_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |rgb - rgb'|`` (L1, per channel) of predicted and target colours (N, 3) in [0, 1]."""
    if predicted.ndim != 2 or predicted.shape[1] != 3 or target.shape != predicted.shape:
        raise ValueError(f"colour_loss: predicted and target must be (N, 3), got {tuple(predicted.shape)}, "
                         f"{tuple(target.shape)}")
    return (predicted - target).abs().mean()
