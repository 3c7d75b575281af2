"""Forward skinning: the definition against body/lbs, the blended-transform field against the
definition, its Jacobian against autograd, and the weight grid's initialisation from a mesh."""

from __future__ import annotations

import pytest
import torch

from neuralbody.body import lbs
from neuralbody.geometry.queries import closest_points_reference
from neuralbody.skinning.forward_skinning import SkinningField, blend_transforms, invert_jacobians, skin_points
from neuralbody.skinning.weight_grid import SkinningWeightGrid, grid_nodes, weight_grid_from_mesh
from tube_body import SMPL_PARENTS, SMPL_RADII, SMPL_REST_JOINTS, tube_body


def _random_bones(count, seed, dtype=torch.float64, scale=0.6):
    gen = torch.Generator().manual_seed(seed)
    rotation = lbs.axis_angle_to_matrix(torch.randn(count, 3, generator=gen, dtype=dtype) * scale)
    return lbs.rigid_matrix(rotation, torch.randn(count, 3, generator=gen, dtype=dtype) * 0.2)


def _random_grid(seed=0, bones=4, shape=(5, 6, 7), dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, bones, generator=gen, dtype=dtype) * 2.0
    return SkinningWeightGrid(logits, torch.tensor([-0.5, -0.6, -0.7]), torch.tensor([0.25, 0.2, 0.2]))


def test_skin_points_is_linear_blend_skinning():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    weights = torch.rand(30, 5, generator=gen, dtype=torch.float64)
    weights = weights / weights.sum(1, keepdim=True)
    bones = _random_bones(5, seed=1)
    expected = lbs.reference_linear_blend_skinning(points[None], weights, bones[None])[0]
    torch.testing.assert_close(skin_points(points, weights, bones), expected, atol=1e-12, rtol=0)


def test_field_equals_the_definition_with_grid_weights():
    grid = _random_grid().double()
    bones = _random_bones(grid.num_bones, seed=2)
    field = grid.field(bones)
    points = torch.rand(100, 3, dtype=torch.float64) * 1.6 - 0.8  # inside and outside the box
    expected = skin_points(points, grid.weights(points), bones)
    torch.testing.assert_close(field.skin(points), expected, atol=1e-12, rtol=0)
    weights = grid.weights(points)
    assert bool((weights >= 0).all())
    torch.testing.assert_close(weights.sum(1), torch.ones(100, dtype=torch.float64), atol=1e-12, rtol=0)


def test_identity_bones_leave_points_in_place():
    grid = _random_grid()
    points = torch.rand(20, 3, dtype=torch.float64) - 0.5
    field = grid.field(torch.eye(4, dtype=torch.float64).expand(grid.num_bones, 4, 4))
    posed, jacobian = field.skin_with_jacobian(points)
    torch.testing.assert_close(posed, points, atol=1e-12, rtol=0)
    torch.testing.assert_close(jacobian, torch.eye(3, dtype=torch.float64).expand(20, 3, 3), atol=1e-12, rtol=0)


def test_jacobian_matches_autograd():
    grid = _random_grid(seed=3)
    field = grid.field(_random_bones(grid.num_bones, seed=4))
    points = (torch.rand(40, 3, dtype=torch.float64) - 0.5).requires_grad_(True)
    posed, jacobian = field.skin_with_jacobian(points)
    rows = [torch.autograd.grad(posed[:, i].sum(), points, retain_graph=True)[0] for i in range(3)]
    torch.testing.assert_close(jacobian, torch.stack(rows, dim=1), atol=1e-10, rtol=0)


