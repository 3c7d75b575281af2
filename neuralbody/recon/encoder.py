"""A small stacked-hourglass image encoder (PIFu's image filter, scaled down for the CPU).

Input (B, 4, S, S): RGB with a black background, and the mask. Layers (C = ``channels``):

    stem:  conv 7x7 stride 2 (4 -> C/4), GroupNorm, ReLU, ConvBlock(C/4 -> C/2)   -> features "s2" (C/2, S/2)
           average pool 2, ConvBlock(C/2 -> C)                                     (C, S/4)
    stack k = 1..K: hourglass of ``depth`` levels (pool 2 on the way down, bilinear upsampling
           and a skip on the way up; PIFu's first version upsampled to the nearest pixel, whose
           blocks showed as terraces on the surfaces), ConvBlock, 1x1 conv + GroupNorm + ReLU       -> features "s4" (C, S/4)
           (the last stack's); between stacks the input of the next is
           ``x + conv1x1(features)``, as in PIFu
           the last hourglass's coarsest level                                      -> features "s{4 * 2^depth}"

A ConvBlock (PIFu's, after Bulat and Tzimiropoulos) concatenates three 3x3 convolutions of
``out/2, out/4, out/4`` channels applied in sequence, each after GroupNorm and ReLU, and adds the
input (through a 1x1 convolution when the channel count changes). GroupNorm keeps training
independent of the batch (and leaves no running statistics to synchronise across ranks).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ConvBlock(nn.Module):
    """(B, in, H, W) -> (B, out, H, W); see the module docstring."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half, quarter = out_channels // 2, out_channels - out_channels // 2 - out_channels // 4
        widths = (half, out_channels // 4, quarter)
        self.norms = nn.ModuleList([_norm(in_channels), _norm(widths[0]), _norm(widths[1])])
        self.convs = nn.ModuleList([
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.Conv2d(widths[0], widths[1], 3, padding=1, bias=False),
            nn.Conv2d(widths[1], widths[2], 3, padding=1, bias=False),
        ])  # fmt: skip
        self.skip = None if in_channels == out_channels else nn.Sequential(
            _norm(in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1, bias=False))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, y = [], x
        for norm, conv in zip(self.norms, self.convs):
            y = conv(F.relu(norm(y)))
            outputs.append(y)
        return torch.cat(outputs, dim=1) + (x if self.skip is None else self.skip(x))


class Hourglass(nn.Module):
    """(B, C, H, W) -> ((B, C, H, W), (B, C, H / 2^depth, W / 2^depth) the coarsest level's features)."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.skip = ConvBlock(channels, channels)
        self.down = ConvBlock(channels, channels)
        self.inner = Hourglass(channels, depth - 1) if depth > 1 else ConvBlock(channels, channels)
        self.up = ConvBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.down(F.avg_pool2d(x, 2))
        if isinstance(self.inner, Hourglass):
            low, coarsest = self.inner(low)
        else:
            low = coarsest = self.inner(low)
        up = F.interpolate(self.up(low), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.skip(x) + up, coarsest


class StackedHourglass(nn.Module):
    """Image -> named feature maps (see the module docstring).

    Args:
        channels: C, feature channels (multiple of 4).
        stacks: K hourglasses.
        depth: levels of each hourglass (the input side S must be divisible by 4 * 2^depth).
        in_channels: image channels (4: RGB and mask).
    """

    def __init__(self, channels: int = 48, stacks: int = 2, depth: int = 3, in_channels: int = 4) -> None:
        super().__init__()
        if channels % 4 or channels < 8 or stacks < 1 or depth < 1:
            raise ValueError(f"StackedHourglass: channels must be a multiple of 4 (>= 8), stacks and depth >= 1, "
                             f"got {channels}, {stacks}, {depth}")  # fmt: skip
        self.depth, self.in_channels = depth, in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels // 4, 7, stride=2, padding=3), _norm(channels // 4),
                                  nn.ReLU(), ConvBlock(channels // 4, channels // 2))  # fmt: skip
        self.entry = ConvBlock(channels // 2, channels)
        self.hourglasses = nn.ModuleList([Hourglass(channels, depth) for _ in range(stacks)])
        self.heads = nn.ModuleList([
            nn.Sequential(ConvBlock(channels, channels), nn.Conv2d(channels, channels, 1), _norm(channels), nn.ReLU())
            for _ in range(stacks)
        ])  # fmt: skip
        self.merges = nn.ModuleList([nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1)])
        self.channels = {"s2": channels // 2, "s4": channels, f"s{4 * 2**depth}": channels}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (B, in_channels, S, S) -> {"s2": (B, C/2, S/2, S/2), "s4": (B, C, S/4, S/4), "s<4*2^depth>": coarsest}."""
        multiple = 4 * 2**self.depth
        if images.ndim != 4 or images.shape[-1] % multiple or images.shape[-2] % multiple:
            raise ValueError(f"StackedHourglass: images must be (B, C, S, S) with S divisible by {multiple}, "
                             f"got {tuple(images.shape)}")  # fmt: skip
        fine = self.stem(images)
        x = self.entry(F.avg_pool2d(fine, 2))
        for k, (hourglass, head) in enumerate(zip(self.hourglasses, self.heads)):
            y, coarsest = hourglass(x)
            features = head(y)
            if k < len(self.merges):
                x = x + self.merges[k](features)
        return {"s2": fine, "s4": features, f"s{multiple}": coarsest}
