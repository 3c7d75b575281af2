"""The person behind a folder of posed meshes: body model, shape, and each frame's pose.

A :class:`Subject` is the body model with the person's shape parameters: its rest
(canonical) mesh and joints, per-vertex skinning weights and skeleton, from which the
forward model's weight grid and bone groups are built. :func:`prepare_frames` poses the body
model for frames read by :mod:`neuralbody.snarf.posed_meshes` and moves their meshes into
each frame's body frame (:mod:`neuralbody.snarf.frame_pose`).
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.body.base import BodyModel
from neuralbody.io.errors import InputError
from neuralbody.snarf.frame_pose import FramePose, world_to_body
from neuralbody.snarf.posed_meshes import PARAMS_DIR, PosedMeshFrame

SAME_SHAPE_TOLERANCE = 1e-4  # largest difference of shape parameters within one person


@dataclasses.dataclass
class Subject:
    """A body model with one person's shape.

    Attributes:
        body: the body model.
        shapes: (S,) the person's shape parameters.
        rest_vertices: (V, 3) canonical mesh vertices, metres.
        rest_joints: (B, 3) canonical joints (bone heads), metres.
        faces: (F, 3) int64 triangles of the body model.
        vertex_weights: (V, B) per-vertex skinning weights.
    """

    body: BodyModel
    shapes: torch.Tensor
    rest_vertices: torch.Tensor
    rest_joints: torch.Tensor
    faces: torch.Tensor
    vertex_weights: torch.Tensor

    @property
    def parents(self) -> list[int]:
        return list(self.body.parents)


@dataclasses.dataclass
class PreparedFrame:
    """A posed mesh in its body frame, with its pose.

    Attributes:
        number: the frame's number on disk.
        pose: the frame's :class:`FramePose`.
        vertices: (V, 3) posed mesh (ground truth), body frame, metres.
        faces: (F, 3) int64 its triangles.
        body_vertices: (Vb, 3) the body model in this pose, body frame, metres.
    """

    number: int
    pose: FramePose
    vertices: torch.Tensor
    faces: torch.Tensor
    body_vertices: torch.Tensor


def make_subject(body: BodyModel, shapes: torch.Tensor) -> Subject:
    """The :class:`Subject` of a body model and shape parameters (S,)."""
    if shapes.ndim != 1 or shapes.shape[0] != body.shape_dim:
        raise ValueError(f"make_subject: shapes must be ({body.shape_dim},) for {body.name}, got {tuple(shapes.shape)}")
    with torch.no_grad():
        rest = body(torch.zeros(1, body.pose_dim), shapes.float()[None])
    return Subject(body, shapes.float(), rest.rest_vertices[0].float(), rest.rest_joints[0].float(),
                   rest.faces.long(), rest.skinning_weights.float())


def check_frame(subject: Subject, frame: PosedMeshFrame, root) -> None:
    """Raise InputError (naming the params file) unless the frame's pose and shape fit the subject."""
    path = root / PARAMS_DIR / f"{frame.number}.npy"
    body = subject.body
    if frame.poses.shape[0] != body.pose_dim:
        raise InputError(path, f"poses has {frame.poses.shape[0]} values, {body.name} takes {body.pose_dim}",
                         "use the body model the poses were made for (--body), or rewrite poses")
    if frame.shapes.shape != subject.shapes.shape or float((frame.shapes - subject.shapes).abs().max()) > SAME_SHAPE_TOLERANCE:
        raise InputError(path, f"shapes {frame.shapes.tolist()[:4]}... differ from the person's "
                         f"{subject.shapes.tolist()[:4]}...", "give frames of one person (the same --seed for synth)")


def prepare_frames(subject: Subject, frames: list[PosedMeshFrame]) -> list[PreparedFrame]:
    """Pose the body model for ``frames`` (one batch) and move their meshes to their body frames."""
    if not frames:
        return []
    body = subject.body
    poses = torch.stack([f.poses for f in frames])
    with torch.no_grad():
        out = body(poses, subject.shapes[None].expand(len(frames), -1))
    prepared = []
    for i, frame in enumerate(frames):
        pose = FramePose(out.bone_transforms[i].float(), frame.poses.float())
        vertices = world_to_body(frame.vertices.float(), frame.Rh, frame.Th)
        prepared.append(PreparedFrame(frame.number, pose, vertices, frame.faces, out.vertices[i].float()))
    return prepared