def test_blend_transforms_and_field_guards():
    weights = torch.softmax(torch.randn(2, 3, 4, 5, dtype=torch.float64), dim=3)
    bones = _random_bones(5, seed=5)
    blended = blend_transforms(weights, bones)
    expected = torch.einsum("xyzb,bij->xyzij", weights, bones[:, :3, :]).reshape(2, 3, 4, 12)
    torch.testing.assert_close(blended, expected)
    with pytest.raises(ValueError, match=r"bone_transforms has 4 bones, the weights 5"):
        blend_transforms(weights, bones[:4])
    with pytest.raises(ValueError, match="12 channels"):
        SkinningField(torch.zeros(2, 2, 2, 9), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"weights must be \(30, B\)"):
        skin_points(torch.zeros(30, 3), torch.zeros(29, 5), bones)
    with pytest.raises(ValueError, match="spacing"):
        SkinningWeightGrid(torch.zeros(2, 2, 2, 3), torch.zeros(3), torch.tensor([0.1, 0.0, 0.1]))


def test_invert_jacobians_closed_form_and_singular():
    matrices = torch.randn(50, 3, 3, dtype=torch.float64) + 2 * torch.eye(3, dtype=torch.float64)
    matrices[7] = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]])
    inverses, invertible = invert_jacobians(matrices)
    assert not bool(invertible[7]) and int(invertible.sum()) == 49
    torch.testing.assert_close(inverses[invertible], torch.linalg.inv(matrices[invertible]))
    torch.testing.assert_close(inverses[7], torch.eye(3, dtype=torch.float64))


def test_grid_from_mesh_takes_the_closest_surface_points_weights():
    body = tube_body(SMPL_PARENTS, SMPL_REST_JOINTS, SMPL_RADII)
    vertices = torch.tensor(body.vertices)
    faces = torch.tensor(body.faces)
    weights = torch.tensor(body.weights)
    grid = weight_grid_from_mesh(vertices, faces, weights, voxel_size=0.05, padding=0.1)
    assert grid.num_bones == 24 and grid.logits.dtype == torch.float32
    torch.testing.assert_close(grid.origin.double(), vertices.min(0).values - 0.1, atol=1e-6, rtol=0)
    nodes = grid_nodes(grid.origin.double(), grid.spacing.double(), tuple(grid.logits.shape[:3]))
    torch.testing.assert_close(nodes[-1, -1, -1], vertices.max(0).values + 0.1, atol=1e-5, rtol=0)
    pick = torch.randperm(nodes[..., 0].numel(), generator=torch.Generator().manual_seed(0))[:60]
    flat_nodes = nodes.reshape(-1, 3)[pick]
    oracle = closest_points_reference(body.vertices, body.faces, flat_nodes.numpy())
    corner = weights[faces[torch.as_tensor(oracle.face_ids)]]  # (60, 3, 24)
    expected = torch.einsum("mk,mkb->mb", torch.as_tensor(oracle.barycentrics), corner)
    got = grid.node_weights().reshape(-1, 24)[pick].double()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)  # floor 1e-6 per bone, float32


def test_grid_weights_reproduce_the_mesh_skinning():
    body = tube_body(SMPL_PARENTS, SMPL_REST_JOINTS, SMPL_RADII)
    vertices = torch.tensor(body.vertices)
    grid = weight_grid_from_mesh(vertices, torch.tensor(body.faces), torch.tensor(body.weights), voxel_size=0.02)
    rotations = lbs.axis_angle_to_matrix(torch.randn(1, 24, 3, generator=torch.Generator().manual_seed(6)) * 0.4)
    bones = lbs.batch_rigid_transform(torch.tensor(body.rest_joints)[None].float(), rotations, body.parents)
    with torch.no_grad():
        posed = grid.field(bones.bone_transforms[0]).skin(vertices.float()).double()
    expected = skin_points(vertices, torch.tensor(body.weights), bones.bone_transforms[0].double())
    error = (posed - expected).norm(dim=1)
    median, tenth_worst, worst = torch.quantile(error, torch.tensor([0.5, 0.9, 1.0], dtype=torch.float64)).tolist()
    assert median < 0.001 and tenth_worst < 0.005 and worst < 0.05  # metres; worst where tubes cross at joints
