"""The coarse shape network ``O(x, z_shape, beta) -> (o, f)``: occupancy and a feature in canonical space.

gDNA's coarse network maps a canonical point and a shape latent to an occupancy and a feature
that the detail network reads. Here its input is

* a dense multi-resolution feature grid shared by everyone (trilinear, as SNARF's canonical
  occupancy, :mod:`neuralbody.snarf.canonical_occupancy`): the average person, cheap to learn on a CPU;
* the point's positional encoding;
* the scan's shape latent ``z_shape`` (learned per scan, :mod:`neuralbody.gdna.latents`) and the
  body model's shape ``beta``: each person's canonical space is their own rest pose, so the
  network is told the body it is dressing;

through a ReLU MLP whose latent is concatenated to the input and again half way (a skip, so
deeper layers still see it). The last hidden layer is the feature ``f`` (width ``hidden``);
a linear layer on it gives the occupancy logit ``o`` (``sigmoid(o)`` the probability, ``o = 0``
the surface). Canonical points in metres.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.encoding import encoded_size, positional_encoding
from neuralbody.skinning.trilinear import trilinear


@dataclasses.dataclass(frozen=True)
class CoarseOptions:
    """Size of the coarse network.

    Attributes:
        spacings: node spacing of each shared grid level, metres.
        features: features per node and level.
        freqs: positional-encoding frequencies.
        hidden: width of the hidden layers (and of the feature ``f``).
        layers: hidden layers (at least 2).
        latent: width of ``z_shape``.
        shape_dim: width of ``beta``.
    """

    spacings: tuple[float, ...] = (0.16, 0.08, 0.04)
    features: int = 4
    freqs: int = 4
    hidden: int = 64
    layers: int = 4
    latent: int = 16
    shape_dim: int = 6

    def __post_init__(self) -> None:
        if not self.spacings or any(not s > 0 for s in self.spacings):
            raise ValueError(f"CoarseOptions: spacings must be positive metres, got {self.spacings}")
        if min(self.features, self.hidden, self.latent, self.shape_dim) < 1 or self.layers < 2 or self.freqs < 0:
            raise ValueError(f"CoarseOptions: features, hidden, latent, shape_dim >= 1, layers >= 2, freqs >= 0; got {self}")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "spacings": list(self.spacings)}

    @classmethod
    def from_dict(cls, values: dict) -> "CoarseOptions":
        return cls(**{**values, "spacings": tuple(float(s) for s in values["spacings"])})


class CoarseShape(torch.nn.Module):
    """``O(x, z_shape, beta) -> (logit, feature)`` (module docstring).

    Args:
        box_min, box_max: (3,) the canonical box the shared grids cover, metres.
        options: network size.
    """

    def __init__(self, box_min: torch.Tensor, box_max: torch.Tensor, options: CoarseOptions = CoarseOptions()) -> None:
        super().__init__()
        box_min, box_max = torch.as_tensor(box_min, dtype=torch.float32), torch.as_tensor(box_max, dtype=torch.float32)
        if box_min.shape != (3,) or box_max.shape != (3,) or not bool((box_max > box_min).all()):
            raise ValueError(f"CoarseShape: box_min must lie below box_max, both (3,); got {box_min.tolist()}, "
                             f"{box_max.tolist()}")
        self.options = options
        self.register_buffer("box_min", box_min)
        self.register_buffer("box_max", box_max)
        self.grids = torch.nn.ParameterList()
        for spacing in options.spacings:
            shape = (torch.ceil((box_max - box_min) / spacing).long() + 1).clamp_min(2).tolist()
            self.grids.append(torch.nn.Parameter(1e-2 * torch.randn(*shape, options.features)))
        code = options.latent + options.shape_dim
        width = len(options.spacings) * options.features + encoded_size(3, options.freqs) + code
        self.skip_at = options.layers // 2
        self.layers = torch.nn.ModuleList()
        for i in range(options.layers):
            self.layers.append(torch.nn.Linear(width + (code if i == self.skip_at else 0), options.hidden))
            width = options.hidden
        self.out = torch.nn.Linear(options.hidden, 1)

    def forward(self, points: torch.Tensor, latent: torch.Tensor, shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), features (N, hidden)) of canonical points (N, 3), metres.

        Args:
            points: (N, 3) canonical points, metres.
            latent: (N, L) or (L,) shape latents ``z_shape`` (one per point, or shared).
            shapes: (N, S) or (S,) body shapes ``beta``.
        """
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"CoarseShape: points must be (N, 3), got {tuple(points.shape)}")
        code = torch.cat([_rows(latent, len(points), self.options.latent, "latent"),
                          _rows(shapes, len(points), self.options.shape_dim, "shapes")], dim=1).to(self.box_min.dtype)
        points = points.to(self.box_min.dtype)
        parts = []
        for grid in self.grids:
            count = torch.tensor(grid.shape[:3], dtype=points.dtype, device=points.device)
            parts.append(trilinear(grid, (points - self.box_min) / (self.box_max - self.box_min) * (count - 1)).values)
        parts += [positional_encoding(points - 0.5 * (self.box_min + self.box_max), self.options.freqs), code]
        hidden = torch.cat(parts, dim=1)
        for i, layer in enumerate(self.layers):
            hidden = torch.relu(layer(torch.cat([hidden, code], dim=1) if i == self.skip_at else hidden))
        return self.out(hidden)[:, 0], hidden


def _rows(values: torch.Tensor, count: int, width: int, name: str) -> torch.Tensor:
    """(count, width) rows: ``values`` (count, width) as is, or (width,) repeated."""
    if values.shape == (width,):
        return values[None].expand(count, width)
    if values.shape != (count, width):
        raise ValueError(f"CoarseShape: {name} must be ({width},) or ({count}, {width}), got {tuple(values.shape)}")
    return values
