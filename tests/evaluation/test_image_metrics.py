"""SSIM (against scikit-image), the box-mask protocol, and the offline-only LPIPS wrapper (PSNR: test_metrics.py)."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from neuralbody.data.cameras import Camera, project_box_mask
from neuralbody.evaluation import lpips_metric
from neuralbody.evaluation.image_metrics import SSIM_GAUSSIAN, box_mask_metrics, mask_bounding_rect, ssim
from neuralbody.metrics import psnr


def _images(seed: int = 0, size: tuple[int, int] = (40, 52)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = np.clip(rng.random((*size, 3)) * 0.5 + np.linspace(0, 0.5, size[1])[None, :, None], 0, 1)
    pred = np.clip(gt + rng.normal(scale=0.05, size=gt.shape), 0, 1)
    return pred, gt


def _skimage_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    return structural_similarity(
        pred, gt, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_skimage(seed):
    pred, gt = _images(seed)
    assert abs(ssim(pred, gt) - _skimage_ssim(pred, gt)) < 1e-4
    assert abs(ssim(torch.as_tensor(pred, dtype=torch.float32), torch.as_tensor(gt)) - _skimage_ssim(pred, gt)) < 1e-4
    bbox = (5, 7, 30, 40)
    expected = _skimage_ssim(pred[5:30, 7:40], gt[5:30, 7:40])
    assert abs(ssim(pred, gt, bbox=bbox) - expected) < 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    pred, gt = _images(8)
    mask = np.zeros(pred.shape[:2], dtype=bool)
    mask[5:20, 10:30] = True
    pred_gpu, gt_gpu = torch.as_tensor(pred).cuda(), torch.as_tensor(gt).cuda()
    assert psnr(pred_gpu, gt_gpu, mask=torch.as_tensor(mask).cuda()) == pytest.approx(psnr(pred, gt, mask=mask), abs=1e-9)
    assert ssim(pred_gpu, gt_gpu) == pytest.approx(ssim(pred, gt), abs=1e-9)


def test_ssim_invariants():
    pred, gt = _images(2)
    assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert ssim(pred, gt) == pytest.approx(ssim(gt, pred), abs=1e-12)  # symmetric
    noisier = np.clip(gt + np.random.default_rng(3).normal(scale=0.2, size=gt.shape), 0, 1)
    assert ssim(noisier, gt) < ssim(pred, gt) < 1.0


def test_mask_bounding_rect():
    mask = np.zeros((20, 30), dtype=bool)
    mask[4, 9] = mask[11, 5] = True
    assert mask_bounding_rect(mask) == (4, 5, 12, 10)
    with pytest.raises(ValueError, match="empty"):
        mask_bounding_rect(np.zeros((3, 3), dtype=bool))


def _front_camera(size: int = 48) -> Camera:
    K = np.array([[60.0, 0, (size - 1) / 2], [0, 60.0, (size - 1) / 2], [0, 0, 1]])
    return Camera(K=K, R=np.eye(3), T=np.array([0.0, 0.0, 3.0]), D=np.zeros(5), width=size, height=size, name="front")


def test_box_mask_protocol_against_manual_computation():
    camera = _front_camera()
    box_min, box_max = np.array([-0.6, -0.8, -0.3]), np.array([0.6, 0.8, 0.3])
    pred, gt = _images(4, size=(48, 48))
    box = project_box_mask(camera, box_min, box_max)
    assert 0 < box.sum() < box.size
    result = box_mask_metrics(pred, gt, camera, box_min, box_max, ssim_window=SSIM_GAUSSIAN)
    assert set(result) == {"psnr_box", "ssim_box", "psnr_full", "ssim_full"}
    mse_box = np.mean((pred[box] - gt[box]) ** 2)
    assert result["psnr_box"] == pytest.approx(-10 * np.log10(mse_box), abs=1e-9)
    top, left, bottom, right = mask_bounding_rect(box)
    zeroed_pred, zeroed_gt = pred * box[..., None], gt * box[..., None]
    expected_ssim = _skimage_ssim(zeroed_pred[top:bottom, left:right], zeroed_gt[top:bottom, left:right])
    assert abs(result["ssim_box"] - expected_ssim) < 1e-4
    assert result["psnr_full"] == pytest.approx(psnr(pred, gt), abs=1e-12)
    assert abs(result["ssim_full"] - _skimage_ssim(pred, gt)) < 1e-4


def test_box_mask_full_image_scores_higher_on_black_background():
    """Errors only on the person: whole-image PSNR is higher than box PSNR (the protocol's caveat)."""
    camera = _front_camera()
    gt = np.zeros((48, 48, 3))
    gt[18:30, 20:28] = 0.8
    pred = gt.copy()
    pred[18:30, 20:28] += 0.1
    result = box_mask_metrics(pred, gt, camera, [-0.4, -0.5, -0.2], [0.4, 0.5, 0.2])
    assert result["psnr_full"] > result["psnr_box"] + 3


def test_box_mask_guards():
    camera = _front_camera()
    pred, gt = _images(5, size=(40, 40))
    with pytest.raises(ValueError, match="Camera.scaled"):
        box_mask_metrics(pred, gt, camera, [-0.5] * 3, [0.5] * 3)
    with pytest.raises(ValueError, match="same shape"):
        ssim(pred, gt[:30])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(pred[:8], gt[:8])
    with pytest.raises(ValueError, match="bbox"):
        ssim(pred, gt, bbox=(10, 10, 5, 20))


def test_lpips_without_package_returns_none_and_logs_once(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "lpips", None)  # makes `import lpips` raise ImportError
    lpips_metric._log_skip_notice.cache_clear()
    pred, gt = _images(6)
    with caplog.at_level(logging.WARNING, logger=lpips_metric.__name__):
        assert lpips_metric.lpips_distance(pred, gt) is None
        assert lpips_metric.lpips_distance(pred, gt) is None
        assert lpips_metric.load_lpips() is None
    notices = [r for r in caplog.records if "LPIPS skipped" in r.getMessage()]
    assert len(notices) == 1
    assert "pip install lpips" in notices[0].getMessage()
    lpips_metric._log_skip_notice.cache_clear()


def test_lpips_without_backbone_weights_does_not_construct(monkeypatch, tmp_path, caplog):
    """A package that would download on construction is never constructed when the weights are absent."""
    package_dir = tmp_path / "lpips"
    (package_dir / "weights" / "v0.1").mkdir(parents=True)
    (package_dir / "weights" / "v0.1" / "alex.pth").write_bytes(b"")

    def forbidden(*args, **kwargs):
        raise AssertionError("LPIPS was constructed although its backbone weights are missing")

    fake = types.ModuleType("lpips")
    fake.__file__ = str(package_dir / "__init__.py")
    fake.LPIPS = forbidden
    monkeypatch.setitem(sys.modules, "lpips", fake)
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    lpips_metric._log_skip_notice.cache_clear()
    with caplog.at_level(logging.WARNING, logger=lpips_metric.__name__):
        assert lpips_metric.load_lpips("alex") is None
    reason = lpips_metric.lpips_unavailable_reason("alex")
    assert str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in reason
    assert sum("LPIPS skipped" in r.getMessage() for r in caplog.records) == 1
    lpips_metric._log_skip_notice.cache_clear()


@pytest.mark.skipif(lpips_metric.lpips_unavailable_reason("alex") is not None, reason="LPIPS weights not on this machine")
def test_lpips_when_available():
    pred, gt = _images(7, size=(64, 64))
    assert lpips_metric.lpips_distance(gt, gt) == pytest.approx(0.0, abs=1e-6)
    assert lpips_metric.lpips_distance(pred, gt) > 0.0
