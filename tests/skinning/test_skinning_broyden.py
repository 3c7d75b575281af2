"""Batched Broyden root finding against known roots and the slow Newton oracle."""

from __future__ import annotations

import pytest
import torch

from neuralbody.skinning.broyden import broyden, newton_reference


def _problem(count=64, seed=0):
    """g(x) = f(x) - f(r) with f(x) = M x + 0.3 sin(x): one root r per problem (f is monotone along M)."""
    gen = torch.Generator().manual_seed(seed)
    matrix = torch.eye(3, dtype=torch.float64) * 2 + 0.3 * torch.randn(3, 3, generator=gen, dtype=torch.float64)
    roots = torch.randn(count, 3, generator=gen, dtype=torch.float64)

    def f(x):
        return x @ matrix.T + 0.3 * torch.sin(x)

    targets = f(roots)
    starts = roots + 0.5 * torch.randn(count, 3, generator=gen, dtype=torch.float64)
    calls = []

    def residual(x, rows):
        calls.append(rows.numel())
        return f(x) - targets[rows]

    return residual, roots, starts, torch.linalg.inv(matrix).expand(count, 3, 3), calls


def test_finds_known_roots_and_evaluates_only_running_problems():
    residual, roots, starts, inverse, calls = _problem()
    result = broyden(residual, starts, inverse, tolerance=1e-10, max_iterations=50)
    assert bool(result.converged.all())
    torch.testing.assert_close(result.solution, roots, atol=1e-9, rtol=0)
    assert bool((result.residual < 1e-10).all())
    assert calls[0] == 64 and calls == sorted(calls, reverse=True) and calls[-1] < 64  # finished ones drop out
    assert int(result.iterations.max()) == len(calls) - 1  # the first call is g(x0)


def test_agrees_with_the_newton_oracle():
    residual, roots, starts, inverse, _ = _problem(count=12, seed=1)
    fast = broyden(residual, starts, inverse, tolerance=1e-11, max_iterations=50)
    slow = newton_reference(residual, starts, tolerance=1e-11)
    assert bool(fast.converged.all()) and bool(slow.converged.all())
    torch.testing.assert_close(fast.solution, slow.solution, atol=1e-10, rtol=0)
    torch.testing.assert_close(slow.solution, roots, atol=1e-10, rtol=0)


def test_no_root_is_reported_with_the_best_iterate():
    def residual(x, rows):  # g(x) = (x^2 + 1, 0): no root; the smallest |g| is 1 at x = 0
        return torch.stack([x[:, 0] ** 2 + 1, torch.zeros_like(x[:, 0])], dim=1)

    starts = torch.tensor([[0.7, 0.0], [-2.0, 0.0]], dtype=torch.float64)
    inverse = torch.eye(2, dtype=torch.float64).expand(2, 2, 2) * 0.5
    result = broyden(residual, starts, inverse, tolerance=1e-6, max_iterations=7, max_step=0.5)
    assert not bool(result.converged.any())
    assert result.iterations.tolist() == [7, 7]
    assert bool((result.residual >= 1.0).all()) and bool((result.residual <= torch.tensor([1.49, 5.0])).all())
    torch.testing.assert_close(result.residual, residual(result.solution, None).norm(dim=1))


def test_already_solved_problems_take_no_step_and_initial_residual_is_used():
    residual, roots, _, inverse, calls = _problem(count=5)
    result = broyden(residual, roots, inverse, tolerance=1e-9, max_iterations=10,
                     initial_residual=torch.zeros(5, 3, dtype=torch.float64))
    assert calls == [] and result.iterations.tolist() == [0] * 5 and bool(result.converged.all())


def test_guards():
    residual, _, starts, inverse, _ = _problem(count=4)
    with pytest.raises(ValueError, match="inverse_jacobian must be"):
        broyden(residual, starts, inverse[:, :2], tolerance=1e-6, max_iterations=5)
    with pytest.raises(ValueError, match=r"x0 must be \(M, D\)"):
        broyden(residual, starts[0], inverse, tolerance=1e-6, max_iterations=5)
    with pytest.raises(ValueError, match="tolerance must be > 0"):
        broyden(residual, starts, inverse, tolerance=0.0, max_iterations=5)
    with pytest.raises(ValueError, match="residuals must be"):
        broyden(residual, starts, inverse, tolerance=1e-6, max_iterations=5, initial_residual=torch.zeros(4, 2))
