"""A coloured scan's colour at any point: the vertex colours interpolated at the closest surface point.

A scan stores its albedo per vertex (:class:`~neuralbody.gdna.scans.Scan`). The colour at a
point ``x`` is the colour of the mesh at its closest surface point ``q(x)``, interpolated
linearly over the face holding it::

    c(x) = sum_k b_k(q(x)) c_{f_k}

``b`` the barycentric weights of ``q(x)`` on its face ``f``. On the surface (``q(x) = x``) this
is the mesh's own colour; off it, the nearest colour. It serves as the colour network's training
target at surface samples and to score a fitted surface's colours (:func:`colour_error`, the mean
absolute RGB error in 0-255 units). Metres; colours in [0, 1].
"""

from __future__ import annotations

import torch

from neuralbody.geometry.queries import WarpMesh, closest_points_reference


def _check(vertices: torch.Tensor, faces: torch.Tensor, colours: torch.Tensor, points: torch.Tensor) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or colours.shape != vertices.shape:
        raise ValueError(f"surface_colours: vertices and colours must be (V, 3), got {tuple(vertices.shape)}, "
                         f"{tuple(colours.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3 or points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"surface_colours: faces (F, 3) and points (N, 3), got {tuple(faces.shape)}, {tuple(points.shape)}")


def surface_colours(vertices: torch.Tensor, faces: torch.Tensor, colours: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, 3) float32 colours ``c(x)`` (module docstring) at points (N, 3), metres.

    Args:
        vertices: (V, 3) the mesh, metres.
        faces: (F, 3) int64 triangles.
        colours: (V, 3) vertex colours in [0, 1].
        points: (N, 3) query points, same frame as the mesh.
    """
    _check(vertices, faces, colours, points)
    closest = WarpMesh(vertices.float(), faces.long()).closest_points(points.float())
    corners = colours.float()[faces.long()[closest.face_ids.long()]]  # (N, 3 vertices, 3 channels)
    return (closest.barycentrics.float()[:, :, None] * corners).sum(dim=1)


def surface_colours_reference(vertices: torch.Tensor, faces: torch.Tensor, colours: torch.Tensor,
                              points: torch.Tensor) -> torch.Tensor:
    """:func:`surface_colours` with the brute-force closest point, in float64 (test oracle)."""
    _check(vertices, faces, colours, points)
    closest = closest_points_reference(vertices.double(), faces.long(), points.double())
    out = torch.zeros(len(points), 3, dtype=torch.float64)
    for i in range(len(points)):
        face = faces[int(closest.face_ids[i])].long()
        for k in range(3):
            out[i] += float(closest.barycentrics[i, k]) * colours[face[k]].double()
    return out


def colour_error(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute RGB error ``255 mean |c - c'|`` (0-255 units) of colours (N, 3) in [0, 1]."""
    if predicted.ndim != 2 or predicted.shape[1] != 3 or target.shape != predicted.shape or not len(predicted):
        raise ValueError(f"colour_error: predicted and target must be non-empty (N, 3), got {tuple(predicted.shape)}, "
                         f"{tuple(target.shape)}")
    return 255.0 * float((predicted.double() - target.double()).abs().mean())
