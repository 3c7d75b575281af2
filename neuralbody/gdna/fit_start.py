"""Where a scan fit starts: the candidate code with the lowest fitting loss (best-of-K initialisation).

Auto-decoding a new scan (:mod:`neuralbody.gdna.fitting`) is a non-convex search over a code
``z``; gradient steps from the mean code find the basin nearest the mean, not necessarily the
best one. The training scans' own codes are points the networks were trained to decode, so
the loss of the scan at each of them (and at the mean) is a cheap look at the whole latent
space: with candidates ``z_0 = mu, z_1..z_K`` (the K training codes) and a fixed set of the
scan's targets, the fit starts from::

    z_start = argmin_k L_data(z_k)

``L_data`` the stage's own data loss (no prior: every candidate is a code of the model), each
candidate scored on the same points so the comparison is fair. K + 1 evaluations of the loss,
no gradients: about as much as a few optimisation steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch


@dataclasses.dataclass(frozen=True)
class BestStart:
    """The chosen start.

    Attributes:
        code: (L,) the candidate with the lowest loss (a copy).
        index: its row among the candidates.
        losses: (K,) every candidate's loss.
    """

    code: torch.Tensor
    index: int
    losses: torch.Tensor


def lowest_loss_code(candidates: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]) -> BestStart:
    """The row of ``candidates`` (K, L) with the lowest ``loss_of(code (L,)) -> scalar`` (module docstring).

    ``loss_of`` must score every candidate on the same points; it runs without gradients. Ties go
    to the first row (put the mean code first to prefer it). Non-finite losses never win unless
    all are.
    """
    if candidates.ndim != 2 or not len(candidates):
        raise ValueError(f"lowest_loss_code: candidates must be a non-empty (K, L), got {tuple(candidates.shape)}")
    with torch.no_grad():
        losses = torch.stack([torch.as_tensor(loss_of(code), dtype=torch.float64).reshape(()) for code in candidates])
    if losses.ndim != 1:
        raise ValueError("lowest_loss_code: loss_of must return a scalar")
    ranked = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, float("inf")))
    index = int(torch.argmin(ranked))
    return BestStart(candidates[index].detach().clone(), index, losses)


def lowest_loss_code_reference(candidates: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """:func:`lowest_loss_code`'s index by a plain loop (test oracle)."""
    best, best_loss = 0, float("inf")
    for index in range(len(candidates)):
        with torch.no_grad():
            loss = float(loss_of(candidates[index]))
        if loss == loss and loss < best_loss:  # NaN never wins
            best, best_loss = index, loss
    return best
