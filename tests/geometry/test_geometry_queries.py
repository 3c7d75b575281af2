"""Warp mesh queries against brute force (closest points, winding numbers) and analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from neuralbody.geometry.queries import (
    WarpMesh,
    closest_point_on_triangles,
    closest_points,
    closest_points_reference,
    inside,
    signed_distance,
    winding_number_reference,
)


@pytest.fixture(scope="module")
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


@pytest.fixture(scope="module")
def box():
    mesh = trimesh.creation.box(extents=(0.4, 0.6, 0.8))
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def test_closest_point_on_triangle_regions():
    """One point in each Voronoi region of a unit right triangle, answers by hand."""
    a, b, c = (torch.tensor(v, dtype=torch.float64) for v in ([0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]))
    points = torch.tensor(
        [
            [0.2, 0.3, 0.5],  # above the face
            [-1.0, -1.0, 0.0],  # vertex a
            [2.0, -0.5, 0.0],  # vertex b
            [-0.5, 2.0, 1.0],  # vertex c
            [0.5, -1.0, 0.0],  # edge ab
            [-1.0, 0.5, 0.0],  # edge ac
            [1.0, 1.0, -2.0],  # edge bc
        ],
        dtype=torch.float64,
    )
    expected = torch.tensor(
        [[0.2, 0.3, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0.5, 0, 0], [0, 0.5, 0], [0.5, 0.5, 0]], dtype=torch.float64
    )
    closest, weights = closest_point_on_triangles(points, a, b, c)
    torch.testing.assert_close(closest, expected)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(7, dtype=torch.float64))
    assert bool((weights >= -1e-12).all())
    torch.testing.assert_close(weights[:, :1] * a + weights[:, 1:2] * b + weights[:, 2:] * c, closest)


def test_closest_points_match_brute_force(sphere, box):
    rng = np.random.default_rng(0)
    for vertices, faces in (sphere, box):
        points = rng.normal(scale=0.5, size=(400, 3))
        fast = closest_points(vertices, faces, points)
        slow = closest_points_reference(vertices, faces, points)
        assert isinstance(fast.points, np.ndarray) and fast.points.dtype == np.float64
        np.testing.assert_allclose(fast.distances, slow.distances, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(points - fast.points, axis=1), fast.distances, atol=1e-12)
        # The closest point is on the reported face at the reported barycentrics.
        corners = vertices[faces[fast.face_ids]]
        np.testing.assert_allclose(np.einsum("nk,nkd->nd", fast.barycentrics, corners), fast.points, atol=1e-12)
        np.testing.assert_allclose(fast.barycentrics.sum(axis=1), 1.0, atol=1e-6)
        assert fast.barycentrics.min() > -1e-5


def test_closest_points_on_box_analytic(box):
    """Outside an axis-aligned box the distance is |max(|p| - h, 0)|; inside it is min(h - |p|)."""
    vertices, faces = box
    half = np.array([0.2, 0.3, 0.4])
    rng = np.random.default_rng(1)
    points = rng.uniform(-0.7, 0.7, size=(2000, 3))
    excess = np.abs(points) - half
    outside = (excess > 0).any(axis=1)
    expected = np.where(outside, np.linalg.norm(np.maximum(excess, 0), axis=1), np.min(-excess, axis=1))
    mesh = WarpMesh(vertices, faces)
    np.testing.assert_allclose(mesh.closest_points(points).distances, expected, atol=1e-6)
    np.testing.assert_array_equal(mesh.inside(points), ~outside)
    np.testing.assert_allclose(mesh.signed_distance(points), np.where(outside, expected, -expected), atol=1e-6)


def test_inside_matches_exact_winding_number(sphere):
    vertices, faces = sphere
    rng = np.random.default_rng(2)
    points = rng.uniform(-0.7, 0.7, size=(500, 3))
    exact = winding_number_reference(vertices, faces, points)
    np.testing.assert_allclose(WarpMesh(vertices, faces).winding_numbers(points), exact, atol=1e-2)
    np.testing.assert_array_equal(inside(vertices, faces, points), exact > 0.5)
    # Far from the surface the exact winding number is 0 or 1.
    radius = np.linalg.norm(points, axis=1)
    np.testing.assert_allclose(exact[radius < 0.4], 1.0, atol=1e-9)
    np.testing.assert_allclose(exact[radius > 0.6], 0.0, atol=1e-9)


def test_inside_is_robust_to_a_hole(sphere):
    """Remove a few faces: the winding number still calls the centre inside and far points outside."""
    vertices, faces = sphere
    open_faces = faces[6:]
    points = np.array([[0.0, 0.0, 0.0], [0.1, -0.1, 0.05], [2.0, 0.0, 0.0], [0.0, -3.0, 1.0]])
    np.testing.assert_array_equal(inside(vertices, open_faces, points), [True, True, False, False])
    exact = winding_number_reference(vertices, open_faces, points[:1])
    assert 0.5 < exact[0] < 1.0  # the hole lets some solid angle escape


def test_signed_distance_on_sphere_analytic(sphere):
    """For a fine icosphere, sdf(p) ~ |p| - r up to the tessellation error (sagitta)."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    rng = np.random.default_rng(3)
    points = rng.normal(size=(1000, 3))
    points *= rng.uniform(0.05, 1.0, size=(1000, 1)) / np.linalg.norm(points, axis=1, keepdims=True)
    sdf = signed_distance(mesh.vertices, mesh.faces, points)
    np.testing.assert_allclose(sdf, np.linalg.norm(points, axis=1) - 0.5, atol=2e-3)


