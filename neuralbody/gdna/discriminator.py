"""A small patch discriminator on normal maps, and the non-saturating GAN losses with an R1 penalty.

gDNA sharpens its detail network with an adversarial loss on rendered normal maps (an
unconditional discriminator, the logistic loss, a lazy R1 penalty). Here the discriminator is a
PatchGAN-style stack of ``layers`` strided 4 x 4 convolutions (stride 2, LeakyReLU 0.2; widths
``channels * 2^min(i, 2)``) and a 3 x 3 convolution to one logit per cell, so an input of
``H x W`` gives ``H / 2^layers x W / 2^layers`` logits, each judging a patch of the normal map.
Its input is ``(h m, m)``: the normal map's high-frequency part ``h`` (view frame) times the mask
and the mask itself, 4 channels; the real and the fake maps share their mask (the scan's pixels),
so only the normals tell them apart. The high-pass (:func:`high_pass`) is the map minus its
Gaussian blur of ``sigma`` pixels, blurred over the mask only (normalised convolution,
``h = n - G*(n m) / G*m``; ``sigma = 0``: ``h = n``, the raw normals). Through it the generator's
adversarial gradient has no low-frequency part: the discriminator judges the folds and creases, and
cannot pull a limb's overall orientation away from what the normal loss says (measured: without it,
arms' normals swing by tens of degrees).

With ``D`` the logits and ``w`` the share of each cell's footprint on the mask (average pooling),
cells with no foreground weigh nothing::

    L_G = sum_c w_c softplus(-D(fake)_c) / sum_c w_c                       (non-saturating)
    L_D = sum_c w_c [softplus(D(fake)_c) + softplus(-D(real)_c)] / sum_c w_c
          + (r1 / 2) mean_b |d sum_c D(real)_bc / d real_b|^2                (R1, Mescheder et al. 2018)
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

CHANNELS_IN = 4


@dataclasses.dataclass(frozen=True)
class DiscriminatorOptions:
    """``channels`` of the first convolution, ``layers`` strided convolutions."""

    channels: int = 32
    layers: int = 3

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 1:
            raise ValueError(f"DiscriminatorOptions: channels and layers >= 1, got {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class PatchDiscriminator(torch.nn.Module):
    """Logits (B, 1, H / 2^layers, W / 2^layers) of normal maps (B, 4, H, W) (module docstring)."""

    def __init__(self, options: DiscriminatorOptions = DiscriminatorOptions()) -> None:
        super().__init__()
        self.options = options
        layers, width = [], CHANNELS_IN
        for i in range(options.layers):
            out = options.channels * 2 ** min(i, 2)
            layers += [torch.nn.Conv2d(width, out, 4, stride=2, padding=1), torch.nn.LeakyReLU(0.2)]
            width = out
        layers.append(torch.nn.Conv2d(width, 1, 3, padding=1))
        self.net = torch.nn.Sequential(*layers)

    @property
    def stride(self) -> int:
        return 2 ** self.options.layers

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if maps.ndim != 4 or maps.shape[1] != CHANNELS_IN or maps.shape[2] % self.stride or maps.shape[3] % self.stride:
            raise ValueError(f"PatchDiscriminator: maps must be (B, {CHANNELS_IN}, H, W) with H and W multiples of "
                             f"{self.stride}, got {tuple(maps.shape)}")
        return self.net(maps)


def discriminator_input(normals: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W) input ``(n m, m)`` of normal maps (B, H, W, 3) and their masks (B, H, W) bool."""
    if normals.ndim != 4 or normals.shape[-1] != 3 or mask.shape != normals.shape[:3]:
        raise ValueError(f"discriminator_input: normals (B, H, W, 3) and mask (B, H, W), got {tuple(normals.shape)}, "
                         f"{tuple(mask.shape)}")
    m = mask.to(normals.dtype)[..., None]
    return torch.cat([normals * m, m], dim=-1).permute(0, 3, 1, 2).contiguous()


def high_pass(normals: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, H, W, 3) ``n - G*(n m) / G*m`` of normal maps (B, H, W, 3) with masks (B, H, W) bool, a Gaussian ``G`` of
    ``sigma`` pixels (truncated at 2 sigma); zero off the mask; ``sigma = 0``: the masked normals as they are."""
    if normals.ndim != 4 or normals.shape[-1] != 3 or mask.shape != normals.shape[:3] or sigma < 0:
        raise ValueError(f"high_pass: normals (B, H, W, 3), mask (B, H, W), sigma >= 0; got {tuple(normals.shape)}, "
                         f"{tuple(mask.shape)}, {sigma}")
    m = mask.to(normals.dtype)[:, None]
    if sigma == 0:
        return normals * m[:, 0, ..., None]
    radius = max(1, int(math.ceil(2.0 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=normals.dtype) / sigma) ** 2)
    taps = taps / taps.sum()

    def blur(x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), separable, zero outside the image
        c = x.shape[1]
        x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)
        return F.conv2d(x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)

    n = normals.permute(0, 3, 1, 2)
    low = blur(n * m) / blur(m).clamp_min(1e-6)
    return ((n - low) * m).permute(0, 2, 3, 1)


def cell_weights(maps: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, 1, H / stride, W / stride) share of each logit cell's footprint on the mask (channel 3 of ``maps`` (B, 4, H, W))."""
    return F.avg_pool2d(maps[:, 3:4], stride)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def generator_loss(discriminator: PatchDiscriminator, fake: torch.Tensor) -> torch.Tensor:
    """``L_G`` of fake maps (B, 4, H, W) (module docstring)."""
    logits = discriminator(fake)
    return _weighted_mean(F.softplus(-logits), cell_weights(fake, discriminator.stride))


def discriminator_loss(discriminator: PatchDiscriminator, real: torch.Tensor, fake: torch.Tensor,
                       r1: float) -> torch.Tensor:
    """``L_D`` of real and fake maps (B, 4, H, W) with the same masks, R1 weight ``r1`` (module docstring)."""
    if real.shape != fake.shape or r1 < 0:
        raise ValueError(f"discriminator_loss: real and fake of one shape, r1 >= 0; got {tuple(real.shape)}, "
                         f"{tuple(fake.shape)}, {r1}")
    weights = cell_weights(real, discriminator.stride)
    real = real.detach().requires_grad_(r1 > 0)
    real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
    loss = _weighted_mean(F.softplus(fake_logits) + F.softplus(-real_logits), weights)
    if r1 > 0:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        loss = loss + 0.5 * r1 * grad.pow(2).flatten(1).sum(dim=1).mean()
    return loss
