"""Normal-map views of a mesh (known answers on a sphere and a plane) and of a posed scan with correspondences;
the Laplacian-energy sharpness against its pixel-loop oracle."""

import math

import pytest
import torch

from neuralbody.gdna.normal_views import FRONT, ViewOptions, cast_view, scan_views, view_rotations
from neuralbody.gdna.sharpness import interior, laplacian_energy, laplacian_energy_reference
from neuralbody.geometry.normals import vertex_normals


def test_view_rotations_are_a_ring_of_rotations_about_z():
    rotations = view_rotations(4)
    assert torch.allclose(rotations[0], FRONT)
    for k, rotation in enumerate(rotations):
        assert torch.allclose(rotation @ rotation.T, torch.eye(3), atol=1e-6)
        assert math.isclose(float(torch.linalg.det(rotation)), 1.0, abs_tol=1e-6)
        assert torch.allclose(rotation[1], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)  # image up is body z
    # view 0 looks along +y (its towards-camera axis is -y), view 1 (90 degrees on) along -x
    assert torch.allclose(rotations[0][2], torch.tensor([0.0, -1.0, 0.0]), atol=1e-6)
    assert torch.allclose(rotations[1][2], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    with pytest.raises(ValueError):
        view_rotations(0)


def test_a_sphere_seen_from_any_view_shows_its_analytic_normals():
    import trimesh

    radius, size, half = 0.5, 24, 0.6
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    centre = torch.tensor([0.2, -0.1, 1.0])
    vertices = torch.as_tensor(sphere.vertices, dtype=torch.float32) + centre
    faces = torch.as_tensor(sphere.faces, dtype=torch.int64)
    normals = vertex_normals(vertices, faces)
    steps = (torch.arange(size) + 0.5) / size * 2.0 - 1.0
    v, u = torch.meshgrid(-half * steps, half * steps, indexing="ij")
    for rotation in view_rotations(3):
        view = cast_view(vertices, faces, normals, rotation, centre, half, size)
        inside = u**2 + v**2 < (0.97 * radius) ** 2
        outside = u**2 + v**2 > (1.03 * radius) ** 2
        assert bool(view.hit[inside].all()) and not bool(view.hit[outside].any())
        expected = torch.stack([u, v, (radius**2 - u**2 - v**2).clamp_min(0).sqrt()], dim=-1) / radius
        assert torch.allclose(view.normals[inside], expected[inside], atol=0.03)
        local = (view.points[inside] - centre) @ rotation.T  # hits in the view's frame: the near side
        assert torch.allclose(local.norm(dim=1), torch.full((int(inside.sum()),), radius), atol=0.01)
        assert torch.allclose(local[:, :2], torch.stack([u[inside], v[inside]], dim=1), atol=1e-4)
        assert bool((local[:, 2] > 0).all())


def test_a_plane_facing_the_front_view_is_flat_blue_and_edge_on_from_the_side():
    vertices = torch.tensor([[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])  # normal -y: towards the front camera
    normals = vertex_normals(vertices, faces)
    view = cast_view(vertices, faces, normals, view_rotations(4)[0], torch.zeros(3), 0.5, 8)
    assert bool(view.hit.all())
    assert torch.allclose(view.normals, torch.tensor([0.0, 0.0, 1.0]).expand(8, 8, 3), atol=1e-5)
    back = cast_view(vertices, faces, normals, view_rotations(4)[2], torch.zeros(3), 0.5, 8)
    assert torch.allclose(back.normals, torch.tensor([0.0, 0.0, -1.0]).expand(8, 8, 3), atol=1e-5)
    with pytest.raises(ValueError, match="rotation"):
        cast_view(vertices, faces, normals, torch.eye(2), torch.zeros(3), 0.5, 8)


def test_scan_views_in_the_rest_pose_map_pixels_to_themselves(anny_body):
    from neuralbody.gdna.shape_skinning import shape_skinning

    shapes = torch.full((anny_body.shape_dim,), 0.5)
    skinning = shape_skinning(anny_body, shapes)
    transforms = skinning.bone_transforms(torch.zeros(1, anny_body.pose_dim))[0]
    with torch.no_grad():
        vertices = anny_body(torch.zeros(1, anny_body.pose_dim), shapes[None]).vertices[0].float()
    faces = skinning.subject.faces
    views = scan_views(skinning, transforms, vertices, faces, ViewOptions(views=2, size=24))
    assert views.mask.shape == (2, 24, 24) and views.real.shape == (2, 24, 24, 3)
    assert int(views.mask.sum()) == len(views.canonical) > 50
    assert torch.equal(views.index >= 0, views.mask)
    rows = views.index[views.mask]
    assert torch.equal(rows.sort().values, torch.arange(len(rows)))
    low, high = vertices.min(dim=0).values, vertices.max(dim=0).values
    half = 1.05 * 0.5 * float((high - low).max())
    view = cast_view(vertices, faces, vertex_normals(vertices, faces), views.rotations[1], 0.5 * (low + high), half, 24)
    mask = views.mask[1]
    assert torch.allclose(views.real[1][mask], view.normals[mask]) and bool((views.real[1][~mask] == 0).all())
    # rest pose: identity skinning, so each pixel's correspondence is its own hit and J^{-T} the identity
    assert torch.allclose(views.canonical[views.index[1][mask]], view.points[mask], atol=2e-3)
    assert torch.allclose(views.inverse_transpose, torch.eye(3).expand_as(views.inverse_transpose), atol=2e-3)


def test_laplacian_energy_matches_its_pixel_loop_and_known_answers():
    generator = torch.Generator().manual_seed(0)
    normals = torch.nn.functional.normalize(torch.randn(12, 10, 3, generator=generator), dim=-1)
    mask = torch.rand(12, 10, generator=generator) > 0.2
    fast, reference = laplacian_energy(normals, mask), laplacian_energy_reference(normals, mask)
    assert fast[1] == reference[1] == int(interior(mask).sum()) > 0
    assert fast[0] == pytest.approx(reference[0], rel=1e-9)
    full = torch.ones(12, 10, dtype=torch.bool)
    assert laplacian_energy(torch.tensor([0.0, 0.0, 1.0]).expand(12, 10, 3), full) == (0.0, 80)
    a, b = torch.tensor([0.0, 0.6, 0.8]), torch.tensor([0.0, -0.6, 0.8])
    board = torch.where(((torch.arange(12)[:, None] + torch.arange(10)[None]) % 2 == 0)[..., None], a, b)
    assert laplacian_energy(board, full)[0] == pytest.approx(float((a - b).pow(2).sum()))  # |a - b|^2 everywhere
    assert laplacian_energy(board, torch.zeros(12, 10, dtype=torch.bool)) == (0.0, 0)
    with pytest.raises(ValueError):
        laplacian_energy(board, full.float())


def test_frechet_distance_known_answers_and_detail_patches():
    from neuralbody.gdna.sharpness import detail_patches, frechet_distance

    generator = torch.Generator().manual_seed(3)
    a = torch.randn(4000, 1, generator=generator, dtype=torch.float64)
    b = 2.0 * a + 3.0  # 1-D Gaussians: (mu_a - mu_b)^2 + (s_a - s_b)^2, with the samples' own moments
    expected = float((a.mean() - b.mean()) ** 2 + (a.std() - b.std()) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    x = torch.randn(500, 5, generator=generator)
    assert abs(frechet_distance(x, x)) < 1e-6
    # diagonal covariances: sum over axes of the 1-D answer
    y = x * torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0]) + 1.0
    xs, ys = x.double().std(0), y.double().std(0)
    assert frechet_distance(x, y) == pytest.approx(float(((x.double().mean(0) - y.double().mean(0)) ** 2).sum()
                                                         + ((xs - ys) ** 2).sum()), rel=0.05)
    mask = torch.zeros(6, 7, dtype=torch.bool)
    mask[1:5, 1:6] = True  # 4 x 5 on the mask: 2 x 3 full 3 x 3 patches
    normals = torch.nn.functional.normalize(torch.randn(6, 7, 3, generator=generator), dim=-1)
    patches = detail_patches(normals, mask, 0.0)
    assert patches.shape == (6, 27) and torch.allclose(patches[0, :3], normals[1, 1].double())
    assert torch.allclose(patches[-1, -3:], normals[4, 5].double())
    with pytest.raises(ValueError):
        frechet_distance(x, y[:, :3])
