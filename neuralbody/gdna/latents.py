"""Per-scan latent codes learned by auto-decoding, their prior, and the distribution new people come from.

Auto-decoding (DeepSDF, gDNA): every training scan i owns a shape latent ``z_shape_i``, a
detail latent ``z_detail_i`` and, when the model has colour, a colour latent ``z_colour_i``,
free parameters optimised with the networks; there is no encoder. A Gaussian prior ``z ~ N(0, sigma^2 I)`` keeps them compact, its negative log
(up to a constant) added to the loss::

    L_prior = lambda * mean_i |z_i|^2

New people: a Gaussian fitted to the training scans' codes, each code the concatenation
``c = [z_shape, z_detail, beta, z_colour]`` (with the body shape, so that a new body and its
clothing are drawn together; ``z_colour`` empty without colour), mean ``mu`` and covariance
``Sigma + eps I`` (shrunk, as there are few scans for many dimensions); samples ``c = mu + L e``
with ``L L^T`` the covariance (``L`` lower-triangular) and ``e ~ N(0, I)``. Colour comes last and
its noise is drawn after the others', so the geometry ``[z_shape, z_detail, beta]`` of a draw is
the one a model without colour draws from the same seed (the top-left block of ``L`` is the
geometry's own Cholesky factor), and the colour follows the geometry through the covariance.
Body shapes drawn are clipped to the range seen in training.
"""

from __future__ import annotations

import dataclasses

import torch

INIT_STD = 0.01  # standard deviation of a new code (DeepSDF's choice)


class LatentCodes(torch.nn.Module):
    """Shape, detail and colour codes of ``count`` scans.

    Attributes:
        shape: (count, Ls) parameter, ``z_shape`` per scan.
        detail: (count, Ld) parameter, ``z_detail`` per scan.
        colour: (count, Lc) parameter, ``z_colour`` per scan, or None (``colour_width`` 0: no colour).
    """

    def __init__(self, count: int, shape_width: int, detail_width: int, seed: int = 0, colour_width: int = 0) -> None:
        super().__init__()
        if count < 1 or shape_width < 1 or detail_width < 1 or colour_width < 0:
            raise ValueError(f"LatentCodes: count and widths must be >= 1 (colour >= 0), got {count}, {shape_width}, "
                             f"{detail_width}, {colour_width}")
        generator = torch.Generator().manual_seed(seed)
        self.shape = torch.nn.Parameter(INIT_STD * torch.randn(count, shape_width, generator=generator))
        self.detail = torch.nn.Parameter(INIT_STD * torch.randn(count, detail_width, generator=generator))
        colour = INIT_STD * torch.randn(count, colour_width, generator=generator) if colour_width else None
        self.colour = None if colour is None else torch.nn.Parameter(colour)

    @property
    def colour_width(self) -> int:
        """Width of ``z_colour`` (0 without colour)."""
        return 0 if self.colour is None else self.colour.shape[1]


def prior_loss(codes: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight * mean_i |z_i|^2`` of codes (N, L) (the Gaussian prior's negative log, module docstring)."""
    if codes.ndim != 2:
        raise ValueError(f"prior_loss: codes must be (N, L), got {tuple(codes.shape)}")
    return weight * codes.square().sum(dim=1).mean()


@dataclasses.dataclass
class LatentDistribution:
    """A Gaussian over ``c = [z_shape, z_detail, beta, z_colour]`` fitted to the training scans.

    Attributes:
        mean: (D,) ``mu``.
        scale: (D, D) lower-triangular ``L``, ``L L^T`` the (shrunk) covariance.
        shape_width, detail_width: widths of ``z_shape`` and ``z_detail``.
        shapes_min, shapes_max: (S,) range of the training body shapes.
        colour_width: width of ``z_colour`` (0 without colour; beta is what lies between).
    """

    mean: torch.Tensor
    scale: torch.Tensor
    shape_width: int
    detail_width: int
    shapes_min: torch.Tensor
    shapes_max: torch.Tensor
    colour_width: int = 0

    def split(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z_shape (N, Ls), z_detail (N, Ld), z_colour (N, Lc), beta (N, S)) of codes (N, D), the body
        shapes clipped to the range (``z_colour`` (N, 0) without colour)."""
        a, b = self.shape_width, self.shape_width + self.detail_width
        c = codes.shape[1] - self.colour_width
        shapes = torch.maximum(torch.minimum(codes[:, b:c], self.shapes_max), self.shapes_min)
        return codes[:, :a], codes[:, a:b], codes[:, c:], shapes

    def sample(self, count: int, seed: int) -> torch.Tensor:
        """(count, D) codes drawn from the Gaussian, seeded (the geometry's noise first, module docstring)."""
        generator, geometry = torch.Generator().manual_seed(seed), self.mean.shape[0] - self.colour_width
        noise = torch.cat([torch.randn(count, geometry, generator=generator, dtype=self.mean.dtype),
                           torch.randn(count, self.colour_width, generator=generator, dtype=self.mean.dtype)], dim=1)
        return self.mean + noise @ self.scale.T


def fit_distribution(shape_codes: torch.Tensor, detail_codes: torch.Tensor, shapes: torch.Tensor,
                     shrink: float = 1e-4, colour_codes: torch.Tensor | None = None) -> LatentDistribution:
    """The Gaussian of the module docstring fitted to codes (N, Ls), (N, Ld), (N, Lc) or None, and body shapes (N, S).

    ``shrink`` is ``eps``, added to the covariance's diagonal (in the codes' units squared).
    """
    colour_codes = shape_codes.new_zeros(shape_codes.shape[0], 0) if colour_codes is None else colour_codes
    if not (shape_codes.ndim == detail_codes.ndim == shapes.ndim == colour_codes.ndim == 2) or not (
            shape_codes.shape[0] == detail_codes.shape[0] == shapes.shape[0] == colour_codes.shape[0] >= 1):
        raise ValueError(f"fit_distribution: codes (N, Ls), (N, Ld), (N, Lc), shapes (N, S) with N >= 1, got "
                         f"{tuple(shape_codes.shape)}, {tuple(detail_codes.shape)}, {tuple(colour_codes.shape)}, "
                         f"{tuple(shapes.shape)}")
    codes = torch.cat([shape_codes, detail_codes, shapes, colour_codes], dim=1).detach().double()
    mean = codes.mean(dim=0)
    centred = codes - mean
    covariance = centred.T @ centred / max(1, len(codes) - 1) + shrink * torch.eye(codes.shape[1], dtype=torch.float64)
    return LatentDistribution(mean.float(), torch.linalg.cholesky(covariance).float(), shape_codes.shape[1],
                              detail_codes.shape[1], shapes.min(dim=0).values.float(), shapes.max(dim=0).values.float(),
                              colour_codes.shape[1])
