"""The generative model's networks together, and the plain values that rebuild them from a checkpoint.

A :class:`GenerativeModel` holds the coarse shape network and the detail network
(:mod:`neuralbody.gdna.coarse`, :mod:`neuralbody.gdna.detail`); the detail network reads the
coarse network's last hidden layer, so its feature width is the coarse network's width. The
per-scan latent codes live beside it (:mod:`neuralbody.gdna.latents`): they belong to the
training scans, the networks to everyone.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.gdna.coarse import CoarseOptions, CoarseShape
from neuralbody.gdna.detail import DetailNormals, DetailOptions


@dataclasses.dataclass
class ModelSpec:
    """What the networks are made of.

    Attributes:
        box_min, box_max: the canonical box of the coarse network's grids, 3 floats each, metres.
        coarse: the coarse network's size.
        detail: the detail network's size (its ``feature`` is the coarse ``hidden``).
    """

    box_min: list[float]
    box_max: list[float]
    coarse: CoarseOptions = CoarseOptions()
    detail: DetailOptions = DetailOptions()

    def __post_init__(self) -> None:
        if len(self.box_min) != 3 or len(self.box_max) != 3:
            raise ValueError(f"ModelSpec: box_min and box_max need 3 values, got {self.box_min}, {self.box_max}")
        if self.detail.feature != self.coarse.hidden:
            raise ValueError(f"ModelSpec: the detail network reads {self.detail.feature} features, the coarse "
                             f"network gives {self.coarse.hidden}")

    def to_dict(self) -> dict:
        return {"box_min": list(self.box_min), "box_max": list(self.box_max), "coarse": self.coarse.to_dict(),
                "detail": dataclasses.asdict(self.detail)}

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        return cls([float(v) for v in values["box_min"]], [float(v) for v in values["box_max"]],
                   CoarseOptions.from_dict(values["coarse"]), DetailOptions(**values["detail"]))


class GenerativeModel(torch.nn.Module):
    """The coarse and detail networks of a :class:`ModelSpec`."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.coarse = CoarseShape(torch.tensor(spec.box_min), torch.tensor(spec.box_max), spec.coarse)
        self.detail = DetailNormals(spec.detail)

    def normals(self, points: torch.Tensor, shape_code: torch.Tensor, detail_code: torch.Tensor,
                shapes: torch.Tensor) -> torch.Tensor:
        """(N, 3) unit canonical normals of the detail network at canonical points (N, 3), metres.

        ``shape_code`` (Ls,) or (N, Ls), ``detail_code`` (Ld,) or (N, Ld), ``shapes`` (S,) or (N, S).
        """
        _, features = self.coarse(points, shape_code, shapes)
        return self.detail(points, detail_code, features)
