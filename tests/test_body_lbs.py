"""Kinematics kernels of neuralbody.body.lbs against scipy, slow oracles and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from neuralbody.body import lbs

# A small tree whose parents are NOT listed before their children (joint 1's parent is 3).
TREE = [-1, 3, 1, 0, 0, 4]


def _random_rig(batch=2, joints=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rest = torch.randn(batch, joints, 3, generator=gen, dtype=torch.float64)
    rotations = lbs.axis_angle_to_matrix(torch.randn(batch, joints, 3, generator=gen, dtype=torch.float64))
    return rest, rotations


def test_axis_angle_to_matrix_matches_scipy_including_zero_and_pi():
    gen = torch.Generator().manual_seed(1)
    vectors = torch.randn(500, 3, generator=gen, dtype=torch.float64) * 1.5
    vectors[0] = 0.0
    vectors[1] = torch.tensor([1e-9, -2e-9, 0.0])
    vectors[2] = torch.tensor([math.pi, 0.0, 0.0])
    vectors[3] = torch.tensor([0.0, 0.0, 1e-4])
    ours = lbs.axis_angle_to_matrix(vectors).numpy()
    theirs = Rotation.from_rotvec(vectors.numpy()).as_matrix()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert lbs.axis_angle_to_matrix(torch.zeros(4, 2, 3)).shape == (4, 2, 3, 3)


def test_matrix_to_axis_angle_round_trip_near_zero_and_pi():
    gen = torch.Generator().manual_seed(2)
    axes = torch.nn.functional.normalize(torch.randn(300, 3, generator=gen, dtype=torch.float64), dim=-1)
    angles = torch.rand(300, generator=gen, dtype=torch.float64) * math.pi
    angles[:50] = torch.logspace(-10, -2, 50, dtype=torch.float64)
    angles[50:100] = math.pi - torch.logspace(-9, -2, 50, dtype=torch.float64)
    vectors = axes * angles[:, None]
    matrices = lbs.axis_angle_to_matrix(vectors)
    recovered = lbs.matrix_to_axis_angle(matrices)
    # Same rotation (the sign of the axis at exactly pi is ambiguous, the matrix is not).
    np.testing.assert_allclose(lbs.axis_angle_to_matrix(recovered).numpy(), matrices.numpy(), atol=1e-9)
    away_from_pi = angles < math.pi - 1e-3
    np.testing.assert_allclose(recovered[away_from_pi].numpy(), vectors[away_from_pi].numpy(), atol=1e-9)
    scipy_matrices = torch.from_numpy(Rotation.from_rotvec(vectors.numpy()).as_matrix())
    from_scipy = lbs.matrix_to_axis_angle(scipy_matrices)
    np.testing.assert_allclose(from_scipy[away_from_pi].numpy(), vectors[away_from_pi].numpy(), atol=1e-9)


def test_axis_angle_gradient_at_zero_is_the_generator():
    # d R / d r_k at r = 0 is the cross-product matrix of the k-th unit vector.
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lbs.axis_angle_to_matrix, zero)  # (3, 3, 3)
    for k in range(3):
        generator = lbs.skew(torch.eye(3, dtype=torch.float64)[k])
        np.testing.assert_allclose(jac[..., k].numpy(), generator.numpy(), atol=1e-12)


@pytest.mark.parametrize("scale", [0.0, 1e-5, 1.0])
def test_axis_angle_gradcheck(scale):
    gen = torch.Generator().manual_seed(3)
    vectors = (torch.randn(4, 3, generator=gen, dtype=torch.float64) * scale).requires_grad_()
    assert torch.autograd.gradcheck(lbs.axis_angle_to_matrix, (vectors,), eps=1e-7, atol=1e-6)


def test_forward_kinematics_known_answer():
    # Chain root(0,0,0) -> joint 1 at (1,0,0) -> joint 2 at (2,0,0); root turns 90 deg about z.
    rest = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]]], dtype=torch.float64)
    vectors = torch.zeros(1, 3, 3, dtype=torch.float64)
    vectors[0, 0, 2] = math.pi / 2
    vectors[0, 1, 2] = math.pi / 2  # then joint 1 turns another 90 deg about z
    out = lbs.batch_rigid_transform(rest, lbs.axis_angle_to_matrix(vectors), [-1, 0, 1])
    np.testing.assert_allclose(out.posed_joints[0].numpy(), [[0, 0, 0], [0, 1, 0], [-1, 1, 0]], atol=1e-12)
    # A rest point on the last bone, (3, 0, 0), ends at (-2, 1, 0).
    point = out.bone_transforms[0, 2] @ torch.tensor([3.0, 0, 0, 1], dtype=torch.float64)
    np.testing.assert_allclose(point[:3].numpy(), [-2, 1, 0], atol=1e-12)


def test_forward_kinematics_matches_reference_on_unsorted_tree():
    rest, rotations = _random_rig()
    fast = lbs.batch_rigid_transform(rest, rotations, TREE)
    slow = lbs.reference_rigid_transform(rest, rotations, TREE)
    np.testing.assert_allclose(fast.posed_joints.numpy(), slow.posed_joints.numpy(), atol=1e-12)
    np.testing.assert_allclose(fast.bone_transforms.numpy(), slow.bone_transforms.numpy(), atol=1e-12)
    # Identity rotations: every bone transform is the identity.
    ident = lbs.batch_rigid_transform(rest, torch.eye(3, dtype=torch.float64).expand_as(rotations), TREE)
    eye = np.broadcast_to(np.eye(4), ident.bone_transforms.shape)
    np.testing.assert_allclose(ident.bone_transforms.numpy(), eye, atol=1e-12)


def test_forward_kinematics_gradcheck():
    rest, _ = _random_rig(batch=1, joints=4)
    vectors = torch.randn(1, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def fk(rest_joints, pose):
        out = lbs.batch_rigid_transform(rest_joints, lbs.axis_angle_to_matrix(pose), [-1, 0, 1, 1])
        return out.bone_transforms, out.posed_joints

    assert torch.autograd.gradcheck(fk, (rest.requires_grad_(), vectors.requires_grad_()))


def test_linear_blend_skinning_matches_reference_and_gradcheck():
    rest, rotations = _random_rig()
    bones = lbs.batch_rigid_transform(rest, rotations, TREE).bone_transforms
    gen = torch.Generator().manual_seed(5)
    weights = torch.rand(30, 6, generator=gen, dtype=torch.float64)
    weights = weights / weights.sum(1, keepdim=True)
    vertices = torch.randn(2, 30, 3, generator=gen, dtype=torch.float64)
    fast = lbs.linear_blend_skinning(vertices, weights, bones)
    slow = lbs.reference_linear_blend_skinning(vertices, weights, bones)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-12)
    # Shared rest vertices (batch 1) broadcast over the transforms' batch.
    shared = lbs.linear_blend_skinning(vertices[:1], weights, bones)
    slow_shared = lbs.reference_linear_blend_skinning(vertices[:1].expand(2, -1, -1), weights, bones)
    np.testing.assert_allclose(shared.numpy(), slow_shared.numpy(), atol=1e-12)
    small = tuple(t.clone().requires_grad_() for t in (vertices[:1, :5], weights[:5], bones[:1]))
    assert torch.autograd.gradcheck(lbs.linear_blend_skinning, small)


def test_apply_global_matches_scipy():
    gen = torch.Generator().manual_seed(6)
    points = torch.randn(3, 10, 3, generator=gen, dtype=torch.float64)
    Rh = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    Th = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    out = lbs.apply_global(points, Rh, Th)
    for b in range(3):
        expected = Rotation.from_rotvec(Rh[b].numpy()).apply(points[b].numpy()) + Th[b].numpy()
        np.testing.assert_allclose(out[b].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(lbs.global_transform(Rh, Th)[:, :3, 3].numpy(), Th.numpy())


def test_shape_guards():
    with pytest.raises(ValueError):
        lbs.axis_angle_to_matrix(torch.zeros(4, 2))
    with pytest.raises(ValueError):
        lbs.matrix_to_axis_angle(torch.zeros(4, 3))
    rest, rotations = _random_rig()
    with pytest.raises(ValueError):
        lbs.batch_rigid_transform(rest, rotations[:, :5], TREE)
    with pytest.raises(ValueError):
        lbs.batch_rigid_transform(rest, rotations, TREE[:5])
    with pytest.raises(ValueError):
        lbs.batch_rigid_transform(rest, rotations, [-1, 2, 1, 0, 0, 4])  # cycle 1 <-> 2
    bones = torch.eye(4, dtype=torch.float64).expand(2, 6, 4, 4)
    with pytest.raises(ValueError):
        lbs.linear_blend_skinning(torch.zeros(2, 30, 3), torch.ones(30, 5), bones)
    with pytest.raises(ValueError):
        lbs.linear_blend_skinning(torch.zeros(3, 30, 3), torch.ones(30, 6), bones)
    with pytest.raises(ValueError):
        lbs.apply_global(torch.zeros(2, 5, 3), torch.zeros(3, 3), torch.zeros(2, 3))
