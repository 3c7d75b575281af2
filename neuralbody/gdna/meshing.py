"""A person of the model as a mesh with normals: canonical surface, detail normals, posed by forward skinning.

* :func:`canonical_mesh`: the coarse network's ``o = 0`` level set (logit 0, probability 1/2)
  over the person's canonical box (their skinning grid's box), by marching cubes
  (:func:`neuralbody.evaluation.mesh_extraction.marching_cubes_world`), largest component kept;
* :func:`vertex_normals_of`: the normals the mesh wears, the detail network's at its vertices
  (``detail=True``) or the coarse surface's own (area-weighted face normals,
  :func:`neuralbody.geometry.normals.vertex_normals`);
* :func:`vertex_colours_of`: the colour network's albedo at the vertices (a model with colour);
* :func:`pose_mesh`: vertices moved by forward skinning ``x' = sum_b w_b(x) G_b [x; 1]`` with the
  person's fixed or learned weights (:class:`~neuralbody.gdna.shape_skinning.ShapeSkinning`) and
  normals by ``J^{-T} n``;
  colours stay (they belong to the canonical point);
* :func:`write_ply`: binary PLY with per-vertex normals (and 8-bit RGBA colours when the mesh has
  them), written atomically.

Canonical: the person's rest pose; posed: the body frame of the bone transforms; metres.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from neuralbody.evaluation.mesh_extraction import DensityGrid, Mesh, grid_over_box, largest_component, marching_cubes_world
from neuralbody.gdna.correspondences import posed_normals
from neuralbody.gdna.model import GenerativeModel
from neuralbody.gdna.shape_skinning import ShapeSkinning
from neuralbody.geometry.normals import vertex_normals
from neuralbody.io.atomic import atomic_path
from neuralbody.skinning.forward_skinning import invert_jacobians

CHUNK = 65536  # grid points a network call


@dataclasses.dataclass
class Person:
    """One person's codes.

    Attributes:
        shape_code: (Ls,) ``z_shape``.
        detail_code: (Ld,) ``z_detail``.
        shapes: (S,) the body shape ``beta``.
        colour_code: (Lc,) ``z_colour``, or None (a model without colour).
    """

    shape_code: torch.Tensor
    detail_code: torch.Tensor
    shapes: torch.Tensor
    colour_code: torch.Tensor | None = None


@dataclasses.dataclass
class NormalMesh:
    """A mesh with unit vertex normals: vertices (V, 3) float64 metres, faces (F, 3) int64, normals (V, 3),
    and optional vertex colours (V, 3) float in [0, 1] (None: no colour)."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colours: np.ndarray | None = None


def canonical_logits(model: GenerativeModel, person: Person, box_min: torch.Tensor, box_max: torch.Tensor,
                     voxel: float) -> DensityGrid:
    """The coarse logits of ``person`` on a grid of ``voxel`` metres over the canonical box (3,), (3,)."""
    origin, shape = grid_over_box(box_min.numpy(), box_max.numpy(), voxel)
    axes = [torch.as_tensor(origin[a] + np.arange(n) * voxel, dtype=torch.float32) for a, n in enumerate(shape)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    with torch.no_grad():
        logits = torch.cat([model.coarse(points[i : i + CHUNK], person.shape_code, person.shapes)[0]
                            for i in range(0, len(points), CHUNK)])
    return DensityGrid(logits.reshape(shape).numpy().astype(np.float32), origin, float(voxel))


def canonical_mesh(model: GenerativeModel, person: Person, skinning: ShapeSkinning, voxel: float = 0.02) -> Mesh:
    """The canonical surface (logit 0) of ``person`` over their skinning box (ValueError when it is empty)."""
    grid = canonical_logits(model, person, skinning.box_min, skinning.box_max, voxel)
    if not (grid.density.min() < 0.0 < grid.density.max()):
        raise ValueError(f"the person's canonical surface is empty (logits in [{grid.density.min():.2f}, "
                         f"{grid.density.max():.2f}], no crossing of 0); train the model longer")
    grid = dataclasses.replace(grid, density=grid.density + 100.0)  # marching_cubes_world pads with 0: shift
    return largest_component(marching_cubes_world(grid, 100.0))


def vertex_normals_of(model: GenerativeModel, person: Person, mesh: Mesh, *, detail: bool) -> np.ndarray:
    """(V, 3) unit normals of a canonical mesh: the detail network's, or the surface's own (module docstring)."""
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    if not detail:
        return vertex_normals(vertices, torch.as_tensor(mesh.faces)).numpy().astype(np.float64)
    with torch.no_grad():
        normals = torch.cat([model.normals(vertices[i : i + CHUNK], person.shape_code, person.detail_code, person.shapes)
                             for i in range(0, len(vertices), CHUNK)])
    return normals.numpy().astype(np.float64)


def vertex_colours_of(model: GenerativeModel, person: Person, vertices: np.ndarray) -> np.ndarray:
    """(V, 3) albedo in [0, 1] of the colour network at canonical vertices (V, 3), metres.

    ValueError when the model has no colour network or the person no colour code.
    """
    if person.colour_code is None:
        raise ValueError("vertex_colours_of: the person has no colour code")
    points = torch.as_tensor(np.asarray(vertices), dtype=torch.float32)
    with torch.no_grad():
        colours = torch.cat([model.colours(points[i : i + CHUNK], person.shape_code, person.colour_code, person.shapes)
                             for i in range(0, len(points), CHUNK)])
    return colours.numpy().astype(np.float64)


def pose_mesh(mesh: NormalMesh, skinning: ShapeSkinning, bone_transforms: torch.Tensor) -> NormalMesh:
    """The canonical mesh with normals posed by bone transforms (B, 4, 4) (module docstring)."""
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    with torch.no_grad():
        posed, jacobian = skinning.skin_with_jacobian(vertices, bone_transforms)
        inverse, _ = invert_jacobians(jacobian)
        normals = posed_normals(torch.tensor(np.asarray(mesh.normals), dtype=torch.float32), inverse.transpose(1, 2))
    return NormalMesh(posed.double().numpy(), mesh.faces, normals.double().numpy(), mesh.colours)


def write_ply(path: str | Path, mesh: NormalMesh) -> Path:
    """Write the mesh with its vertex normals (and colours, 8-bit RGBA) as binary PLY, atomically."""
    import trimesh

    path = Path(path)
    colours = None
    if mesh.colours is not None:
        rgb = np.clip(np.round(255.0 * np.asarray(mesh.colours, dtype=np.float64)), 0, 255).astype(np.uint8)
        colours = np.concatenate([rgb, np.full((len(rgb), 1), 255, dtype=np.uint8)], axis=1)
    shape = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, vertex_normals=mesh.normals,
                            vertex_colors=colours, process=False)
    with atomic_path(path, keep_suffix=True) as tmp:
        shape.export(tmp)
    return path
