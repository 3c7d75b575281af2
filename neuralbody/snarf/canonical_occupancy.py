"""The canonical occupancy network: where the person is, in the body model's rest pose.

``f(x) -> logit``, the log-odds that the canonical point ``x`` (metres, rest pose) lies inside
the body; ``sigmoid(f)`` is SNARF's occupancy probability and ``f = 0`` the surface. Features:

* a dense multi-resolution feature grid over a canonical box: level l holds C features per
  node at ``spacing_l`` metres, read by trilinear interpolation
  (:func:`neuralbody.skinning.trilinear.trilinear`, differentiable in the point as well);
* the point's positional encoding with a few frequencies (a smooth global prior);

followed by a small ReLU MLP. A grid learns a body shape in a few CPU minutes where an MLP
over a positional encoding (SNARF's 8 x 256) would need hours; the spatial gradient
``df/dx`` flows through both, as SNARF's implicit gradients (and the backward baseline's
chain rule) need it. Points outside the box read the features of its nearest face.

The shape is not conditioned on the pose (SNARF conditions it, for pose-dependent clothing
and soft tissue): the posed meshes this learns from are linear-blend-skinned, so one
canonical shape explains every frame, and both skinning models share the same network.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.encoding import encoded_size, positional_encoding
from neuralbody.skinning.trilinear import trilinear


@dataclasses.dataclass(frozen=True)
class OccupancyOptions:
    """Size of the canonical occupancy network.

    Attributes:
        spacings: node spacing of each grid level, metres (coarse to fine).
        features: C, features per node and level.
        freqs: positional-encoding frequencies of the point (0: the raw point only).
        hidden: width of the MLP's hidden layers.
        layers: number of hidden layers.
    """

    spacings: tuple[float, ...] = (0.08, 0.04, 0.02)
    features: int = 4
    freqs: int = 3
    hidden: int = 64
    layers: int = 2

    def __post_init__(self) -> None:
        if not self.spacings or any(not s > 0 for s in self.spacings):
            raise ValueError(f"OccupancyOptions: spacings must be positive metres, got {self.spacings}")
        if self.features < 1 or self.freqs < 0 or self.hidden < 1 or self.layers < 1:
            raise ValueError(f"OccupancyOptions: features, hidden, layers must be >= 1 and freqs >= 0, got "
                             f"{self.features}, {self.hidden}, {self.layers}, {self.freqs}")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "spacings": list(self.spacings)}

    @classmethod
    def from_dict(cls, values: dict) -> "OccupancyOptions":
        return cls(**{**values, "spacings": tuple(float(s) for s in values["spacings"])})


class CanonicalOccupancy(torch.nn.Module):
    """Occupancy logits of canonical points (see the module docstring).

    Args:
        box_min, box_max: (3,) the canonical box the grids cover, metres.
        options: network size.
    """

    def __init__(self, box_min: torch.Tensor, box_max: torch.Tensor, options: OccupancyOptions = OccupancyOptions()):
        super().__init__()
        box_min, box_max = torch.as_tensor(box_min, dtype=torch.float32), torch.as_tensor(box_max, dtype=torch.float32)
        if box_min.shape != (3,) or box_max.shape != (3,) or not bool((box_max > box_min).all()):
            raise ValueError(f"CanonicalOccupancy: box_min must lie below box_max, both (3,) metres; got "
                             f"{box_min.tolist()}, {box_max.tolist()}")
        self.options = options
        self.register_buffer("box_min", box_min)
        self.register_buffer("box_max", box_max)
        self.grids = torch.nn.ParameterList()
        for spacing in options.spacings:
            shape = (torch.ceil((box_max - box_min) / spacing).long() + 1).clamp_min(2).tolist()
            self.grids.append(torch.nn.Parameter(1e-2 * torch.randn(*shape, options.features)))
        width = len(options.spacings) * options.features + encoded_size(3, options.freqs)
        layers: list[torch.nn.Module] = []
        for _ in range(options.layers):
            layers += [torch.nn.Linear(width, options.hidden), torch.nn.ReLU()]
            width = options.hidden
        layers.append(torch.nn.Linear(width, 1))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) occupancy logits of canonical points (N, 3), metres; differentiable in the points."""
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"CanonicalOccupancy: points must be (N, 3), got {tuple(points.shape)}")
        points = points.to(self.box_min.dtype)
        features = []
        for grid in self.grids:
            count = torch.tensor(grid.shape[:3], dtype=points.dtype, device=points.device)
            coords = (points - self.box_min) / (self.box_max - self.box_min) * (count - 1)
            features.append(trilinear(grid, coords).values)
        centred = points - 0.5 * (self.box_min + self.box_max)
        features.append(positional_encoding(centred, self.options.freqs))
        return self.mlp(torch.cat(features, dim=1))[:, 0]
