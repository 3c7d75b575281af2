"""The generative model's networks together, and the plain values that rebuild them from a checkpoint.

A :class:`GenerativeModel` holds the coarse shape network, the detail network and, optionally,
the colour network (:mod:`neuralbody.gdna.coarse`, :mod:`neuralbody.gdna.detail`,
:mod:`neuralbody.gdna.colour`); the detail and colour networks read the coarse network's last
hidden layer, so their feature width is the coarse network's width. With the learned skinning
it also holds the skinning correction network (:mod:`neuralbody.gdna.learned_skinning`). Runs
trained before colour existed have no ``colour`` in their spec and load without the colour
network; runs with the fixed skinning (and those from before it could be learned) have no
``skinning``. The
per-scan latent codes live beside it (:mod:`neuralbody.gdna.latents`): they belong to the
training scans, the networks to everyone.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.gdna.coarse import CoarseOptions, CoarseShape
from neuralbody.gdna.colour import ColourNetwork, ColourOptions
from neuralbody.gdna.detail import DetailNormals, DetailOptions
from neuralbody.gdna.learned_skinning import SkinningCorrection, SkinningOptions


@dataclasses.dataclass
class ModelSpec:
    """What the networks are made of.

    Attributes:
        box_min, box_max: the canonical box of the coarse network's grids, 3 floats each, metres.
        coarse: the coarse network's size.
        detail: the detail network's size (its ``feature`` is the coarse ``hidden``).
        colour: the colour network's size (its ``feature`` is the coarse ``hidden``), or None: no colour.
        skinning: the skinning correction network's size, or None: the fixed skinning.
    """

    box_min: list[float]
    box_max: list[float]
    coarse: CoarseOptions = CoarseOptions()
    detail: DetailOptions = DetailOptions()
    colour: ColourOptions | None = None
    skinning: SkinningOptions | None = None

    def __post_init__(self) -> None:
        if len(self.box_min) != 3 or len(self.box_max) != 3:
            raise ValueError(f"ModelSpec: box_min and box_max need 3 values, got {self.box_min}, {self.box_max}")
        if self.detail.feature != self.coarse.hidden:
            raise ValueError(f"ModelSpec: the detail network reads {self.detail.feature} features, the coarse "
                             f"network gives {self.coarse.hidden}")
        if self.colour is not None and self.colour.feature != self.coarse.hidden:
            raise ValueError(f"ModelSpec: the colour network reads {self.colour.feature} features, the coarse "
                             f"network gives {self.coarse.hidden}")

    def to_dict(self) -> dict:
        values = {"box_min": list(self.box_min), "box_max": list(self.box_max), "coarse": self.coarse.to_dict(),
                  "detail": dataclasses.asdict(self.detail)}
        values = values if self.colour is None else {**values, "colour": dataclasses.asdict(self.colour)}
        return values if self.skinning is None else {**values, "skinning": self.skinning.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        colour = values.get("colour")  # absent in runs trained before colour existed
        skinning = values.get("skinning")  # absent in runs with the fixed skinning
        return cls([float(v) for v in values["box_min"]], [float(v) for v in values["box_max"]],
                   CoarseOptions.from_dict(values["coarse"]), DetailOptions(**values["detail"]),
                   None if colour is None else ColourOptions(**colour),
                   None if skinning is None else SkinningOptions(**skinning))


class GenerativeModel(torch.nn.Module):
    """The coarse, detail and (when the spec has them) colour and skinning correction networks of a :class:`ModelSpec`.

    Attributes:
        colour: the colour network, or None when the spec has no colour.
        skinning: the skinning correction network, or None (the fixed skinning).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.coarse = CoarseShape(torch.tensor(spec.box_min), torch.tensor(spec.box_max), spec.coarse)
        self.detail = DetailNormals(spec.detail)
        self.colour = None if spec.colour is None else ColourNetwork(spec.colour)
        centre = 0.5 * (torch.tensor(spec.box_min) + torch.tensor(spec.box_max))
        self.skinning = None if spec.skinning is None else SkinningCorrection(centre, spec.skinning)

    def normals(self, points: torch.Tensor, shape_code: torch.Tensor, detail_code: torch.Tensor,
                shapes: torch.Tensor) -> torch.Tensor:
        """(N, 3) unit canonical normals of the detail network at canonical points (N, 3), metres.

        ``shape_code`` (Ls,) or (N, Ls), ``detail_code`` (Ld,) or (N, Ld), ``shapes`` (S,) or (N, S).
        """
        _, features = self.coarse(points, shape_code, shapes)
        return self.detail(points, detail_code, features)

    def colours(self, points: torch.Tensor, shape_code: torch.Tensor, colour_code: torch.Tensor,
                shapes: torch.Tensor) -> torch.Tensor:
        """(N, 3) albedo in [0, 1] of the colour network at canonical points (N, 3), metres.

        ``shape_code`` (Ls,) or (N, Ls), ``colour_code`` (Lc,) or (N, Lc), ``shapes`` (S,) or (N, S);
        ValueError when the model has no colour network.
        """
        if self.colour is None:
            raise ValueError("this gDNA model has no colour network (trained without colours); retrain it with "
                             "`neuralbody train-gen` on a corpus with coloured meshes")
        _, features = self.coarse(points, shape_code, shapes)
        return self.colour(points, colour_code, features)
