"""Kinematics kernels of neuralbody.body.lbs against scipy, slow oracles and known answers.

The rotations they use are tested in test_geometry_rotations.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from neuralbody.body import lbs
from neuralbody.geometry.rotations import axis_angle_to_matrix

# A small tree whose parents are NOT listed before their children (joint 1's parent is 3).
TREE = [-1, 3, 1, 0, 0, 4]


def _random_rig(batch=2, joints=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rest = torch.randn(batch, joints, 3, generator=gen, dtype=torch.float64)
    rotations = axis_angle_to_matrix(torch.randn(batch, joints, 3, generator=gen, dtype=torch.float64))
    return rest, rotations


def test_lbs_re_exports_the_geometry_rotations():
    assert lbs.axis_angle_to_matrix is axis_angle_to_matrix


def test_forward_kinematics_known_answer():
    # Chain root(0,0,0) -> joint 1 at (1,0,0) -> joint 2 at (2,0,0); root turns 90 deg about z.
    rest = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]]], dtype=torch.float64)
    vectors = torch.zeros(1, 3, 3, dtype=torch.float64)
    vectors[0, 0, 2] = math.pi / 2
    vectors[0, 1, 2] = math.pi / 2  # then joint 1 turns another 90 deg about z
    out = lbs.batch_rigid_transform(rest, axis_angle_to_matrix(vectors), [-1, 0, 1])
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
        out = lbs.batch_rigid_transform(rest_joints, axis_angle_to_matrix(pose), [-1, 0, 1, 1])
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