def test_torch_in_torch_out(sphere):
    vertices, faces = sphere
    points = torch.randn(50, 3, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    mesh = WarpMesh(torch.as_tensor(vertices), torch.as_tensor(faces))
    result = mesh.closest_points(points)
    assert isinstance(result.points, torch.Tensor) and result.points.dtype == torch.float32
    assert result.face_ids.dtype == torch.int64 and result.points.shape == (50, 3)
    flags = mesh.inside(points)
    assert isinstance(flags, torch.Tensor) and flags.dtype == torch.bool
    np.testing.assert_allclose(
        result.distances.numpy(), closest_points_reference(vertices, faces, points.double().numpy()).distances, atol=1e-5
    )
    empty = mesh.closest_points(torch.zeros(0, 3))
    assert empty.distances.shape == (0,)


def test_degenerate_faces_are_skipped():
    """A collinear 'triangle' has no area: Warp ignores it; with nothing else the answer is 'no face'."""
    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 0, 1], [0, 1, 1], [0, 0, 2]])
    query = np.array([[0.5, 0.0, 0.0]])
    only_degenerate = closest_points(vertices, np.array([[0, 1, 2]]), query)
    assert only_degenerate.face_ids[0] == -1 and np.isinf(only_degenerate.distances[0])
    np.testing.assert_array_equal(only_degenerate.barycentrics, 0.0)
    with_real_face = closest_points(vertices, np.array([[0, 1, 2], [3, 4, 5]]), query)
    assert with_real_face.face_ids[0] == 1
    np.testing.assert_allclose(with_real_face.distances, np.hypot(0.5, 1.0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(sphere):
    vertices, faces = sphere
    points = torch.randn(1000, 3, dtype=torch.float64)
    cpu = WarpMesh(vertices, faces).closest_points(points)
    gpu = WarpMesh(torch.as_tensor(vertices).cuda(), torch.as_tensor(faces).cuda()).closest_points(points.cuda())
    assert gpu.distances.device.type == "cuda"
    torch.testing.assert_close(gpu.distances.cpu(), cpu.distances, atol=1e-6, rtol=0)
    assert torch.equal(inside(vertices, faces, points.cuda()).cpu(), inside(vertices, faces, points))


def test_shape_guards(sphere):
    vertices, faces = sphere
    with pytest.raises(ValueError, match="vertices must be"):
        WarpMesh(vertices[:, :2], faces)
    with pytest.raises(ValueError, match="faces must be"):
        WarpMesh(vertices, np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="face indices"):
        WarpMesh(vertices, faces + len(vertices))
    with pytest.raises(ValueError, match="no faces"):
        WarpMesh(vertices, np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="points must be"):
        closest_points(vertices, faces, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="points must be"):
        inside(vertices, faces, np.zeros(3))
