"""Normal-guided refinement: known answers (a tilted plane, a sphere with its own normals), limits, the dense oracle."""

import numpy as np
import pytest
import trimesh

from neuralbody.gdna.detail_surface import (RefineOptions, mesh_edges, refine_along_normals,
                                            refine_along_normals_reference)
from neuralbody.geometry.normals import vertex_normals


def grid_plane(count: int = 7, spacing: float = 0.1):
    """A flat square grid in z = 0, faces counter-clockwise seen from +z."""
    xs, ys = np.meshgrid(np.arange(count) * spacing, np.arange(count) * spacing, indexing="ij")
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(count * count)], axis=1)
    faces = []
    for a in range(count - 1):
        for b in range(count - 1):
            p, q, r, s = a * count + b, (a + 1) * count + b, (a + 1) * count + b + 1, a * count + b + 1
            faces += [[p, q, r], [p, r, s]]
    return vertices, np.array(faces)


def sphere(subdivisions: int = 2):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.3)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def own_normals(vertices, faces):
    import torch

    return vertex_normals(torch.from_numpy(vertices), torch.from_numpy(faces)).numpy()


def tilted(count: int, slope: float = 0.3):
    return np.tile(np.array([-slope, 0.0, 1.0]) / np.hypot(slope, 1.0), (count, 1))


def test_tilted_normals_move_a_plane_along_its_normal_into_the_plane_they_describe():
    vertices, faces = grid_plane()
    slope, target = 0.3, tilted(len(grid_plane()[0]))
    result = refine_along_normals(vertices, faces, target, RefineOptions(screening_length=1e4, motion="normal"))
    x = vertices[:, 0]
    np.testing.assert_allclose(result.coarse_normals, np.tile([0.0, 0.0, 1.0], (len(vertices), 1)), atol=1e-12)
    np.testing.assert_allclose(result.displacement[:, 2], slope * (x - x.mean()), atol=1e-6)
    np.testing.assert_allclose(result.vertices[:, :2], vertices[:, :2], atol=1e-12)
    np.testing.assert_allclose(own_normals(result.vertices, faces), target, atol=1e-6)
    assert result.kept.all()


def test_free_motion_projects_a_plane_onto_the_plane_the_normals_describe():
    vertices, faces = grid_plane()
    target = tilted(len(vertices))
    result = refine_along_normals(vertices, faces, target, RefineOptions(screening_length=1e4, motion="free"))
    centred = vertices - vertices.mean(axis=0)
    expected = vertices - (centred @ target[0])[:, None] * target[0]  # the least motion onto such a plane
    np.testing.assert_allclose(result.vertices, expected, atol=1e-6)
    np.testing.assert_allclose(own_normals(result.vertices, faces), target, atol=1e-6)


@pytest.mark.parametrize("motion", ["normal", "free"])
def test_screening_shrinks_the_integrated_slope_and_short_length_keeps_the_mesh(motion):
    vertices, faces = grid_plane()
    target = tilted(len(vertices))
    slopes = []
    for length in (0.05, 0.2, 1.0):
        z = refine_along_normals(vertices, faces, target, RefineOptions(length, motion)).vertices[:, 2]
        slopes.append(np.polyfit(vertices[:, 0], z, 1)[0])
    assert 0.0 < slopes[0] < slopes[1] < slopes[2] < 0.3
    still = refine_along_normals(vertices, faces, target, RefineOptions(1e-9, motion))
    assert np.abs(still.displacement).max() < 1e-10
    np.testing.assert_allclose(still.vertices, vertices, atol=1e-10)


@pytest.mark.parametrize("motion", ["normal", "free"])
def test_a_sphere_given_its_radial_normals_stays_where_it_is(motion):
    vertices, faces = sphere()
    radial = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    result = refine_along_normals(vertices, faces, radial, RefineOptions(10.0, motion))
    np.testing.assert_allclose(result.vertices, vertices, atol=1e-10)  # "free" solves for positions: round-off
    # Nehab's constraint at each end (edges perpendicular to the normal there) would shrink it: the chords are not.
    edges = mesh_edges(faces)
    chord = ((vertices[edges[:, 1]] - vertices[edges[:, 0]]) * radial[edges[:, 0]]).sum(axis=1)
    assert np.abs(chord).min() > 1e-4


@pytest.mark.parametrize("motion", ["normal", "free"])
def test_bumps_the_normals_do_not_have_are_flattened(motion):
    vertices, faces = sphere(subdivisions=3)
    radial = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    bumpy = vertices * (1.0 + 0.02 * np.random.default_rng(1).standard_normal((len(vertices), 1)))
    result = refine_along_normals(bumpy, faces, radial, RefineOptions(1.0, motion))
    radii = np.linalg.norm(result.vertices, axis=1)
    assert radii.std() < 0.1 * np.linalg.norm(bumpy, axis=1).std()
    assert abs(radii.mean() - 0.3) < 0.05 * 0.3 * 0.02  # flattened onto the sphere, not shrunk


@pytest.mark.parametrize("motion", ["normal", "free"])
def test_sparse_solve_matches_the_dense_oracle_and_scales_with_the_mesh(motion):
    vertices, faces = sphere(subdivisions=1)
    rng = np.random.default_rng(0)
    vertices = vertices * (1.0 + 0.05 * rng.standard_normal((len(vertices), 1)))
    target = own_normals(vertices, faces) + 0.3 * rng.standard_normal(vertices.shape)
    target[0] = -own_normals(vertices, faces)[0]  # the network says inside-out here: not used
    options = RefineOptions(0.1, motion)
    fast = refine_along_normals(vertices, faces, target, options)
    slow = refine_along_normals_reference(vertices, faces, target, options)
    np.testing.assert_allclose(fast.displacement, slow.displacement, atol=1e-10)
    np.testing.assert_array_equal(fast.kept, slow.kept)
    assert not fast.kept[0] and fast.kept[1:].all()
    assert np.abs(fast.displacement).max() > 1e-3
    scaled = refine_along_normals(2.0 * vertices, faces, target, RefineOptions(0.2, motion))
    np.testing.assert_allclose(scaled.displacement, 2.0 * fast.displacement, atol=1e-10)


def test_mesh_edges_are_unique_and_sorted():
    edges = mesh_edges(np.array([[0, 1, 2], [2, 1, 3]]))
    np.testing.assert_array_equal(edges, [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]])


@pytest.mark.parametrize("vertices, faces, normals", [
    (np.zeros((3, 2)), np.array([[0, 1, 2]]), np.zeros((3, 2))),
    (np.zeros((3, 3)), np.array([[0, 1, 3]]), np.zeros((3, 3))),
    (np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros((2, 3))),
    (np.zeros((0, 3)), np.array([[0, 1, 2]]), np.zeros((0, 3))),
])
def test_bad_shapes_raise(vertices, faces, normals):
    with pytest.raises(ValueError):
        refine_along_normals(vertices, faces, normals)


def test_bad_options_raise():
    with pytest.raises(ValueError):
        RefineOptions(screening_length=0.0)
    with pytest.raises(ValueError):
        RefineOptions(motion="sideways")
