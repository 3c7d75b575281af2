"""Implicit gradients of the correspondence search against finite differences in float64."""

from __future__ import annotations

import pytest
import torch

from neuralbody.body import lbs
from neuralbody.models.skinning_deformer import ForwardSkinningDeformer, SearchOptions
from neuralbody.skinning.forward_skinning import SkinningField, blend_transforms
from neuralbody.skinning.implicit_grad import implicit_root
from neuralbody.skinning.initial_guesses import bone_groups
from neuralbody.skinning.weight_grid import SkinningWeightGrid, grid_nodes

PARENTS = [-1, 0, 1]
JOINTS = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.6, 0.0, 0.0]], dtype=torch.float64)
ORIGIN = torch.tensor([-0.2, -0.2, -0.2], dtype=torch.float64)
SPACING = torch.tensor([0.22, 0.2, 0.2], dtype=torch.float64)
OPTIONS = SearchOptions(num_candidates=2, tolerance=1e-12, max_iterations=100)


def _chain(seed=0):
    """A three-bone arm along x on a 6 x 3 x 3 grid, bent at both joints: logits, bone transforms, groups."""
    gen = torch.Generator().manual_seed(seed)
    nodes = grid_nodes(ORIGIN, SPACING, (6, 3, 3))
    centres = torch.tensor([0.0, 0.35, 0.7], dtype=torch.float64)
    noise = 0.3 * torch.randn(6, 3, 3, 3, generator=gen, dtype=torch.float64)
    logits = -(((nodes[..., :1] - centres) / 0.2) ** 2) + noise
    rotations = lbs.axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.1], [0.0, 0.1, 0.5], [0.2, 0.0, 0.4]],
                                                      dtype=torch.float64))
    bones = lbs.batch_rigid_transform(JOINTS[None], rotations[None], PARENTS).bone_transforms[0]
    return logits, bones, bone_groups(PARENTS, JOINTS)


def _posed_points(logits, bones, count=6, seed=1):
    gen = torch.Generator().manual_seed(seed)
    canonical = torch.rand(count, 3, generator=gen, dtype=torch.float64) * torch.tensor([0.8, 0.2, 0.2]) + torch.tensor(
        [-0.05, -0.1, -0.1]
    )
    field = SkinningField(blend_transforms(torch.softmax(logits, 3), bones), ORIGIN, SPACING)
    return canonical, field.skin(canonical).detach()


def _candidates(logits, bones, posed, groups):
    field = SkinningField(blend_transforms(torch.softmax(logits, 3), bones), ORIGIN, SPACING)
    return ForwardSkinningDeformer(field, bones, groups, OPTIONS).correspondences(posed)


def test_round_trip_and_unique_valid_candidate():
    logits, bones, groups = _chain()
    canonical, posed = _posed_points(logits, bones)
    result = _candidates(logits, bones, posed, groups)
    assert result.valid.sum(1).tolist() == [1] * canonical.shape[0]
    torch.testing.assert_close(result.points[result.valid], canonical, atol=1e-10, rtol=0)


def test_gradcheck_against_finite_differences():
    logits, bones, groups = _chain()
    _, posed = _posed_points(logits, bones)
    valid = _candidates(logits, bones, posed, groups).valid

    def roots(logits, bones, posed):
        result = _candidates(logits, bones, posed, groups)
        assert torch.equal(result.valid, valid)  # the same roots under every perturbation
        return result.points[valid]

    inputs = tuple(x.clone().requires_grad_(True) for x in (logits, bones, posed))
    assert torch.autograd.gradcheck(roots, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradients_reach_the_grid_parameter_and_only_from_valid_candidates():
    logits, bones, groups = _chain()
    _, posed = _posed_points(logits, bones)
    grid = SkinningWeightGrid(logits.clone(), ORIGIN, SPACING)
    deformer = ForwardSkinningDeformer.for_frame(grid, groups, bones, OPTIONS)
    far = torch.tensor([[3.0, 3.0, 3.0]], dtype=torch.float64)
    result = deformer.correspondences(torch.cat([posed, far]))
    assert not bool(result.valid[-1].any())
    result.points[result.valid].sum().backward()
    assert grid.logits.grad is not None and bool(torch.isfinite(grid.logits.grad).all())
    assert float(grid.logits.grad.abs().sum()) > 0
    grid.logits.grad = None
    result = deformer.__class__.for_frame(grid, groups, bones, OPTIONS).correspondences(far)
    result.points.sum().backward()  # invalid candidates pass no gradient
    assert float(grid.logits.grad.abs().sum()) == 0.0


def test_rigid_case_has_the_closed_form_gradient():
    """One bone: x = G^{-1} y, so dx/dy = R^T whatever the solver did."""
    rotation = lbs.axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64))

    def skin(x, matrix):
        return x @ matrix.T

    y = torch.tensor([[0.2, -0.1, 0.4]], dtype=torch.float64, requires_grad=True)
    solution = (y.detach() @ rotation)  # the root R^T y
    x = implicit_root(skin, solution, y, rotation[None], (rotation,))
    (grad,) = torch.autograd.grad(x[0, 1], y)
    torch.testing.assert_close(grad[0], rotation.T[1])


def test_implicit_root_guards():
    with pytest.raises(ValueError, match="jacobian must be"):
        implicit_root(lambda x: x, torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 3), ())
    with pytest.raises(ValueError, match="solution and targets"):
        implicit_root(lambda x: x, torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(4, 3, 3), ())
