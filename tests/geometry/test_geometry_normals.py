"""neuralbody.geometry.normals: face and area-weighted vertex normals, known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuralbody.geometry.normals import face_area_normals, face_normals, vertex_normals

# A regular octahedron: vertices on the axes, faces wound counter-clockwise seen from outside.
OCTA_VERTICES = torch.tensor(
    [[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 1.0], [0, 0, -1.0]], dtype=torch.float64
)
OCTA_FACES = torch.tensor(
    [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]], dtype=torch.int64
)


def test_octahedron_face_normals_point_to_the_octants():
    normals = face_normals(OCTA_VERTICES, OCTA_FACES)
    centroids = OCTA_VERTICES[OCTA_FACES].mean(dim=1)
    # the outward normal of the face in octant (sx, sy, sz) is (sx, sy, sz) / sqrt(3)
    expected = torch.sign(centroids) / math.sqrt(3.0)
    torch.testing.assert_close(normals, expected, atol=1e-15, rtol=0)
    # twice the area: each face is equilateral with side sqrt(2), area sqrt(3) / 2
    torch.testing.assert_close(face_area_normals(OCTA_VERTICES, OCTA_FACES).norm(dim=1), torch.full((8,), math.sqrt(3.0), dtype=torch.float64))
    # reversing the winding flips the normal
    torch.testing.assert_close(face_normals(OCTA_VERTICES, OCTA_FACES.flip(1)), -expected, atol=1e-15, rtol=0)


def test_octahedron_vertex_normals_are_the_axes():
    torch.testing.assert_close(vertex_normals(OCTA_VERTICES, OCTA_FACES), OCTA_VERTICES, atol=1e-15, rtol=0)


def test_vertex_normals_weight_faces_by_area():
    # two triangles share vertex 0: a big one in the z = 0 plane (normal +z, area 2) and a small
    # one in the x = 0 plane (normal +x, area 0.5): the normal is (0.5, 0, 2) normalised
    vertices = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [0, 2.0, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 3, 4]])
    expected = torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(vertex_normals(vertices, faces)[0], expected / expected.norm(), atol=1e-15, rtol=0)
    torch.testing.assert_close(vertex_normals(vertices, faces)[1], torch.tensor([0.0, 0, 1], dtype=torch.float64))


def test_sphere_vertex_normals_are_radial():
    trimesh = pytest.importorskip("trimesh")
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    normals = vertex_normals(torch.tensor(sphere.vertices), torch.tensor(sphere.faces))
    np.testing.assert_allclose(normals.norm(dim=1).numpy(), 1.0, atol=1e-9)
    assert ((normals * torch.tensor(sphere.vertices)).sum(1) / 0.7 > 0.999).all()
    np.testing.assert_allclose(face_normals(torch.tensor(sphere.vertices), torch.tensor(sphere.faces)).numpy(),
                               sphere.face_normals, atol=1e-12)  # trimesh's own, computed independently


def test_degenerate_faces_and_unused_vertices_give_zero_not_nan():
    vertices = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [5.0, 5, 5]])
    faces = torch.tensor([[0, 1, 2]])  # collinear: zero area
    assert torch.equal(face_normals(vertices, faces), torch.zeros(1, 3))
    assert torch.equal(vertex_normals(vertices, faces), torch.zeros(4, 3))


def test_guards():
    with pytest.raises(ValueError, match="face_area_normals"):
        face_normals(torch.zeros(4, 2), torch.zeros(1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="face_area_normals"):
        vertex_normals(torch.zeros(4, 3), torch.zeros(3, dtype=torch.int64))
