"""Batched root finding: Broyden's method over many independent small systems at once.

Each of M problems seeks ``x`` (D,) with ``g(x) = 0``. Starting from ``x_0`` and an inverse
Jacobian estimate ``H_0 ~ (dg/dx)^{-1}``, each step is::

    dx = -H g(x),   x <- x + dx,   dg = g(x + dx) - g(x)
    H  <- H + (dx - H dg) (dx^T H) / (dx^T H dg)          ("good" Broyden, Sherman-Morrison on H)

A problem stops when ``|g(x)| < tolerance`` (converged) or after ``max_iterations`` steps;
only the problems still running are evaluated (the residual function is told which rows).
The result is the iterate with the smallest residual seen.

:func:`newton_reference` is the slow, obvious oracle: one problem at a time, float64, damped
Newton with the Jacobian from autograd.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

# (x (m, D), rows (m,) int64 indices of those problems among the M) -> residuals g (m, D)
ResidualFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class RootResult:
    """Roots of M problems.

    Attributes:
        solution: (M, D) the iterate with the smallest residual norm.
        residual: (M,) its residual norm ``|g(solution)|``.
        converged: (M,) bool, ``residual < tolerance``.
        iterations: (M,) int64 steps taken per problem.
    """

    solution: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor


def _check_start(x0: torch.Tensor, inverse_jacobian: torch.Tensor | None, where: str) -> None:
    if x0.ndim != 2:
        raise ValueError(f"{where}: x0 must be (M, D), got {tuple(x0.shape)}")
    if inverse_jacobian is not None and inverse_jacobian.shape != (*x0.shape, x0.shape[1]):
        raise ValueError(
            f"{where}: inverse_jacobian must be {(*x0.shape, x0.shape[1])} like x0, got {tuple(inverse_jacobian.shape)}"
        )


def _broyden_update(inverse: torch.Tensor, step: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """Good-Broyden update of inverse Jacobians (m, D, D) by steps dx (m, D) and residual changes dg (m, D)."""
    h_change = (inverse @ change[:, :, None])[:, :, 0]  # H dg
    step_h = (step[:, None, :] @ inverse)[:, 0, :]  # dx^T H
    denominator = (step_h * change).sum(dim=1, keepdim=True)
    usable = denominator.abs() > 1e-12
    scale = torch.where(usable, 1.0 / torch.where(usable, denominator, torch.ones_like(denominator)), 0.0)
    return inverse + (step - h_change)[:, :, None] * (step_h * scale)[:, None, :]


def broyden(
    residual: ResidualFunction,
    x0: torch.Tensor,
    inverse_jacobian: torch.Tensor,
    *,
    tolerance: float,
    max_iterations: int,
    max_step: float = float("inf"),
    initial_residual: torch.Tensor | None = None,
) -> RootResult:
    """Broyden's method on M problems at once (see the module docstring).

    Args:
        residual: the residual function ``g`` of the problems (see :data:`ResidualFunction`).
        x0: (M, D) initial guesses.
        inverse_jacobian: (M, D, D) initial inverse Jacobians ``H_0``.
        tolerance: a problem has converged when ``|g| < tolerance`` (units of g).
        max_iterations: most steps per problem.
        max_step: steps longer than this are shortened to it (units of x).
        initial_residual: (M, D) ``g(x0)`` if already known (saves one evaluation).

    Returns:
        :class:`RootResult`. Runs without building an autograd graph.
    """
    _check_start(x0, inverse_jacobian, "broyden")
    if tolerance <= 0 or max_iterations < 0:
        raise ValueError(f"broyden: tolerance must be > 0, max_iterations >= 0; got {tolerance}, {max_iterations}")
    with torch.no_grad():
        rows = torch.arange(x0.shape[0], device=x0.device)
        x, inverse = x0.detach().clone(), inverse_jacobian.detach().clone()
        g = residual(x, rows) if initial_residual is None else initial_residual.detach()
        if g.shape != x.shape:
            raise ValueError(f"broyden: residuals must be {tuple(x.shape)} like x0, got {tuple(g.shape)}")
        norm = g.norm(dim=1)
        solution, best = x.clone(), norm.clone()
        iterations = torch.zeros_like(rows)
        running = torch.nonzero(norm >= tolerance).squeeze(1)
        x, g, inverse, rows, best_running = x[running], g[running], inverse[running], rows[running], norm[running]
        for _ in range(max_iterations):
            if rows.numel() == 0:
                break
            step = -(inverse @ g[:, :, None])[:, :, 0]
            if math.isfinite(max_step):
                step = step * (max_step / step.norm(dim=1, keepdim=True).clamp_min(max_step))
            x = x + step
            g_new = residual(x, rows)
            inverse = _broyden_update(inverse, step, g_new - g)
            g = g_new
            norm = g.norm(dim=1)
            iterations[rows] += 1
            better = norm < best_running  # NaN residuals are never better
            if bool(better.any()):
                improved = rows[better]
                solution[improved] = x[better]
                best[improved] = norm[better]
                best_running = torch.where(better, norm, best_running)
            keep = torch.nonzero((best_running >= tolerance) & torch.isfinite(norm)).squeeze(1)
            if keep.numel() != rows.numel():
                x, g, inverse, rows, best_running = x[keep], g[keep], inverse[keep], rows[keep], best_running[keep]
    return RootResult(solution, best, best < tolerance, iterations)


def newton_reference(
    residual: ResidualFunction,
    x0: torch.Tensor,
    *,
    tolerance: float,
    max_iterations: int = 100,
) -> RootResult:
    """Slow oracle for :func:`broyden`: per problem, float64 Newton with autograd Jacobians and step halving.

    Args:
        residual: the residual function (called with one row at a time, in float64).
        x0: (M, D) initial guesses.
        tolerance: convergence threshold on ``|g|``.
        max_iterations: most Newton steps per problem.
    """
    _check_start(x0, None, "newton_reference")
    count = x0.shape[0]
    solution = x0.detach().double().clone()
    norms = torch.full((count,), float("inf"), dtype=torch.float64)
    iterations = torch.zeros(count, dtype=torch.long)
    for m in range(count):
        row = torch.tensor([m], device=x0.device)

        def g(x: torch.Tensor) -> torch.Tensor:
            return residual(x[None].to(x0.device), row)[0].double().cpu()

        x = solution[m].clone()
        with torch.no_grad():
            value = g(x)
        for _ in range(max_iterations):
            if float(value.norm()) < tolerance:
                break
            jacobian = torch.autograd.functional.jacobian(g, x)
            step = -torch.linalg.lstsq(jacobian, value[:, None]).solution[:, 0]
            scale = 1.0
            with torch.no_grad():
                while scale > 1e-4:  # halve the step until the residual decreases
                    trial = g(x + scale * step)
                    if float(trial.norm()) < float(value.norm()):
                        break
                    scale *= 0.5
            if scale <= 1e-4:
                break
            x, value = x + scale * step, trial
            iterations[m] += 1
        solution[m], norms[m] = x, value.norm()
    return RootResult(solution, norms, norms < tolerance, iterations)
