"""The interface between radiance-field models and the renderer, trainer and evaluator.

A model is a ``torch.nn.Module`` for one capture. Rendering a frame happens in two steps:

1. ``state = model.prepare_frame(frame_index, body)`` does the per-frame work once (for Neural
   Body: pose the latent codes and run the sparse-convolution code diffusion).
2. ``sigma, rgb = model.query(state, points_world, viewdirs)`` evaluates density and colour at
   any number of points; :func:`neuralbody.rendering.render_rays` integrates them along rays.

Everything is in world coordinates and metres; ``viewdirs`` are unit vectors pointing from
the camera towards the point.
"""

from __future__ import annotations

import abc
import dataclasses

import torch


@dataclasses.dataclass
class FrameBody:
    """What a model may know about the body in one frame.

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


@dataclasses.dataclass
class FrameState:
    """Per-frame state returned by ``prepare_frame``.

    Attributes:
        frame_index: index into the capture's frames (selects the appearance code).
        box_min: (3,) world-space lower corner of the region where the person can be, metres.
        box_max: (3,) upper corner, metres.
        extras: model-specific tensors (for Neural Body: the diffused feature volumes).
    """

    frame_index: int
    box_min: torch.Tensor
    box_max: torch.Tensor
    extras: dict


class RadianceFieldModel(torch.nn.Module, abc.ABC):
    """A per-capture model of a moving person's density and colour."""

    @abc.abstractmethod
    def prepare_frame(self, frame_index: int, body: FrameBody) -> FrameState:
        """Per-frame work done once before querying points of that frame."""

    @abc.abstractmethod
    def query(
        self, state: FrameState, points_world: torch.Tensor, viewdirs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Density and colour at points.

        Args:
            state: from :meth:`prepare_frame`.
            points_world: (N, 3) world coordinates, metres.
            viewdirs: (N, 3) unit viewing directions, world coordinates.

        Returns:
            sigma: (N,) non-negative volume density, 1/metres.
            rgb: (N, 3) colour in [0, 1].
        """
