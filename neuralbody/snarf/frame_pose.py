"""The pose of one frame as the occupancy models see it, and the body frame they work in.

Posed points are given in the frame's *body frame*: ``x_body = R(Rh)^T (x_world - Th)``
(ZJU-MoCap's global rotation ``Rh``, axis-angle radians, and translation ``Th``, metres), so
the global placement of the person never reaches the models: a walk along an arc and a
turn on the spot are the same problem. The bone transforms ``G_b`` take rest-pose
(canonical) points to the body frame: the body model posed with ``Rh = 0, Th = 0``.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.geometry.rotations import axis_angle_to_matrix


@dataclasses.dataclass
class FramePose:
    """One frame's pose.

    Attributes:
        bone_transforms: (B, 4, 4) rigid bone transforms, canonical to body frame, metres.
        pose: (P,) the body model's pose vector (axis-angle per joint, radians): what a
            pose-conditioned model is conditioned on.
    """

    bone_transforms: torch.Tensor
    pose: torch.Tensor

    def __post_init__(self) -> None:
        if self.bone_transforms.ndim != 3 or self.bone_transforms.shape[1:] != (4, 4):
            raise ValueError(f"FramePose: bone_transforms must be (B, 4, 4), got {tuple(self.bone_transforms.shape)}")
        if self.pose.ndim != 1:
            raise ValueError(f"FramePose: pose must be (P,), got {tuple(self.pose.shape)}")

    def to(self, device) -> "FramePose":
        return FramePose(self.bone_transforms.to(device), self.pose.to(device))


def world_to_body(points: torch.Tensor, Rh: torch.Tensor, Th: torch.Tensor) -> torch.Tensor:
    """(N, 3) body-frame points ``R(Rh)^T (x - Th)`` of world points (N, 3), metres.

    Args:
        points: (N, 3) world points, metres.
        Rh: (3,) global rotation, axis-angle, radians.
        Th: (3,) global translation, metres.
    """
    if points.ndim != 2 or points.shape[1] != 3 or Rh.shape != (3,) or Th.shape != (3,):
        raise ValueError(f"world_to_body: points must be (N, 3), Rh and Th (3,); got {tuple(points.shape)}, "
                         f"{tuple(Rh.shape)}, {tuple(Th.shape)}")
    rotation = axis_angle_to_matrix(Rh.to(points.dtype)[None])[0]
    return (points - Th.to(points.dtype)) @ rotation
