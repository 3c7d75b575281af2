"""Gradients of roots by implicit differentiation (SNARF's analytical gradients).

A root ``x*`` of ``f(x, theta) = y`` (for forward skinning: the canonical point that the
skinning map ``f`` with parameters theta sends to the posed point y) depends on theta and
y only through the equation, so differentiating ``f(x*(theta, y), theta) = y`` gives::

    d x* / d y     =  J^{-1}
    d x* / d theta = -J^{-1} df/dtheta,         J = df/dx at (x*, theta)

:func:`implicit_root` returns the root unchanged with these gradients attached: the backward
pass solves ``J^T v = grad`` once per root and asks autograd for ``-v^T df/dtheta`` by
evaluating f once more at the root. No gradient flows through the iterations of the solver,
and the gradients are first order only (no double backward).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from neuralbody.skinning.forward_skinning import invert_jacobians


class _ImplicitRoot(torch.autograd.Function):
    """Identity on the roots forward; implicit-function gradients backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, function, solution, targets, jacobian, usable, *params):
        ctx.function = function
        ctx.save_for_backward(solution, jacobian, usable, *params)
        return solution.clone()

    @staticmethod
    def backward(ctx, grad):
        solution, jacobian, usable, *params = ctx.saved_tensors
        inverse, invertible = invert_jacobians(jacobian)
        keep = (usable & invertible)[:, None]
        v = torch.where(keep, (inverse.transpose(1, 2) @ grad[:, :, None])[:, :, 0], 0.0)  # J^{-T} grad
        needs = ctx.needs_input_grad[5:]
        param_grads = [None] * len(params)
        wanted = [i for i, need in enumerate(needs) if need]
        if wanted:
            with torch.enable_grad():
                inputs = [p.detach().requires_grad_(need) for p, need in zip(params, needs)]
                value = ctx.function(solution, *inputs)
                grads = torch.autograd.grad(value, [inputs[i] for i in wanted], -v, allow_unused=True)
            for i, g in zip(wanted, grads):
                param_grads[i] = g
        return (None, None, v if ctx.needs_input_grad[2] else None, None, None, *param_grads)


def implicit_root(
    function: Callable[..., torch.Tensor],
    solution: torch.Tensor,
    targets: torch.Tensor,
    jacobian: torch.Tensor,
    params: tuple[torch.Tensor, ...],
    usable: torch.Tensor | None = None,
) -> torch.Tensor:
    """Roots (M, D) of ``function(x, *params) = targets`` carrying implicit gradients.

    Args:
        function: ``(x (M, D), *params) -> (M, D)``, differentiable in params.
        solution: (M, D) the roots found (no gradient needed or used).
        targets: (M, D) right-hand sides y; gradient ``J^{-T} grad``.
        jacobian: (M, D, D) ``d function / d x`` at the roots (D = 3).
        params: tensors theta the function depends on; each gets ``-(df/dtheta)^T J^{-T} grad``.
        usable: (M,) bool; rows that are not (no root found, singular J) pass no gradient.
            Default: all rows.

    Returns:
        (M, D) equal to ``solution``.
    """
    if solution.ndim != 2 or targets.shape != solution.shape:
        raise ValueError(f"implicit_root: solution and targets must both be (M, D), got "
                         f"{tuple(solution.shape)}, {tuple(targets.shape)}")
    if jacobian.shape != (*solution.shape, solution.shape[1]):
        raise ValueError(f"implicit_root: jacobian must be {(*solution.shape, solution.shape[1])}, "
                         f"got {tuple(jacobian.shape)}")
    if usable is None:
        usable = torch.ones(solution.shape[0], dtype=torch.bool, device=solution.device)
    return _ImplicitRoot.apply(function, solution.detach(), targets, jacobian.detach(), usable, *params)
