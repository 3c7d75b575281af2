"""neuralbody.geometry.rotations against scipy, known answers and float64 gradchecks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from neuralbody.geometry.rotations import axis_angle_to_matrix, look_at_rotation, matrix_to_axis_angle, skew


def test_axis_angle_to_matrix_matches_scipy_including_zero_and_pi():
    gen = torch.Generator().manual_seed(1)
    vectors = torch.randn(500, 3, generator=gen, dtype=torch.float64) * 1.5
    vectors[0] = 0.0
    vectors[1] = torch.tensor([1e-9, -2e-9, 0.0])
    vectors[2] = torch.tensor([math.pi, 0.0, 0.0])
    vectors[3] = torch.tensor([0.0, 0.0, 1e-4])
    ours = axis_angle_to_matrix(vectors).numpy()
    theirs = Rotation.from_rotvec(vectors.numpy()).as_matrix()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert axis_angle_to_matrix(torch.zeros(4, 2, 3)).shape == (4, 2, 3, 3)


def test_matrix_to_axis_angle_round_trip_near_zero_and_pi():
    gen = torch.Generator().manual_seed(2)
    axes = torch.nn.functional.normalize(torch.randn(300, 3, generator=gen, dtype=torch.float64), dim=-1)
    angles = torch.rand(300, generator=gen, dtype=torch.float64) * math.pi
    angles[:50] = torch.logspace(-10, -2, 50, dtype=torch.float64)
    angles[50:100] = math.pi - torch.logspace(-9, -2, 50, dtype=torch.float64)
    vectors = axes * angles[:, None]
    matrices = axis_angle_to_matrix(vectors)
    recovered = matrix_to_axis_angle(matrices)
    # Same rotation (the sign of the axis at exactly pi is ambiguous, the matrix is not).
    np.testing.assert_allclose(axis_angle_to_matrix(recovered).numpy(), matrices.numpy(), atol=1e-9)
    away_from_pi = angles < math.pi - 1e-3
    np.testing.assert_allclose(recovered[away_from_pi].numpy(), vectors[away_from_pi].numpy(), atol=1e-9)
    scipy_matrices = torch.from_numpy(Rotation.from_rotvec(vectors.numpy()).as_matrix())
    from_scipy = matrix_to_axis_angle(scipy_matrices)
    np.testing.assert_allclose(from_scipy[away_from_pi].numpy(), vectors[away_from_pi].numpy(), atol=1e-9)


def test_matrix_to_axis_angle_matches_the_trace_formula_below_pi():
    # The log map the synthetic motions used before (angle = acos((tr R - 1) / 2), axis from the
    # skew part) is exact for angles well below pi: the shared implementation agrees with it there.
    gen = torch.Generator().manual_seed(9)
    vectors = torch.nn.functional.normalize(torch.randn(200, 3, generator=gen, dtype=torch.float64), dim=-1)
    vectors = vectors * torch.linspace(1e-3, 3.0, 200, dtype=torch.float64)[:, None]
    R = axis_angle_to_matrix(vectors)
    angle = torch.acos(((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0))
    odd = torch.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], -1)
    trace_formula = odd * (angle / (2.0 * torch.sin(angle)))[:, None]
    np.testing.assert_allclose(matrix_to_axis_angle(R).numpy(), trace_formula.numpy(), atol=1e-9)


def test_axis_angle_gradient_at_zero_is_the_generator():
    # d R / d r_k at r = 0 is the cross-product matrix of the k-th unit vector.
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(axis_angle_to_matrix, zero)  # (3, 3, 3)
    for k in range(3):
        generator = skew(torch.eye(3, dtype=torch.float64)[k])
        np.testing.assert_allclose(jac[..., k].numpy(), generator.numpy(), atol=1e-12)


def test_skew_is_the_cross_product():
    gen = torch.Generator().manual_seed(4)
    v, u = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    np.testing.assert_allclose((skew(v) @ u[..., None])[..., 0].numpy(), torch.cross(v, u, dim=-1).numpy(), atol=1e-12)


@pytest.mark.parametrize("scale", [0.0, 1e-5, 1.0])
def test_axis_angle_gradcheck(scale):
    gen = torch.Generator().manual_seed(3)
    vectors = (torch.randn(4, 3, generator=gen, dtype=torch.float64) * scale).requires_grad_()
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (vectors,), eps=1e-7, atol=1e-6)


def test_matrix_to_axis_angle_gradcheck_away_from_zero_and_pi():
    gen = torch.Generator().manual_seed(5)
    vectors = torch.nn.functional.normalize(torch.randn(4, 3, generator=gen, dtype=torch.float64), dim=-1)
    matrices = axis_angle_to_matrix(vectors * torch.tensor([0.3, 1.0, 2.0, 2.8], dtype=torch.float64)[:, None])
    # Perturb along rotations (the map is only defined on SO(3)): r -> log(R exp(d)).
    def log_of_perturbed(delta):
        return matrix_to_axis_angle(matrices @ axis_angle_to_matrix(delta))

    delta = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(log_of_perturbed, (delta,), eps=1e-7, atol=1e-6)


def test_look_at_rotation_known_answer_on_the_x_axis():
    # A camera on +x at 3 m looking at the origin, z up: forward is -x, the image's right is
    # +y (looking down -x with z up, +y is on the right hand) and down is -z.
    R = look_at_rotation(np.array([3.0, 0.0, 0.0]), np.zeros(3))
    np.testing.assert_allclose(R, [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]], atol=1e-15)


def test_look_at_rotation_is_a_rotation_and_centres_the_target():
    rng = np.random.default_rng(0)
    K = np.array([[500.0, 0.0, 320.0], [0.0, 480.0, 240.0], [0.0, 0.0, 1.0]])
    for _ in range(20):
        center, target = rng.normal(size=3) * 3.0, rng.normal(size=3)
        up = rng.normal(size=3)
        R = look_at_rotation(center, target, up)
        assert R.dtype == np.float64
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)
        T = -R @ center
        x_cam = R @ target + T
        assert x_cam[2] > 0
        pixel = (K @ x_cam)[:2] / x_cam[2]
        np.testing.assert_allclose(pixel, K[:2, 2], atol=1e-9)  # on the optical axis: the principal point
        # image up (-y) leans towards the world up: a point above the target is higher in the image
        above = R @ (target + 0.1 * up / np.linalg.norm(up)) + T
        assert above[1] / above[2] < x_cam[1] / x_cam[2] + 1e-12


def test_look_at_rotation_guards():
    with pytest.raises(ValueError, match="parallel to up"):
        look_at_rotation(np.array([0.0, 0.0, 3.0]), np.zeros(3))
    with pytest.raises(ValueError, match="sits on its target"):
        look_at_rotation(np.ones(3), np.ones(3))


def test_shape_guards():
    with pytest.raises(ValueError):
        axis_angle_to_matrix(torch.zeros(4, 2))
    with pytest.raises(ValueError):
        matrix_to_axis_angle(torch.zeros(4, 3))
