"""What a model may know about the body in one frame: posed vertices, the global transform and,
when the capture has them, the body model's pose parameters."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class BodyPose:
    """The body model's parameters of one frame (what a model with its own skeleton poses itself with).

    Attributes:
        model: body-model name ("anny", "smpl"): which skeleton ``poses`` drive.
        poses: (P,) axis-angle per joint, radians, root first (the body model's pose vector;
            the global rotation and translation are the frame's Rh and Th, not in here).
        shapes: (S,) shape parameters, or None when the capture does not store them.
    """

    model: str
    poses: torch.Tensor
    shapes: torch.Tensor | None = None

    def to(self, device) -> "BodyPose":
        return BodyPose(self.model, self.poses.to(device), None if self.shapes is None else self.shapes.to(device))


@dataclasses.dataclass
class FrameBody:
    """The posed body of one frame.

    Attributes:
        vertices: (V, 3) posed body-model vertices, world coordinates, metres.
        Rh: (3,) global rotation of the body, axis-angle, radians (body-to-world).
        Th: (3,) global translation, metres: ``x_world = R(Rh) @ x_body + Th``.
        pose: the body model's pose parameters (None when the capture has none). Models
            that carry their own skeleton (the canonical avatar) need it; Neural Body ignores it.
    """

    vertices: torch.Tensor
    Rh: torch.Tensor
    Th: torch.Tensor
    pose: BodyPose | None = None

    def to(self, device) -> "FrameBody":
        pose = None if self.pose is None else self.pose.to(device)
        return FrameBody(self.vertices.to(device), self.Rh.to(device), self.Th.to(device), pose)
