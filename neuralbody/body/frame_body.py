"""What a model may know about the body in one frame: posed vertices and the global transform."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class FrameBody:
    """The posed body of one frame.

    Attributes:
        vertices: (V, 3) posed body-model vertices, world coordinates, metres.
        Rh: (3,) global rotation of the body, axis-angle, radians (body-to-world).
        Th: (3,) global translation, metres: ``x_world = R(Rh) @ x_body + Th``.
    """

    vertices: torch.Tensor
    Rh: torch.Tensor
    Th: torch.Tensor

    def to(self, device) -> "FrameBody":
        return FrameBody(self.vertices.to(device), self.Rh.to(device), self.Th.to(device))
