"""neuralbody.metrics: the one PSNR (from an MSE, and over the masked pixels of two images)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuralbody.evaluation import coverage
from neuralbody.metrics import psnr, psnr_from_mse


def test_psnr_from_mse_known_values_no_floor():
    assert psnr_from_mse(0.01) == pytest.approx(20.0, abs=1e-12)
    assert psnr_from_mse(1.0) == 0.0
    assert psnr_from_mse(1e-12) == pytest.approx(120.0, abs=1e-9)  # no 100 dB floor
    assert psnr_from_mse(0.0) == math.inf
    assert math.isnan(psnr_from_mse(math.nan))
    assert psnr_from_mse(torch.tensor(0.001)) == pytest.approx(30.0, abs=1e-5)
    with pytest.raises(ValueError, match="negative"):
        psnr_from_mse(-1e-3)


def test_psnr_known_value_and_mask():
    gt = np.zeros((8, 10, 3))
    pred = np.full((8, 10, 3), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(pred, gt) == pytest.approx(20.0, abs=1e-9)
    mask = np.zeros((8, 10), dtype=bool)
    mask[2:5, 3:7] = True
    pred[~mask] = 0.5  # errors outside the mask must not count
    assert psnr(pred, gt, mask=mask) == pytest.approx(20.0, abs=1e-9)
    assert psnr(pred, gt) < 20.0
    assert psnr(gt, gt) == math.inf
    assert psnr(torch.as_tensor(pred), torch.as_tensor(gt), mask=torch.as_tensor(mask)) == pytest.approx(20.0, abs=1e-9)


def test_psnr_is_float64_even_for_float32_images():
    rng = np.random.default_rng(0)
    gt = rng.random((30, 40, 3)).astype(np.float32)
    pred = np.clip(gt + rng.normal(scale=0.03, size=gt.shape), 0, 1).astype(np.float32)
    mse = np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2)
    assert psnr(pred, gt) == pytest.approx(-10 * np.log10(mse), abs=1e-12)


def test_coverage_pooled_psnr_is_the_same_function():
    # sse over 3 channels of 50 pixels -> mse = sse / 150
    assert coverage.psnr_from_sse(1.5, 50) == psnr_from_mse(0.01)
    assert coverage.psnr_from_sse(0.0, 50) == math.inf
    assert coverage.psnr_from_sse(0.0, 0) is None


def test_psnr_guards():
    pred = np.zeros((40, 40, 3))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        psnr(pred[..., 0], pred[..., 0])
    with pytest.raises(ValueError, match="same shape"):
        psnr(pred, pred[:30])
    with pytest.raises(ValueError, match=r"mask must be \(H, W\)"):
        psnr(pred, pred, mask=np.ones((40, 39), dtype=bool))
    with pytest.raises(ValueError, match="mask selects no pixel"):
        psnr(pred, pred, mask=np.zeros((40, 40), dtype=bool))
