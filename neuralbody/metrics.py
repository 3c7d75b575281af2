"""PSNR, once: from a mean squared error, and over the (masked) pixels of two images.

Images are (H, W, 3) RGB in [0, 1] (data range 1; NumPy arrays or torch tensors, CPU or
CUDA); the maths runs in float64 on the images' device and results are Python floats::

    PSNR = -10 log10(MSE)  dB,   MSE over the selected pixels and the three channels

There is no floor: identical images (MSE exactly 0) give ``inf``, everywhere (training logs,
evaluation tables, coverage reports). Training and evaluation both import this module, so it
depends on nothing in neuralbody.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB, ``-10 log10(mse)``, of a mean squared error of values in [0, 1].

    Returns ``inf`` for ``mse == 0`` (no floor) and ``nan`` for a ``nan`` mse (a diverged run).
    """
    mse = float(mse)
    if mse < 0:
        raise ValueError(f"psnr_from_mse: a mean squared error cannot be negative, got {mse}")
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)


def as_image(image, name: str) -> torch.Tensor:
    """(H, W, 3) float64 tensor (detached, on the image's device) of an RGB image array or tensor."""
    tensor = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if tensor.ndim != 3 or tensor.shape[2] != 3:
        raise ValueError(f"image metrics: {name} must be an (H, W, 3) RGB image in [0, 1], got shape {tuple(tensor.shape)}")
    return tensor.detach().to(torch.float64)


def as_image_pair(pred, gt) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``gt`` as (H, W, 3) float64 tensors on ``pred``'s device; their shapes must match."""
    pred, gt = as_image(pred, "pred"), as_image(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(
            f"image metrics: pred and gt must have the same shape, got {tuple(pred.shape)} and {tuple(gt.shape)}"
        )
    return pred, gt.to(pred.device)


def psnr(pred, gt, mask=None) -> float:
    """Peak signal-to-noise ratio in dB over the pixels where ``mask`` is True (all pixels if None).

    Args:
        pred: (H, W, 3) predicted image in [0, 1].
        gt: (H, W, 3) ground-truth image in [0, 1].
        mask: (H, W) bool or None.

    Returns:
        :func:`psnr_from_mse` of ``mean((pred - gt)^2)`` over the selected pixels and the three
        channels (float64); ``inf`` when they are identical.

    Raises:
        ValueError: when the mask selects no pixel.
    """
    pred, gt = as_image_pair(pred, gt)
    squared_error = (pred - gt).square()
    if mask is not None:
        mask = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask))
        if tuple(mask.shape) != tuple(pred.shape[:2]):
            raise ValueError(f"psnr: mask must be (H, W) = {tuple(pred.shape[:2])}, got {tuple(mask.shape)}")
        mask = mask.to(device=pred.device, dtype=torch.bool)
        if not bool(mask.any()):
            raise ValueError("psnr: the mask selects no pixel; check the camera and the box you evaluate in")
        squared_error = squared_error[mask]
    return psnr_from_mse(float(squared_error.mean()))
