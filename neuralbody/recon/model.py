"""Pixel-aligned implicit functions: PIFu and the multi-view, multi-scale implicit function (seed 002).

For a world point ``x`` (metres) and a cropped view ``v`` (:mod:`neuralbody.recon.views`):

    (u_v, z_v) = project_v(x)                    pixels of the crop, camera z (distortion included)
    f_v = concat over scales s of  bilinear(F_v^s, (2 (u_v + 0.5) / S - 1))   zeros outside the crop
    e_v = MLP_view([f_v, (z_v - z_v(c)) / DEPTH_SCALE])                       c: the person's centre
    g   = mean_v e_v                  (fusion "mean": PIFu, which averages views this way)
        | [mean_v e_v, var_v e_v]     (fusion "mean_var": the seed's model fuses views; the variance
                                       says whether they agree)
    occupancy logit = MLP_decoder(g)                    or, with a body prior (``body_scales``),
                    = MLP_decoder([g, b(x)])            b(x): (K,) features of the point against the posed
                                                        body (:mod:`neuralbody.recon.body_prior`, PaMIR's idea)

``F_v^s`` are the encoder's feature maps (:class:`~neuralbody.recon.encoder.StackedHourglass`):
PIFu reads only the last stack's ("s4"); the multi-scale model also the input crop itself ("s1":
the colour and mask at the point's pixel, whose agreement across views marks the surface), the
fine stem ("s2", local detail) and the hourglass's coarsest level ("s32" for depth 3: the whole
person at once). The depth term is PIFu's: where along the ray the point is, relative to the
person's centre.
MLP layers are 1x1 convolutions' equivalent (Linear on the last axis) with LeakyReLU.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuralbody.data.projection import project
from neuralbody.recon.encoder import StackedHourglass
from neuralbody.recon.views import ViewInputs

DEPTH_SCALE = 1.0  # metres: relative depths are divided by this
FUSIONS = ("mean", "mean_var")


@dataclasses.dataclass(frozen=True)
class ReconModelConfig:
    """Architecture of a pixel-aligned implicit function.

    Attributes:
        kind: a label ("pifu", "mvms", ...).
        input_size: crop side S, pixels (divisible by 4 * 2^depth).
        channels: encoder channels C.
        stacks: hourglasses.
        depth: levels of each hourglass.
        scales: feature maps read at each point, among "s1" (the input crop itself), "s2", "s4" and
            "s<4 * 2^depth>".
        fusion: "mean" or "mean_var" over views.
        view_mlp: hidden widths of the per-view MLP (its last width is the embedding size).
        decoder_mlp: hidden widths of the decoder.
        body_scales: length scales (metres) of the body-prior features the decoder also reads
            (:func:`neuralbody.recon.body_prior.body_features`); empty: no body prior.
    """

    kind: str = "mvms"
    input_size: int = 128
    channels: int = 48
    stacks: int = 2
    depth: int = 3
    scales: tuple[str, ...] = ("s2", "s4", "s32")
    fusion: str = "mean_var"
    view_mlp: tuple[int, ...] = (64, 64)
    decoder_mlp: tuple[int, ...] = (64, 32)
    body_scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        names = ("s1", "s2", "s4", f"s{4 * 2**self.depth}")
        if not self.scales or any(s not in names for s in self.scales):
            raise ValueError(f"ReconModelConfig: scales must be among {names}, got {self.scales}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"ReconModelConfig: fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.input_size % (4 * 2**self.depth):
            raise ValueError(f"ReconModelConfig: input_size must be divisible by {4 * 2**self.depth}, got {self.input_size}")
        if not self.view_mlp or not self.decoder_mlp:
            raise ValueError("ReconModelConfig: view_mlp and decoder_mlp need at least one width each")
        if any(s <= 0 for s in self.body_scales):
            raise ValueError(f"ReconModelConfig: body_scales must be positive metres, got {self.body_scales}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ReconModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model options {sorted(unknown)}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)


PRESETS = {
    "pifu": ReconModelConfig(kind="pifu", scales=("s4",), fusion="mean"),
    "mvms": ReconModelConfig(kind="mvms", scales=("s1", "s2", "s4", "s32")),
    "mvms-1scale": ReconModelConfig(kind="mvms-1scale", scales=("s4",)),
    "mvms-body": ReconModelConfig(kind="mvms-body", scales=("s1", "s2", "s4", "s32"), body_scales=(0.02, 0.1)),
}
"""PIFu, the multi-view multi-scale model, its single-scale ablation, and the same with a body prior
(not the seed's model: PaMIR's body conditioning added to it)."""


def crop_grid(uv: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 2) pixels of an S x S crop -> ``grid_sample`` coordinates (-1, -1 the top-left corner, align_corners=False)."""
    return (2.0 * uv + 1.0) / size - 1.0


def sample_maps(maps: list[torch.Tensor], grid: torch.Tensor) -> torch.Tensor:
    """Bilinear features at crop positions: maps M x (P, C_m, h_m, w_m), grid (P, N, 2) -> (P, N, sum C_m) (zeros outside)."""
    samples = [F.grid_sample(m, grid[:, :, None, :], mode="bilinear", padding_mode="zeros", align_corners=False)
               for m in maps]  # fmt: skip
    return torch.cat(samples, dim=1)[..., 0].transpose(1, 2)


