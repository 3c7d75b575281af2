"""Where a trained IMAvatar can be dense in one frame: a world occupancy grid by forward mapping.

Root finding for every sample of every ray is what makes IMAvatar slow to render. The
forward map is cheap, so per frame: take the canonical grid's nodes with density above
``threshold`` (1/metres), deform them into the world (:func:`neuralbody.head.deformation.deform`),
mark the world voxels (``voxel`` metres, over the frame's posed box) that receive one, and
dilate the marks by ``dilation`` voxels (the deformation stretches the canonical spacing a
little, and trilinear density spreads half a canonical voxel). Samples outside the marks are
empty and skip root finding (:func:`neuralbody.head.raymarch.render_rays`). Inference only: the
grid is not differentiable, and in training the empty space must still be seen to be learnt.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from neuralbody.head.deformation import deform, frame_grid
from neuralbody.head.frame import HeadFrame
from neuralbody.models.occupancy import dilate_cells


@dataclasses.dataclass
class PosedOccupancy:
    """Occupied voxels of a frame.

    Attributes:
        origin: (3,) corner of voxel (0, 0, 0), world metres.
        voxel: voxel side, metres.
        occupied: (X, Y, Z) bool.
    """

    origin: torch.Tensor
    voxel: float
    occupied: torch.Tensor

    def contains(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) bool, points (N, 3) world metres in an occupied voxel."""
        index = torch.floor((points - self.origin.to(points)) / self.voxel).long()
        size = torch.tensor(self.occupied.shape, device=points.device)
        inside = ((index >= 0) & (index < size)).all(dim=1)
        index = torch.minimum(index.clamp_min(0), size - 1)
        return inside & self.occupied[index[:, 0], index[:, 1], index[:, 2]]


def posed_occupancy(avatar, frame: HeadFrame, *, voxel: float = 0.005, threshold: float = 10.0,
                    dilation: int = 1) -> PosedOccupancy:
    """The module docstring's grid for an :class:`~neuralbody.head.avatar.ImAvatar` and a frame."""
    if voxel <= 0 or dilation < 0:
        raise ValueError(f"posed_occupancy: voxel > 0 and dilation >= 0 needed, got {voxel}, {dilation}")
    with torch.no_grad():
        box = avatar.box
        sigma = avatar.settings.density_scale * F.softplus(avatar.canonical[..., 0])
        nodes = torch.nonzero(sigma > threshold).to(torch.float32)
        origin = torch.tensor(box.origin)
        canonical = origin + nodes * box.spacing
        values = frame_grid(avatar.deformation, frame.code)
        world = torch.cat([deform(chunk, values, avatar.deform_box, frame.code.transforms)[0]
                           for chunk in canonical.split(65536)]) if len(canonical) else canonical
        low = frame.box_min
        shape = [max(1, math.ceil(float(e) / voxel)) for e in (frame.box_max - low)]
        occupied = torch.zeros(shape, dtype=torch.bool)
        index = torch.floor((world - low) / voxel).long()
        keep = ((index >= 0) & (index < torch.tensor(shape))).all(dim=1)
        index = index[keep]
        occupied[index[:, 0], index[:, 1], index[:, 2]] = True
        occupied = dilate_cells(occupied, dilation)
    return PosedOccupancy(origin=low.clone(), voxel=voxel, occupied=occupied)
