"""The canonical avatar as a rigged mesh: its surface in the rest pose, coloured and skinned.

1. The canonical density ``sigma_c`` (:meth:`CanonicalAvatar.canonical
   <neuralbody.models.canonical_avatar.CanonicalAvatar.canonical>`) is sampled on a grid of
   ``voxel_size`` over the surface prior's box and marching cubes extracts the level set
   ``sigma_c = threshold`` (default: half the largest density, the middle of the step), in
   canonical metres (:mod:`neuralbody.evaluation.mesh_extraction`).
2. Vertex colours: the avatar's colour at the vertex in the rest pose, unrotated (``Rh = 0``),
   lit as in the capture: ``min(albedo * shading(n), 1)`` with ``n`` the surface prior's
   normal there (the rest pose turns nothing).
3. Skinning weights: the weight grid at the vertex, the four largest kept and renormalised.
4. Normals: the level set's (the density decreases outwards), from the mesh's faces.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuralbody.animation.gltf import SkinnedMesh
from neuralbody.evaluation.mesh_extraction import DensityGrid, Mesh, grid_over_box, largest_component, marching_cubes_world
from neuralbody.geometry.normals import vertex_normals

JOINTS_PER_VERTEX = 4


def canonical_density_grid(model, *, voxel_size: float, chunk_points: int = 65536) -> DensityGrid:
    """The avatar's canonical density (1/metres) on a grid of ``voxel_size`` metres over its prior's box."""
    values = model.prior_values
    low = model.prior_origin.detach().cpu().double().numpy()
    high = low + (np.array(values.shape[:3]) - 1) * model.prior_spacing.detach().cpu().double().numpy()
    origin, shape = grid_over_box(low, high, voxel_size)
    grid = DensityGrid(np.zeros(shape, dtype=np.float32), origin, float(voxel_size))
    points = torch.from_numpy(grid.points()).float().to(values.device)
    with torch.no_grad():
        density = torch.cat([model.canonical(chunk)[0] for chunk in points.split(chunk_points)])
    grid.density = density.cpu().numpy().reshape(shape).astype(np.float32)
    return grid


def top_weights(weights: torch.Tensor, count: int = JOINTS_PER_VERTEX) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` largest of weights (N, B) per row, renormalised: joints (N, count) int64, weights (N, count)."""
    if weights.ndim != 2 or weights.shape[1] < 1:
        raise ValueError(f"top_weights: weights must be (N, B), got {tuple(weights.shape)}")
    count_kept = min(count, weights.shape[1])
    values, joints = torch.topk(weights, count_kept, dim=1)
    values = values.clamp_min(0.0)
    values = values / values.sum(dim=1, keepdim=True).clamp_min(1e-12)
    if count_kept < count:  # fewer bones than slots: pad with joint 0 at weight 0
        values = F.pad(values, (0, count - count_kept))
        joints = F.pad(joints, (0, count - count_kept))
    return joints, values


def canonical_surface(model, *, voxel_size: float = 0.006, threshold: float | None = None,
                      largest: bool = True) -> SkinnedMesh:
    """The avatar's rest-pose surface with colours and skinning weights (module docstring).

    Args:
        model: a :class:`~neuralbody.models.canonical_avatar.CanonicalAvatar` with its rig.
        voxel_size: grid spacing, metres.
        threshold: density of the surface, 1/metres (None: half ``max_density``).
        largest: keep the largest connected part only (drops specks the density may hold).
    """
    if not bool(model.has_rig):
        raise ValueError("the avatar has no rig (an untrained model): export a trained run")
    level = 0.5 * model.config.max_density if threshold is None else float(threshold)
    mesh = marching_cubes_world(canonical_density_grid(model, voxel_size=voxel_size), level)
    if largest:
        mesh = largest_component(mesh)
    return _skinned(model, mesh)


def _skinned(model, mesh: Mesh) -> SkinnedMesh:
    """Colours, normals and skinning weights of a canonical mesh."""
    device = model.prior_values.device
    vertices = torch.from_numpy(mesh.vertices).float().to(device)
    faces = torch.from_numpy(mesh.faces).long().to(device)
    with torch.no_grad():
        _, features, prior_normals = model.canonical(vertices)
        shade = model.shading(F.normalize(prior_normals, dim=1, eps=1e-12))
        colours = (model.albedo(features) * shade).clamp(0.0, 1.0)
        joints, weights = top_weights(model.skinning.weights(vertices))
        normals = vertex_normals(vertices.double(), faces)
    return SkinnedMesh(
        vertices=mesh.vertices.astype(np.float32),
        faces=mesh.faces.astype(np.int64),
        normals=normals.float().cpu().numpy(),
        colours=colours.cpu().numpy(),
        joints=joints.cpu().numpy(),
        weights=weights.cpu().numpy(),
        joint_heads=model.rest_joints.detach().cpu().numpy().astype(np.float64),
        parents=[int(p) for p in model.parents.tolist()],
        joint_names=model.joint_names,
    )


def write_coloured_ply(path, mesh: SkinnedMesh):
    """Write the mesh with its vertex colours (8-bit sRGB) and normals as binary PLY, atomically."""
    import trimesh

    from neuralbody.io.atomic import atomic_path

    colours = np.clip(np.round(mesh.colours * 255.0), 0, 255).astype(np.uint8)
    shape = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, vertex_normals=mesh.normals,
                            vertex_colors=np.concatenate([colours, np.full((len(colours), 1), 255, np.uint8)], axis=1),
                            process=False)
    with atomic_path(path, keep_suffix=True) as tmp:
        shape.export(tmp)
    return path