def relative_depth(points: torch.Tensor, centre: torch.Tensor, views: ViewInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop pixels (B, V, N, 2) of points (B, N, 3) and their camera z minus the centre's (B, V, N), metres.

    centre: (B, 3) world metres; views: K, R, T, D with leading dims (B, V).
    """
    uv, depth = project(points[:, None], views.K, views.R, views.T, views.D)
    _, centre_depth = project(centre[:, None, None, :], views.K, views.R, views.T, views.D)
    return uv, depth - centre_depth


def fuse(embeddings: torch.Tensor, fusion: str) -> torch.Tensor:
    """(B, V, N, E) per-view embeddings -> (B, N, E) mean, or (B, N, 2E) mean and (biased) variance over V."""
    mean = embeddings.mean(dim=1)
    if fusion == "mean":
        return mean
    return torch.cat([mean, (embeddings - mean[:, None]).square().mean(dim=1)], dim=-1)


def _mlp(widths: list[int], last_activation: bool) -> nn.Sequential:
    layers = []
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < len(widths) - 2 or last_activation:
            layers.append(nn.LeakyReLU(0.1))
    return nn.Sequential(*layers)


class PixelAlignedOccupancy(nn.Module):
    """Occupancy of world points from calibrated views of a person (see the module docstring)."""

    def __init__(self, config: ReconModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = StackedHourglass(config.channels, config.stacks, config.depth)
        channels = dict(self.encoder.channels, s1=self.encoder.in_channels)
        feature_size = sum(channels[s] for s in config.scales)
        self.view_mlp = _mlp([feature_size + 1, *config.view_mlp], last_activation=True)
        fused = config.view_mlp[-1] * (2 if config.fusion == "mean_var" else 1)
        self.decoder = _mlp([fused + len(config.body_scales), *config.decoder_mlp, 1], last_activation=False)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (B, V, 4, S, S) -> the chosen feature maps, each (B * V, C_s, h_s, w_s)."""
        if images.ndim != 5 or images.shape[-1] != self.config.input_size or images.shape[-2] != self.config.input_size:
            raise ValueError(f"PixelAlignedOccupancy.encode: images must be (B, V, 4, {self.config.input_size}, "
                             f"{self.config.input_size}), got {tuple(images.shape)}")  # fmt: skip
        flat = images.flatten(0, 1)
        maps = dict(self.encoder(flat), s1=flat)
        return [maps[s] for s in self.config.scales]

    @property
    def uses_body(self) -> bool:
        """Whether :meth:`query` needs the body-prior features."""
        return bool(self.config.body_scales)

    def query(self, maps: list[torch.Tensor], views: ViewInputs, centre: torch.Tensor, points: torch.Tensor,
              body: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Occupancy logits (B, N) of points (B, N, 3) world metres.

        Args:
            maps: from :meth:`encode` of ``views.images``.
            views: cropped cameras with leading dims (B, V).
            centre: (B, 3) the person's centre, world metres.
            points: (B, N, 3) world metres.
            body: (B, N, K) body-prior features of the points (K = ``len(config.body_scales)``); only
                and always for a model with a body prior.
        """
        if points.ndim != 3 or points.shape[-1] != 3 or centre.shape != (points.shape[0], 3):
            raise ValueError(f"PixelAlignedOccupancy.query: points must be (B, N, 3) and centre (B, 3), "
                             f"got {tuple(points.shape)} and {tuple(centre.shape)}")  # fmt: skip
        expected = (*points.shape[:2], len(self.config.body_scales))
        if self.uses_body != (body is not None) or (body is not None and tuple(body.shape) != expected):
            got = None if body is None else tuple(body.shape)
            raise ValueError(f"PixelAlignedOccupancy.query: a {self.config.kind} model needs body features of shape "
                             f"{expected if self.uses_body else None}, got {got}")  # fmt: skip
        batch, count = points.shape[:2]
        uv, depth = relative_depth(points, centre, views)  # (B, V, N, 2), (B, V, N)
        num_views = uv.shape[1]
        features = sample_maps(maps, crop_grid(uv, self.config.input_size).flatten(0, 1))  # (B V, N, C)
        inputs = torch.cat([features, (depth / DEPTH_SCALE).reshape(batch * num_views, count, 1)], dim=-1)
        embeddings = self.view_mlp(inputs).reshape(batch, num_views, count, -1)
        fused = fuse(embeddings, self.config.fusion)
        if body is not None:
            fused = torch.cat([fused, body.to(fused.dtype)], dim=-1)
        return self.decoder(fused)[..., 0]

    def forward(self, views: ViewInputs, centre: torch.Tensor, points: torch.Tensor,
                body: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Occupancy logits (B, N): :meth:`encode` then :meth:`query` (``body``: (B, N, K), see there)."""
        return self.query(self.encode(views.images), views, centre, points, body)


def stack_views(items: list[ViewInputs]) -> ViewInputs:
    """A batch (leading dims (B, V)) of B :class:`ViewInputs` with the same number of views V."""
    if len({item.images.shape for item in items}) != 1:
        raise ValueError("stack_views: every item must have the same number of views and crop size")
    return ViewInputs(*(torch.stack([getattr(item, f.name) for item in items]) for f in dataclasses.fields(ViewInputs)))
