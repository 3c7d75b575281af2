"""Points sampled uniformly by area on a triangle mesh, once (metrics, occupancy samples).

A face is drawn with probability ``area_f / sum area``; on it, with ``r1, r2 ~ U(0, 1)``,
``x = (1 - sqrt(r1)) a + sqrt(r1) (1 - r2) b + sqrt(r1) r2 c`` is uniform on the triangle.
Random numbers come from ``numpy.random.default_rng(seed)``, so samples are identical on
every device.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from neuralbody.geometry.normals import face_area_normals, face_normals


class SurfaceSamples(NamedTuple):
    """Points sampled on a mesh surface (torch tensors on the mesh's device).

    points: (M, 3) metres. normals: (M, 3) unit face normals (face winding). face_ids: (M,) int64.
    """

    points: torch.Tensor
    normals: torch.Tensor
    face_ids: torch.Tensor


def mesh_tensors(vertices, faces, where: str, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A triangle mesh as float64 vertices (V, 3), metres, and int64 faces (F, 3), checked.

    Args:
        vertices: (V, 3) metres (numpy or torch).
        faces: (F, 3) triangle indices, at least one.
        where: names the caller in the ValueError.
        device: where the tensors go (default: the vertices' device).
    """
    vertices = vertices if isinstance(vertices, torch.Tensor) else torch.as_tensor(np.asarray(vertices))
    faces = faces if isinstance(faces, torch.Tensor) else torch.as_tensor(np.asarray(faces))
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{where}: vertices must be (V, 3) metres, got shape {tuple(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise ValueError(f"{where}: faces must be a non-empty (F, 3) triangle array, got shape {tuple(faces.shape)}")
    device = vertices.device if device is None else device
    return vertices.detach().to(device=device, dtype=torch.float64), faces.detach().to(device=device, dtype=torch.int64)


def sample_surface(vertices, faces, num_points: int, seed: int = 0) -> SurfaceSamples:
    """Sample points uniformly by area on a triangle mesh (see the module docstring).

    Args:
        vertices: (V, 3) metres (numpy or torch).
        faces: (F, 3) int triangle indices.
        num_points: M, the number of samples.
        seed: random seed.

    Returns:
        :class:`SurfaceSamples` (points (M, 3), unit face normals (M, 3), face ids (M,)) as float64
        / int64 tensors on the device of ``vertices``.
    """
    vertices, faces = mesh_tensors(vertices, faces, "sample_surface")
    if num_points <= 0:
        raise ValueError(f"sample_surface: num_points must be positive, got {num_points}")
    areas = 0.5 * face_area_normals(vertices, faces).norm(dim=1)
    normals = face_normals(vertices, faces)
    total = float(areas.sum())
    if not total > 0:
        raise ValueError("sample_surface: the mesh has zero surface area")
    rng = np.random.default_rng(seed)
    probabilities = (areas / total).cpu().numpy()
    face_ids = torch.as_tensor(rng.choice(len(probabilities), size=num_points, p=probabilities), device=vertices.device)
    r = torch.as_tensor(rng.random((num_points, 2)), device=vertices.device)
    sqrt_r1, r2 = r[:, :1].sqrt(), r[:, 1:]
    corners = vertices[faces[face_ids]]  # (M, 3, 3)
    points = (1 - sqrt_r1) * corners[:, 0] + sqrt_r1 * (1 - r2) * corners[:, 1] + sqrt_r1 * r2 * corners[:, 2]
    return SurfaceSamples(points=points, normals=normals[face_ids], face_ids=face_ids)
