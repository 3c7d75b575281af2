"""What the canonical avatar knows about the person's body: the rest pose of their body model.

Built once, before training, from the body model and the person's shape
(:func:`canonical_rig`), and stored with the model, so that rendering needs no body model:

* the skeleton: rest joints (B, 3) and parents; a frame's bone transforms are the body
  model's forward kinematics of its pose vector (:func:`bone_transforms`, the SMPL form of
  :mod:`neuralbody.body.lbs`, which Anny and SMPL share);
* the skinning weights everywhere in canonical space
  (:func:`~neuralbody.skinning.weight_grid.weight_grid_from_mesh`);
* a surface prior on a dense grid of nodes (:func:`surface_prior`): per node the signed
  distance to the rest mesh (metres, negative inside) and the unit normal of its closest
  surface point. The avatar's density starts as a sharp step across that surface, and its
  shading turns those normals with the pose.

Canonical space is the body model's rest pose with the person's shape: body frame, metres
(Anny: z up, soles at z = 0).
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.body.base import BodyModel
from neuralbody.body.lbs import batch_rigid_transform
from neuralbody.geometry.box import body_box
from neuralbody.geometry.rotations import axis_angle_to_matrix


@dataclasses.dataclass
class CanonicalRig:
    """A body model's rest pose for one person (V vertices, F faces, B bones), canonical, metres.

    Attributes:
        rest_vertices: (V, 3) rest-pose vertices.
        faces: (F, 3) int64 triangles.
        skinning_weights: (V, B) per-vertex weights, rows summing to one.
        rest_joints: (B, 3) rest-pose bone heads.
        parents: B parent indices (-1 for a root), parents before children.
        joint_names: B bone names (``joint_000`` ... when the body model has none).
        model: the body model's name.
    """

    rest_vertices: torch.Tensor
    faces: torch.Tensor
    skinning_weights: torch.Tensor
    rest_joints: torch.Tensor
    parents: list[int]
    joint_names: list[str]
    model: str


def canonical_rig(body_model: BodyModel, shapes: torch.Tensor | None = None) -> CanonicalRig:
    """The rest pose of ``body_model`` with shape parameters ``shapes`` (S,) (None: the mean shape)."""
    if shapes is not None and shapes.numel() != body_model.shape_dim:
        raise ValueError(f"canonical_rig: {body_model.name} takes {body_model.shape_dim} shape parameters, "
                         f"got {shapes.numel()}")
    with torch.no_grad():
        rest = body_model(torch.zeros(1, body_model.pose_dim),
                          None if shapes is None else shapes.reshape(1, -1).float())
    names = list(body_model.joint_names)
    return CanonicalRig(
        rest_vertices=rest.rest_vertices[0].float().cpu(),
        faces=rest.faces.long().cpu(),
        skinning_weights=rest.skinning_weights.float().cpu(),
        rest_joints=rest.rest_joints[0].float().cpu(),
        parents=[int(p) for p in body_model.parents],
        joint_names=names,
        model=body_model.name,
    )


def bone_transforms(rest_joints: torch.Tensor, parents: list[int], poses: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) bone transforms, rest pose to the posed body frame, of a pose vector.

    Args:
        rest_joints: (B, 3) rest bone heads, canonical, metres.
        parents: B parent indices.
        poses: (3 B,) axis-angle per bone, radians, root first (the body model's pose vector).
    """
    count = rest_joints.shape[0]
    if rest_joints.ndim != 2 or rest_joints.shape[1] != 3:
        raise ValueError(f"bone_transforms: rest_joints must be (B, 3), got {tuple(rest_joints.shape)}")
    if poses.numel() != 3 * count:
        raise ValueError(f"bone_transforms: the skeleton has {count} bones, so poses needs {3 * count} values; "
                         f"got {poses.numel()}")
    rotations = axis_angle_to_matrix(poses.reshape(1, count, 3).to(rest_joints))
    return batch_rigid_transform(rest_joints[None], rotations, parents).bone_transforms[0]


@dataclasses.dataclass
class SurfacePrior:
    """Signed distance and surface normal on a dense grid of canonical nodes.

    Attributes:
        values: (X, Y, Z, 4) per node: signed distance to the rest mesh (metres, negative
            inside), then the unit normal (3) of the closest surface point.
        origin: (3,) canonical position of node (0, 0, 0), metres.
        spacing: (3,) distance between nodes per axis, metres.
    """

    values: torch.Tensor
    origin: torch.Tensor
    spacing: torch.Tensor


def surface_prior(rest_vertices: torch.Tensor, faces: torch.Tensor, *, voxel_size: float,
                  padding: float) -> SurfacePrior:
    """The :class:`SurfacePrior` of a rest mesh over its box padded by ``padding`` metres.

    Args:
        rest_vertices: (V, 3) canonical vertices, metres.
        faces: (F, 3) int64 outward-facing triangles.
        voxel_size: distance between nodes, metres (rounded so the nodes span the box exactly).
        padding: metres added around the vertices' box.

    Normals are the area-weighted vertex normals interpolated at the closest point
    (barycentrics), so they vary smoothly over the surface; signs come from the winding
    number (:class:`~neuralbody.geometry.queries.WarpMesh`).
    """
    from neuralbody.geometry.normals import vertex_normals
    from neuralbody.geometry.queries import WarpMesh
    from neuralbody.skinning.weight_grid import grid_nodes

    if rest_vertices.ndim != 2 or rest_vertices.shape[1] != 3:
        raise ValueError(f"surface_prior: rest_vertices must be (V, 3), got {tuple(rest_vertices.shape)}")
    if voxel_size <= 0 or padding < 0:
        raise ValueError(f"surface_prior: voxel_size must be > 0 and padding >= 0, got {voxel_size}, {padding}")
    vertices = rest_vertices.detach().double().cpu()
    faces = faces.detach().long().cpu()
    low, high = body_box(vertices, padding)
    shape = tuple(int(n) for n in (torch.ceil((high - low) / voxel_size).long() + 1).clamp_min(2))
    spacing = (high - low) / (torch.tensor(shape, dtype=torch.float64) - 1)
    nodes = grid_nodes(low, spacing, shape).reshape(-1, 3)
    mesh = WarpMesh(vertices, faces)
    closest = mesh.closest_points(nodes)
    distance = closest.distances.double()
    distance = torch.where(mesh.inside(nodes), -distance, distance)
    normals = vertex_normals(vertices, faces)[faces[closest.face_ids]]  # (M, 3 corners, 3)
    normals = (closest.barycentrics.double()[:, :, None] * normals).sum(dim=1)
    normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
    values = torch.cat([distance[:, None], normals], dim=1).reshape(*shape, 4)
    return SurfacePrior(values.float(), low.float(), spacing.float())
