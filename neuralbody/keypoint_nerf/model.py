"""KeypointNeRF's radiance field: density and colour of world points from a few calibrated views.

For a point ``x`` (world, metres) and each input view ``v`` (a crop around the person,
:mod:`neuralbody.recon.views`):

    f_v = pixel-aligned features at x's projection: the crop's own RGB and mask ("s1") and the image
          encoder's maps ("s2", "s4"; :class:`~neuralbody.recon.encoder.StackedHourglass`)
    s_v = spatial encoding of x in view v: relative to the keypoints (KeypointNeRF) or global
          (pixelNeRF's camera coordinates); :mod:`neuralbody.keypoint_nerf.encoding`
    e_v = MLP_view([f_v, s_v])                                    per-view embedding (E values)
    g   = [mean_v e_v, var_v e_v]                                 pooled over views: order-free
    sigma = 20 softplus(MLP_density(g))                           1/metres (scaled: opaque in a few cm)
    b_v = MLP_blend([e_v, g]),  rgb = sum_v softmax_v(b_v) c_v    c_v: the crop's colour at x's pixel

Colour is a learned blend of the input views' colours (image-based rendering, as KeypointNeRF's
and IBRNet's colour heads do), so an unseen person's clothes keep their own pixels. A point
outside any input view's mask is empty (the views' visual hull; :meth:`KeypointNeRF.inside_hull`).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuralbody.data.projection import project
from neuralbody.keypoint_nerf.encoding import encoding_size, global_encoding, relative_keypoint_encoding
from neuralbody.keypoint_nerf.keypoints import KEYPOINT_NAMES
from neuralbody.recon.encoder import StackedHourglass
from neuralbody.recon.model import crop_grid, fuse, sample_maps
from neuralbody.recon.views import ViewInputs

ENCODINGS = ("relative", "global")
DENSITY_SCALE = 20.0  # 1/metres per unit of softplus: a body is opaque within a few centimetres from the start


@dataclasses.dataclass(frozen=True)
class KeypointNeRFConfig:
    """Architecture (saved in checkpoints).

    Attributes:
        encoding: "relative" (KeypointNeRF) or "global" (pixelNeRF-style baseline).
        frequencies: F of the positional encoding (4 relative, 6 global: pixelNeRF's).
        sigma: the relative encoding's distance weighting, metres.
        num_keypoints: K.
        input_size: crop side S, pixels (divisible by 4 * 2^depth).
        channels, stacks, depth: the image encoder's.
        view_mlp: hidden widths of the per-view MLP (the last is E).
        density_mlp, blend_mlp: hidden widths of the heads.
    """

    encoding: str = "relative"
    frequencies: int = 4
    sigma: float = 0.1
    num_keypoints: int = len(KEYPOINT_NAMES)
    input_size: int = 128
    channels: int = 32
    stacks: int = 1
    depth: int = 2
    view_mlp: tuple[int, ...] = (128, 64)
    density_mlp: tuple[int, ...] = (64,)
    blend_mlp: tuple[int, ...] = (32,)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        if self.input_size % (4 * 2**self.depth):
            raise ValueError(f"KeypointNeRFConfig: input_size must be divisible by {4 * 2**self.depth}, got {self.input_size}")
        if self.sigma <= 0 or self.frequencies < 0 or self.num_keypoints < 1 or not self.view_mlp:
            raise ValueError("KeypointNeRFConfig: sigma > 0, frequencies >= 0, num_keypoints >= 1 and a view MLP are needed")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "KeypointNeRFConfig":
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown KeypointNeRF options {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def preset(encoding: str) -> KeypointNeRFConfig:
    """The default architecture for an encoding (the global one with pixelNeRF's 6 frequencies)."""
    return KeypointNeRFConfig(encoding=encoding, frequencies=4 if encoding == "relative" else 6)


def _mlp(widths: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < len(widths) - 2 or last_activation:
            layers.append(nn.LeakyReLU(0.1))
    return nn.Sequential(*layers)


class KeypointNeRF(nn.Module):
    """The field of the module docstring; one model for everyone."""

    SCALES = ("s1", "s2", "s4")

    def __init__(self, config: KeypointNeRFConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = StackedHourglass(config.channels, config.stacks, config.depth)
        channels = dict(self.encoder.channels, s1=self.encoder.in_channels)
        spatial = encoding_size(config.encoding, num_keypoints=config.num_keypoints, frequencies=config.frequencies)
        embedding = config.view_mlp[-1]
        self.view_mlp = _mlp([sum(channels[s] for s in self.SCALES) + spatial, *config.view_mlp], last_activation=True)
        self.density_mlp = _mlp([2 * embedding, *config.density_mlp, 1], last_activation=False)
        self.blend_mlp = _mlp([3 * embedding, *config.blend_mlp, 1], last_activation=False)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (B, V, 4, S, S) -> feature maps ("s1", "s2", "s4"), each (B * V, C, h, w)."""
        size = self.config.input_size
        if images.ndim != 5 or images.shape[-3:] != (4, size, size):
            raise ValueError(f"KeypointNeRF.encode: images must be (B, V, 4, {size}, {size}), got {tuple(images.shape)}")
        flat = images.flatten(0, 1)
        maps = dict(self.encoder(flat), s1=flat)
        return [maps[s] for s in self.SCALES]

    def _pixels(self, views: ViewInputs, points: torch.Tensor) -> torch.Tensor:
        """grid_sample coordinates (B V, N, 2) of points (B, N, 3) in each crop."""
        uv, _ = project(points[:, None], views.K, views.R, views.T, views.D)  # (B, V, N, 2)
        return crop_grid(uv, self.config.input_size).flatten(0, 1)

    def inside_hull(self, views: ViewInputs, points: torch.Tensor) -> torch.Tensor:
        """(B, N) bool: points (B, N, 3) world metres whose projection lies in every view's mask."""
        masks = views.images[:, :, 3:4].flatten(0, 1)  # (B V, 1, S, S)
        inside = sample_maps([masks], self._pixels(views, points))[..., 0] >= 0.5  # (B V, N)
        return inside.reshape(points.shape[0], -1, points.shape[1]).all(dim=1)

    def spatial(self, views: ViewInputs, keypoints: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(B, V, N, D) the configured spatial encoding of points (B, N, 3) (keypoints (B, K, 3), world metres)."""
        if self.config.encoding == "relative":
            if keypoints.shape[1] != self.config.num_keypoints:
                raise ValueError(f"KeypointNeRF: the model takes {self.config.num_keypoints} keypoints, got {keypoints.shape[1]}")
            return relative_keypoint_encoding(points, keypoints, views.R, frequencies=self.config.frequencies,
                                              sigma=self.config.sigma)  # fmt: skip
        return global_encoding(points, views.R, views.T, frequencies=self.config.frequencies)

    def query(self, maps: list[torch.Tensor], views: ViewInputs, keypoints: torch.Tensor,
              points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Density (B, N) 1/metres and colour (B, N, 3) in [0, 1] of points (B, N, 3) world metres.

        Args:
            maps: :meth:`encode` of ``views.images``.
            views: the crops' cameras, leading dims (B, V).
            keypoints: (B, K, 3) world metres.
            points: (B, N, 3) world metres.
        """
        if points.ndim != 3 or points.shape[-1] != 3 or keypoints.ndim != 3 or keypoints.shape[0] != points.shape[0]:
            raise ValueError(f"KeypointNeRF.query: points (B, N, 3) and keypoints (B, K, 3) expected, "
                             f"got {tuple(points.shape)} and {tuple(keypoints.shape)}")  # fmt: skip
        batch, count = points.shape[:2]
        features = sample_maps(maps, self._pixels(views, points))  # (B V, N, C)
        num_views = features.shape[0] // batch
        features = features.reshape(batch, num_views, count, -1)
        embeddings = self.view_mlp(torch.cat([features, self.spatial(views, keypoints, points)], dim=-1))
        pooled = fuse(embeddings, "mean_var")  # (B, N, 2E)
        sigma = DENSITY_SCALE * F.softplus(self.density_mlp(pooled)[..., 0])
        blend_in = torch.cat([embeddings, pooled[:, None].expand(-1, num_views, -1, -1)], dim=-1)
        blend = torch.softmax(self.blend_mlp(blend_in), dim=1)  # (B, V, N, 1)
        rgb = (blend * features[..., :3]).sum(dim=1)
        return sigma, rgb
