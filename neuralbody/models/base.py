"""The model protocol: what the renderer, the trainer and the evaluator may ask of a model.

A model is a ``torch.nn.Module`` for one capture. Rendering a frame happens in two steps:

1. ``field = model.prepare_frame(frame_index, body)`` does the per-frame work once (for Neural
   Body: pose the latent codes and run the sparse-convolution code diffusion) and returns the
   frame's :class:`FrameField`, a decoder of density and colour at any point of that frame.
   :meth:`RadianceFieldModel.prepare_frame` is differentiable (training);
   :meth:`RadianceFieldModel.compile_frame` returns the same field for inference, with
   whatever can be precomputed for the frame folded in once (no gradients).
2. The renderer asks the field, never the model:

   * ``field.occupied(points)`` -> (N,) bool or None: where density may be non-zero at all
     (samples are placed only there); None: anywhere in the box.
   * ``field.density(points)`` -> :class:`DensityQuery`: density at N points, plus what the
     field needs to decode colour at some of them later;
   * ``field.colour(density, rows, viewdirs)`` -> (J, 3): colour at the points ``rows`` of
     that query (the renderer decodes colour only where a sample's weight counts);
   * ``field.query(points, viewdirs)`` -> sigma, rgb: both at every point.

   A field need only implement :meth:`FrameField.query`: the others have defaults built on it.

Everything is in world coordinates and metres; ``viewdirs`` are unit vectors pointing from
the camera towards the point. A field holds no renderer state: caches that belong to a
renderer (the density occupancy of :mod:`neuralbody.rendering.density_grid`) stay with it.

Models that move points between a posed and a canonical space do it through a
:class:`~neuralbody.models.deformer.Deformer`.
"""

from __future__ import annotations

import abc
import dataclasses

import torch

from neuralbody.body.frame_body import FrameBody


@dataclasses.dataclass
class DensityQuery:
    """Density at N points, and what the field needs to decode colour there afterwards.

    Fields subclass it to keep their own intermediate values (Neural Body: the density MLP's
    hidden layer); only the field that made it may read those.

    Attributes:
        sigma: (N,) non-negative volume density, 1/metres.
        points: (N, 3) the queried points, world coordinates, metres.
    """

    sigma: torch.Tensor
    points: torch.Tensor


class FrameField(abc.ABC):
    """Density and colour of one frame of a model (see the module docstring).

    Attributes:
        frame_index: index into the capture's frames (selects per-frame codes).
        box_min: (3,) world-space lower corner of the region where the person can be, metres.
        box_max: (3,) upper corner, metres; rays are sampled only inside this box.
    """

    frame_index: int
    box_min: torch.Tensor
    box_max: torch.Tensor

    @abc.abstractmethod
    def query(self, points: torch.Tensor, viewdirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density and colour at points.

        Args:
            points: (N, 3) world coordinates, metres.
            viewdirs: (N, 3) unit viewing directions, world coordinates.

        Returns:
            sigma: (N,) non-negative volume density, 1/metres.
            rgb: (N, 3) colour in [0, 1].
        """

    def occupied(self, points: torch.Tensor) -> torch.Tensor | None:
        """(N,) bool: where density may be non-zero among points (N, 3), world, metres.

        None (the default) means the field cannot tell: anywhere inside the box.
        """
        return None

    def density(self, points: torch.Tensor) -> DensityQuery:
        """Density at points (N, 3), world, metres (default: :meth:`query` with a fixed direction)."""
        viewdirs = torch.zeros_like(points)
        viewdirs[:, 2] = 1.0
        sigma, _ = self.query(points, viewdirs)
        return DensityQuery(sigma=sigma, points=points)

    def colour(self, density: DensityQuery, rows: torch.Tensor, viewdirs: torch.Tensor) -> torch.Tensor:
        """Colour (J, 3) in [0, 1] of the points ``rows`` (J,) of ``density``, seen along viewdirs (J, 3).

        Default: :meth:`query` at those points.
        """
        return self.query(density.points[rows], viewdirs)[1]


def check_points(points: torch.Tensor, viewdirs: torch.Tensor | None = None) -> None:
    """Raise ValueError unless points are (N, 3) (and viewdirs, when given, the same shape)."""
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")
    if viewdirs is not None and viewdirs.shape != points.shape:
        raise ValueError(f"viewdirs must be {tuple(points.shape)} like the points, got {tuple(viewdirs.shape)}")


def kept_rows(keep: torch.Tensor, count: int, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``rows`` were decoded by a density query that kept only some of its points.

    Args:
        keep: (K,) rows of the ``count`` queried points that the field decoded.
        count: N, points in the query.
        rows: (J,) rows asked for.

    Returns:
        found: (F,) indices into ``rows`` whose point was decoded; slots: (F,) their indices into ``keep``.
    """
    slot = torch.full((count,), -1, dtype=torch.long, device=rows.device)
    slot[keep] = torch.arange(keep.numel(), device=rows.device)
    picked = slot[rows]
    found = torch.nonzero(picked >= 0).squeeze(1)
    return found, picked[found]


class RadianceFieldModel(torch.nn.Module, abc.ABC):
    """A per-capture model of a moving person's density and colour.

    Attributes:
        num_vertices: body vertices per frame the model was built for (None: any count).
    """

    num_vertices: int | None = None

    @abc.abstractmethod
    def prepare_frame(self, frame_index: int, body: FrameBody) -> FrameField:
        """The frame's field, differentiable with respect to the model's parameters (training).

        Args:
            frame_index: index into the capture's frames; frames beyond the trained ones use
                the model's rule for unseen poses (Neural Body: the last appearance code).
            body: the frame's posed body (world, metres).
        """

    def compile_frame(self, frame_index: int, body: FrameBody) -> FrameField:
        """The frame's field for inference: the same values as :meth:`prepare_frame`, with per-frame
        precomputation folded in once (default: :meth:`prepare_frame` without gradients). Query it
        under ``torch.no_grad()``, as the renderer's image functions do."""
        with torch.no_grad():
            return self.prepare_frame(frame_index, body)

    def unseen_frame_rule(self) -> str | None:
        """How the model renders frames beyond the trained ones, in words for the user (None: it
        keeps no per-frame state, so an unseen pose needs no rule)."""
        return None

    def set_reference(self, body: FrameBody) -> None:
        """Take ``body`` as the model's reference pose (canonical coordinates); called once, before
        training, with the first training frame. Default: the model has no reference pose."""
