"""Normal consistency of points with given normals against a mesh: how a mesh's normal map is scored.

:func:`neuralbody.evaluation.geometry_metrics.normal_consistency` scores a mesh by its own face
normals. A gDNA surface wears normals of its own (the detail network's), so it is scored at its
vertices with those normals::

    NC = mean_v |<n_v, n_gt(q(x_v))>|

``q(x)`` the closest point of the ground-truth mesh, ``n_gt`` its face's unit normal; in [0, 1],
1 when every normal matches (orientation-agnostic, as the mesh metric). Scoring the coarse
surface's own vertex normals the same way gives the comparison without the detail network.
"""

from __future__ import annotations

import torch

from neuralbody.geometry.normals import face_normals
from neuralbody.geometry.queries import WarpMesh, closest_points_reference


def _check(points: torch.Tensor, normals: torch.Tensor) -> None:
    if points.ndim != 2 or points.shape[1] != 3 or normals.shape != points.shape or not len(points):
        raise ValueError(f"normal consistency: points and normals must be non-empty (N, 3), got {tuple(points.shape)}, "
                         f"{tuple(normals.shape)}")


def point_normal_consistency(points: torch.Tensor, normals: torch.Tensor, gt_vertices: torch.Tensor,
                             gt_faces: torch.Tensor) -> float:
    """NC (module docstring) of points (N, 3) metres with unit normals (N, 3) against a mesh (V, 3), (F, 3)."""
    _check(points, normals)
    closest = WarpMesh(gt_vertices.float(), gt_faces).closest_points(points.float())
    gt_normals = face_normals(gt_vertices.float(), gt_faces)[closest.face_ids]
    return float((normals.float() * gt_normals).sum(dim=1).abs().mean())


def point_normal_consistency_reference(points: torch.Tensor, normals: torch.Tensor, gt_vertices: torch.Tensor,
                                       gt_faces: torch.Tensor) -> float:
    """:func:`point_normal_consistency` with the brute-force closest point (test oracle)."""
    _check(points, normals)
    closest = closest_points_reference(gt_vertices.double(), gt_faces, points.double())
    gt_normals = face_normals(gt_vertices.double(), gt_faces)
    total = 0.0
    for normal, face in zip(normals.double(), closest.face_ids):
        total += abs(float(normal @ gt_normals[int(face)]))
    return total / len(points)
