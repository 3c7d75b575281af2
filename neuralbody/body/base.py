"""The body-model interface every method in neuralbody talks to.

A body model maps pose and shape parameters, plus a global rotation ``Rh`` and translation
``Th`` (as ZJU-MoCap stores them), to a posed mesh in world coordinates:

    x_world = R(Rh) @ x_body + Th,       x_body = sum_j w_vj * G_j @ [x_rest_v; 1]

where ``G_j`` are the per-bone rigid transforms of linear blend skinning in the body frame
and ``w_vj`` the skinning weights. Units: metres; rotations as axis-angle in radians.
"""

from __future__ import annotations

import abc
import dataclasses

import torch


@dataclasses.dataclass
class BodyOutput:
    """Result of a body-model forward pass (batch size B, V vertices, J joints, F faces).

    Attributes:
        vertices: (B, V, 3) posed vertices, world coordinates, metres.
        joints: (B, J, 3) posed joint positions, world coordinates, metres.
        bone_transforms: (B, J, 4, 4) world-space skinning transforms: a rest-pose point
            ``x`` bound rigidly to bone j moves to ``bone_transforms[:, j] @ [x; 1]``
            (global Rh/Th included).
        rest_vertices: (B, V, 3) canonical vertices (shape applied, no pose, no Rh/Th), metres.
        rest_joints: (B, J, 3) canonical joint positions, metres.
        faces: (F, 3) int64 triangle indices (shared by the batch).
        skinning_weights: (V, J) per-vertex skinning weights, each row sums to one.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    bone_transforms: torch.Tensor
    rest_vertices: torch.Tensor
    rest_joints: torch.Tensor
    faces: torch.Tensor
    skinning_weights: torch.Tensor


class BodyModel(torch.nn.Module, abc.ABC):
    """A parametric body model: holds buffers, computes with pure functions.

    Subclasses define ``num_vertices``, ``num_joints``, ``pose_dim`` (axis-angle values,
    3 per joint, root included), ``shape_dim``, ``parents`` and ``forward``.
    """

    name: str = "body"

    @property
    @abc.abstractmethod
    def num_vertices(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_joints(self) -> int: ...

    @property
    def pose_dim(self) -> int:
        return 3 * self.num_joints

    @property
    def joint_names(self) -> list[str]:
        """One name per joint, in joint order (default ``joint_000``, ...; models with named
        joints override it)."""
        return [f"joint_{j:03d}" for j in range(self.num_joints)]

    @property
    @abc.abstractmethod
    def shape_dim(self) -> int: ...

    @property
    @abc.abstractmethod
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangles."""

    @property
    @abc.abstractmethod
    def parents(self) -> list[int]:
        """Parent joint index of each joint (-1 for the root)."""

    @abc.abstractmethod
    def forward(
        self,
        poses: torch.Tensor,
        shapes: torch.Tensor | None = None,
        Rh: torch.Tensor | None = None,
        Th: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the body.

        Args:
            poses: (B, pose_dim) axis-angle per joint in radians, root first; all zeros is
                the rest pose.
            shapes: (B, shape_dim) shape parameters; None means the mean shape.
            Rh: (B, 3) global rotation, axis-angle, radians; None means identity.
            Th: (B, 3) global translation, metres; None means zero.
        """

    def check_inputs(self, poses, shapes, Rh, Th):
        """Validate and fill defaults; raises ValueError naming the bad argument."""
        if poses.ndim != 2 or poses.shape[1] != self.pose_dim:
            raise ValueError(f"{self.name}: poses must have shape (B, {self.pose_dim}), got {tuple(poses.shape)}")
        batch = poses.shape[0]
        dtype, device = poses.dtype, poses.device
        if shapes is None:
            shapes = self.default_shapes(batch).to(device=device, dtype=dtype)
        if Rh is None:
            Rh = torch.zeros(batch, 3, dtype=dtype, device=device)
        if Th is None:
            Th = torch.zeros(batch, 3, dtype=dtype, device=device)
        for name, value, dim in (("shapes", shapes, self.shape_dim), ("Rh", Rh, 3), ("Th", Th, 3)):
            if value.ndim != 2 or value.shape != (batch, dim):
                raise ValueError(f"{self.name}: {name} must have shape ({batch}, {dim}), got {tuple(value.shape)}")
        for name, value in (("poses", poses), ("shapes", shapes), ("Rh", Rh), ("Th", Th)):
            if not torch.isfinite(value).all():
                raise ValueError(f"{self.name}: {name} contains NaN or inf")
        return poses, shapes, Rh, Th

    def default_shapes(self, batch: int) -> torch.Tensor:
        """(B, shape_dim) the mean shape."""
        return torch.zeros(batch, self.shape_dim)
