"""Triangle-mesh normals, once: face normals and area-weighted vertex normals (torch).

For a face ``(a, b, c)`` (vertex indices in winding order) the geometric normal is::

    n_f = (b - a) x (c - a),   |n_f| = 2 area_f,   unit normal n_f / |n_f|

It follows the winding (counter-clockwise seen from the side it points to) and is never
flipped towards a viewer. A vertex normal is the normalised sum of the unnormalised normals
of the faces around it, so each face counts in proportion to its area. Degenerate faces
and unreferenced vertices get zero normals, never NaN.
"""

from __future__ import annotations

import torch


def _check_mesh(vertices: torch.Tensor, faces: torch.Tensor, where: str) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(
            f"{where}: vertices must be (V, 3) and faces (F, 3), got {tuple(vertices.shape)} and {tuple(faces.shape)}"
        )


def face_area_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) unnormalised face normals ``(b - a) x (c - a)``, of length twice the face area.

    vertices: (V, 3) metres; faces: (F, 3) int64 vertex indices.
    """
    _check_mesh(vertices, faces, "face_area_normals")
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return torch.linalg.cross(b - a, c - a, dim=1)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) unit geometric face normals (winding order; zero for degenerate faces).

    vertices: (V, 3) metres; faces: (F, 3) int64 vertex indices.
    """
    n = face_area_normals(vertices, faces)
    return n / n.norm(dim=1, keepdim=True).clamp_min(1e-20)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V, 3) unit area-weighted vertex normals (zero for vertices no face uses).

    vertices: (V, 3) metres; faces: (F, 3) int64 vertex indices.
    """
    face_n = face_area_normals(vertices, faces)  # length = 2 x area
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals.index_add_(0, faces[:, k], face_n)
    return normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
