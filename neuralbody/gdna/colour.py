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

from neuralbody.gdna.latent_mlp import LatentMLP, LatentMLPOptions


@dataclasses.dataclass(frozen=True)
class ColourOptions(LatentMLPOptions):
    """Size of the colour network (:class:`~neuralbody.gdna.latent_mlp.LatentMLPOptions`)."""


class ColourNetwork(LatentMLP):
    """``C(x, z_colour, f) -> rgb`` (module docstring)."""

    def __init__(self, options: ColourOptions = ColourOptions()) -> None:
        super().__init__(options)

    def forward(self, points: torch.Tensor, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(N, 3) albedo in [0, 1].

        Args:
            points: (N, 3) canonical points, metres.
            latent: (N, L) or (L,) colour latents ``z_colour``.
            features: (N, F) coarse features at the points.
        """
        return torch.sigmoid(self.raw(points, latent, features))


def colour_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |rgb - rgb'|`` (L1, per channel) of predicted and target colours (N, 3) in [0, 1]."""
    if predicted.ndim != 2 or predicted.shape[1] != 3 or target.shape != predicted.shape:
        raise ValueError(f"colour_loss: predicted and target must be (N, 3), got {tuple(predicted.shape)}, "
                         f"{tuple(target.shape)}")
    return (predicted - target).abs().mean()
