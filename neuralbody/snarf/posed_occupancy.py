"""What every SNARF-style model answers: the occupancy of posed points in a given frame.

A model maps posed points (body frame of the frame, metres; see
:mod:`neuralbody.snarf.frame_pose`) and the frame's pose to occupancy logits; the two
implementations differ only in how a posed point finds its canonical point:

* :class:`~neuralbody.snarf.forward_model.ForwardOccupancy` (SNARF): skinning weights live in
  canonical space, the correspondences are searched by forward skinning;
* :class:`~neuralbody.snarf.backward_model.BackwardOccupancy` (the baseline): skinning weights
  live in posed space, conditioned on the pose, and inverse skinning maps back in closed form.
"""

from __future__ import annotations

import abc

import torch

from neuralbody.snarf.frame_pose import FramePose

EMPTY_LOGIT = -20.0  # the logit of a posed point with no canonical correspondence: surely outside


class PosedOccupancy(torch.nn.Module, abc.ABC):
    """Occupancy logits of posed points (see the module docstring)."""

    kind: str = "posed"

    @abc.abstractmethod
    def logits(self, points: torch.Tensor, frame: FramePose) -> torch.Tensor:
        """(N,) occupancy logits of posed points (N, 3), body frame, metres, in the frame ``frame``."""


def occupancy_in_chunks(model: PosedOccupancy, points: torch.Tensor, frame: FramePose, chunk: int = 65536) -> torch.Tensor:
    """(N,) occupancy probabilities of posed points (N, 3), metres, without gradients, ``chunk`` points at a time."""
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"occupancy_in_chunks: points must be (N, 3), got {tuple(points.shape)}")
    if chunk < 1:
        raise ValueError(f"occupancy_in_chunks: chunk must be >= 1, got {chunk}")
    with torch.no_grad():
        parts = [torch.sigmoid(model.logits(points[start : start + chunk], frame))
                 for start in range(0, points.shape[0], chunk)]
    return torch.cat(parts) if parts else points.new_zeros(0)
