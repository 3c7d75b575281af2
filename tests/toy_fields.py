"""A frame field for analytic test models: the model computes, the field only carries the frame."""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.base import FrameField


@dataclasses.dataclass
class DelegateField(FrameField):
    """Field of a toy model: ``query`` and ``occupied`` call ``model.field_query(field, points, viewdirs)``
    and ``model.field_occupied(field, points)`` (when the model defines it)."""

    model: object
    frame_index: int
    box_min: torch.Tensor
    box_max: torch.Tensor

    def query(self, points: torch.Tensor, viewdirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.field_query(self, points, viewdirs)

    def occupied(self, points: torch.Tensor) -> torch.Tensor | None:
        occupied = getattr(self.model, "field_occupied", None)  # test toys opt in
        return None if occupied is None else occupied(self, points)
