"""The ``zju`` and ``nb-custom`` protocols against an independent transcription of Neural Body's
evaluator (``lib/evaluators/if_nerf.py`` with the box and rays of its ZJU-MoCap dataset).

The transcription below follows the original's steps, written afresh with NumPy and
scikit-image: the posed vertices' min/max padded 5 cm along z (``big_box=False``) or on every
axis (``big_box=True``); ``mask_at_box`` from a slab test of each pixel's ray (through the
integer pixel coordinates, world frame) against that box; PSNR over the masked pixels; the
render and the truth pasted into black images, cropped to the mask's bounding rectangle and
compared by the old ``compare_ssim(..., multichannel=True)``, whose defaults on float images were
a 7 x 7 uniform window, sample covariances and a data range of 2 (the dtype's -1..1).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from fake_zju import look_at_rotation
from neuralbody.data.cameras import Camera, project_box_mask
from neuralbody.evaluation.image_metrics import (
    PROTOCOLS,
    SSIM_GAUSSIAN,
    SSIM_NEURAL_BODY,
    box_mask_metrics,
    get_protocol,
    ssim,
)

WIDTH, HEIGHT = 96, 80


def _camera() -> Camera:
    centre = np.array([2.4, -1.1, 1.7])
    R = look_at_rotation(centre, np.array([0.05, 0.0, 0.95]))
    K = np.array([[95.0, 0.0, 47.3], [0.0, 95.0, 40.6], [0.0, 0.0, 1.0]])
    return Camera(K=K, R=R, T=-R @ centre, D=np.zeros(5), width=WIDTH, height=HEIGHT, name="held_out")


def _vertices(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return np.array([0.0, 0.0, 0.9]) + directions * rng.uniform(0.2, 1.0, (500, 1)) * [0.25, 0.15, 0.8]


def _stored_images(tmp_path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 'ground truth' and a 'render' with errors, stored as 8-bit PNGs and read back as floats in [0, 1]."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    person = ((u - 48) / 14.0) ** 2 + ((v - 40) / 30.0) ** 2 < 1.0
    gt = np.zeros((HEIGHT, WIDTH, 3))
    gt[person] = 0.3 + 0.4 * rng.random((int(person.sum()), 3))
    pred = np.clip(gt + rng.normal(scale=0.06, size=gt.shape) * (person[..., None] | (rng.random(person.shape) < 0.1)[..., None]), 0, 1)
    images = []
    for name, image in (("gt", gt), ("pred", pred)):
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
        images.append(np.asarray(Image.open(path), dtype=np.float64) / 255.0)
    return images[1], images[0]


# ----------------------------------------------------------------------------------------------
# the transcription
def _original_box(vertices: np.ndarray, big_box: bool) -> np.ndarray:
    lower, upper = vertices.min(axis=0).copy(), vertices.max(axis=0).copy()
    if big_box:
        lower -= 0.05
        upper += 0.05
    else:
        lower[2] -= 0.05
        upper[2] += 0.05
    return np.stack([lower, upper])


def _original_mask_at_box(camera: Camera, bounds: np.ndarray) -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(WIDTH, dtype=np.float64), np.arange(HEIGHT, dtype=np.float64))
    pixels = np.stack([cols, rows, np.ones_like(cols)], axis=-1).reshape(-1, 3)
    in_camera = pixels @ np.linalg.inv(camera.K).T
    origin = -camera.R.T @ camera.T
    direction = (in_camera - camera.T) @ camera.R - origin  # world point on the ray, minus the centre
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    direction = np.where(np.abs(direction) < 1e-9, 1e-9, direction)
    t_lower = (bounds[0] - origin) / direction
    t_upper = (bounds[1] - origin) / direction
    near = np.minimum(t_lower, t_upper).max(axis=1)
    far = np.maximum(t_lower, t_upper).min(axis=1)
    return (near < far).reshape(HEIGHT, WIDTH)


def _original_metrics(pred: np.ndarray, gt: np.ndarray, mask_at_box: np.ndarray) -> tuple[float, float]:
    rgb_pred, rgb_gt = pred[mask_at_box], gt[mask_at_box]
    psnr = -10.0 * np.log(np.mean((rgb_pred - rgb_gt) ** 2)) / np.log(10.0)
    img_pred, img_gt = np.zeros((HEIGHT, WIDTH, 3)), np.zeros((HEIGHT, WIDTH, 3))
    img_pred[mask_at_box], img_gt[mask_at_box] = rgb_pred, rgb_gt
    rows, cols = np.nonzero(mask_at_box.any(axis=1))[0], np.nonzero(mask_at_box.any(axis=0))[0]
    y, x, h, w = rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1  # cv2.boundingRect
    crop_pred, crop_gt = img_pred[y : y + h, x : x + w], img_gt[y : y + h, x : x + w]
    ssim_value = structural_similarity(
        crop_pred, crop_gt, win_size=7, gaussian_weights=False, use_sample_covariance=True, data_range=2,
        channel_axis=-1,
    )
    return float(psnr), float(ssim_value)


# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "big_box"), [("zju", False), ("nb-custom", True)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_protocol_matches_the_original_evaluator(tmp_path, name, big_box, seed):
    camera, vertices = _camera(), _vertices(seed)
    pred, gt = _stored_images(tmp_path, seed)
    bounds = _original_box(vertices, big_box)
    mask_at_box = _original_mask_at_box(camera, bounds)
    assert 0.1 < mask_at_box.mean() < 0.9
    expected_psnr, expected_ssim = _original_metrics(pred, gt, mask_at_box)

    protocol = get_protocol(name)
    box_min, box_max = protocol.box(vertices)
    np.testing.assert_allclose(np.stack([box_min, box_max]), bounds, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(project_box_mask(camera, box_min, box_max), mask_at_box)
    result = box_mask_metrics(pred, gt, camera, box_min, box_max, ssim_window=protocol.ssim_window)
    assert result["psnr_box"] == pytest.approx(expected_psnr, abs=1e-6)
    assert result["ssim_box"] == pytest.approx(expected_ssim, abs=1e-6)


def test_zju_box_is_the_up_axis_padding_and_scores_differently(tmp_path):
    """The ZJU box takes in less background than the all-axes box: fewer pixels, other figures."""
    camera, vertices = _camera(), _vertices(3)
    pred, gt = _stored_images(tmp_path, 3)
    zju, padded = get_protocol("zju"), get_protocol("padded-box")
    zju_min, zju_max = zju.box(vertices)
    pad_min, pad_max = padded.box(vertices)
    np.testing.assert_allclose(pad_max - zju_max, [0.05, 0.05, 0.0], atol=1e-12)
    np.testing.assert_allclose(zju_min - pad_min, [0.05, 0.05, 0.0], atol=1e-12)
    zju_mask, pad_mask = project_box_mask(camera, zju_min, zju_max), project_box_mask(camera, pad_min, pad_max)
    assert zju_mask.sum() < pad_mask.sum() and not (zju_mask & ~pad_mask).any()
    a = box_mask_metrics(pred, gt, camera, zju_min, zju_max, ssim_window=zju.ssim_window)
    b = box_mask_metrics(pred, gt, camera, pad_min, pad_max, ssim_window=padded.ssim_window)
    assert a["psnr_box"] != pytest.approx(b["psnr_box"], abs=1e-3)
    assert a["psnr_full"] == pytest.approx(b["psnr_full"], abs=1e-12)  # the whole image does not depend on the box


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_windows_match_skimage_on_whole_images(tmp_path, seed):
    pred, gt = _stored_images(tmp_path, seed)
    uniform = structural_similarity(pred, gt, win_size=7, gaussian_weights=False, use_sample_covariance=True,
                                    data_range=2, channel_axis=-1)
    gaussian = structural_similarity(pred, gt, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1, channel_axis=-1)
    assert ssim(pred, gt, window=SSIM_NEURAL_BODY) == pytest.approx(uniform, abs=1e-9)
    assert ssim(pred, gt, window=SSIM_GAUSSIAN) == pytest.approx(gaussian, abs=1e-9)
    assert ssim(pred, gt, window=SSIM_NEURAL_BODY) > ssim(pred, gt, window=SSIM_GAUSSIAN)  # range 2 reads higher


def test_protocol_registry_and_guards():
    assert set(PROTOCOLS) == {"zju", "nb-custom", "padded-box"}
    assert get_protocol("zju").box_axes == (2,) and get_protocol("zju").ssim_window == SSIM_NEURAL_BODY
    assert get_protocol("padded-box").box_axes == (0, 1, 2) and get_protocol("padded-box").ssim_window == SSIM_GAUSSIAN
    assert get_protocol(get_protocol("nb-custom")) is get_protocol("nb-custom")
    with pytest.raises(ValueError, match="zju, nb-custom, padded-box"):
        get_protocol("zju-mocap")
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.zeros((6, 9, 3)), np.zeros((6, 9, 3)), window=SSIM_NEURAL_BODY)
