"""Image metrics: PSNR, SSIM, and Neural Body's box-mask evaluation protocols.

Images are (H, W, 3) RGB in [0, 1] (numpy arrays or torch tensors, CPU or CUDA); all maths
runs in float64 on the images' device and results are Python floats.

* PSNR (dB): :func:`neuralbody.metrics.psnr`, ``-10 log10(MSE)`` with the MSE over the selected
  pixels and all channels (data range 1). ``inf`` for identical images.
* SSIM (Wang et al. 2004): for each channel, local statistics under a window (:class:`SsimWindow`)
  give ``S = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_xx + s_yy + C2))`` with
  ``C1 = (0.01 L)^2, C2 = (0.03 L)^2`` for a data range ``L``, and covariances scaled by
  ``N / (N - 1)`` (N = pixels in the window) when they are sample covariances; the SSIM is the
  mean of ``S`` over the window centres whose whole window lies in the image, averaged over
  channels. Two windows are used:

  - :data:`SSIM_NEURAL_BODY`: 7 x 7 uniform window, data range 2, sample covariances: what Neural
    Body's evaluator got from scikit-image's old ``compare_ssim(pred, gt, multichannel=True)``
    on float images (its defaults then: ``win_size=7``, ``gaussian_weights=False``,
    ``use_sample_covariance=True``, and a data range taken from the dtype, -1..1 for floats);
    equal to ``skimage.metrics.structural_similarity(pred, gt, channel_axis=-1, win_size=7,
    gaussian_weights=False, data_range=2, use_sample_covariance=True)``.
  - :data:`SSIM_GAUSSIAN`: 11 x 11 Gaussian window (sigma 1.5, truncated at radius 5), data range
    1, population covariances (Wang et al.), equal to ``structural_similarity(pred, gt,
    channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
    It reads 0.02-0.04 lower than the other on renders of people.

The box-mask protocols (:class:`ImageProtocol`, :data:`PROTOCOLS`, :func:`box_mask_metrics`)
say which box and which SSIM window score an image.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from neuralbody.data.cameras import Camera, project_box_mask
from neuralbody.geometry.box import BODY_BOX_PADDING, body_box
from neuralbody.metrics import as_image_pair, psnr

SSIM_K1, SSIM_K2 = 0.01, 0.03


@dataclasses.dataclass(frozen=True)
class SsimWindow:
    """How SSIM gathers its local statistics.

    Attributes:
        kind: "gaussian" (normalised Gaussian taps) or "uniform" (equal taps).
        size: side of the square window in pixels (odd).
        data_range: L of the constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        sample_covariance: scale variances and covariance by ``N / (N - 1)``, N = size^2.
        sigma: standard deviation of the Gaussian taps in pixels (gaussian only).
    """

    kind: str
    size: int
    data_range: float
    sample_covariance: bool
    sigma: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("gaussian", "uniform"):
            raise ValueError(f"SsimWindow: kind must be 'gaussian' or 'uniform', got {self.kind!r}")
        if self.size < 3 or self.size % 2 != 1:
            raise ValueError(f"SsimWindow: size must be odd and >= 3, got {self.size}")
        if self.kind == "gaussian" and (self.sigma is None or self.sigma <= 0):
            raise ValueError(f"SsimWindow: a gaussian window needs sigma > 0, got {self.sigma}")
        if self.data_range <= 0:
            raise ValueError(f"SsimWindow: data_range must be > 0, got {self.data_range}")

    def taps(self, device=None) -> torch.Tensor:
        """(size,) normalised 1-D taps, float64 (the window is their outer product)."""
        radius = self.size // 2
        if self.kind == "uniform":
            return torch.full((self.size,), 1.0 / self.size, dtype=torch.float64, device=device)
        x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
        taps = torch.exp(-0.5 * (x / self.sigma) ** 2)
        return taps / taps.sum()


SSIM_GAUSSIAN = SsimWindow(kind="gaussian", size=11, data_range=1.0, sample_covariance=False, sigma=1.5)
SSIM_NEURAL_BODY = SsimWindow(kind="uniform", size=7, data_range=2.0, sample_covariance=True)


def _filter_valid(planes: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of (B, 1, H, W) planes with 1-D ``taps`` along both axes."""
    size = taps.numel()
    planes = F.conv2d(planes, taps.view(1, 1, size, 1))
    return F.conv2d(planes, taps.view(1, 1, 1, size))


def ssim_map(pred, gt, window: SsimWindow = SSIM_GAUSSIAN) -> torch.Tensor:
    """(3, H - 2r, W - 2r) per-channel SSIM at every window centre r = size // 2 or more pixels from the border.

    pred, gt: (H, W, 3) images in [0, 1] with H, W >= the window size. Filtering only inside the
    image makes border handling irrelevant (skimage filters with reflection, then crops the same band).
    """
    pred, gt = as_image_pair(pred, gt)
    size = window.size
    if pred.shape[0] < size or pred.shape[1] < size:
        raise ValueError(f"ssim: images must be at least {size}x{size} pixels, got {tuple(pred.shape[:2])}")
    x = pred.permute(2, 0, 1)[:, None]  # (3, 1, H, W)
    y = gt.permute(2, 0, 1)[:, None]
    stats = _filter_valid(torch.cat([x, y, x * x, y * y, x * y]), window.taps(device=pred.device))  # (15, 1, H', W')
    mu_x, mu_y, xx, yy, xy = stats.view(5, 3, *stats.shape[2:])
    count = size * size
    norm = count / (count - 1.0) if window.sample_covariance else 1.0
    var_x, var_y, cov_xy = norm * (xx - mu_x**2), norm * (yy - mu_y**2), norm * (xy - mu_x * mu_y)
    c1, c2 = (SSIM_K1 * window.data_range) ** 2, (SSIM_K2 * window.data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(pred, gt, bbox: tuple[int, int, int, int] | None = None, *, window: SsimWindow = SSIM_GAUSSIAN) -> float:
    """Structural similarity under ``window`` (default: Gaussian 11 x 11, sigma 1.5, data range 1), channel-averaged.

    Args:
        pred: (H, W, 3) predicted image in [0, 1].
        gt: (H, W, 3) ground-truth image in [0, 1].
        bbox: ``(top, left, bottom, right)`` pixel rectangle to crop both images to before the
            SSIM (rows ``top:bottom``, columns ``left:right``, end exclusive); None: whole image.
        window: :data:`SSIM_GAUSSIAN` or :data:`SSIM_NEURAL_BODY` (or another :class:`SsimWindow`).
    """
    pred, gt = as_image_pair(pred, gt)
    if bbox is not None:
        top, left, bottom, right = (int(v) for v in bbox)
        if not (0 <= top < bottom <= pred.shape[0] and 0 <= left < right <= pred.shape[1]):
            raise ValueError(
                f"ssim: bbox (top, left, bottom, right) = {bbox} is empty or outside the {tuple(pred.shape[:2])} image"
            )
        pred, gt = pred[top:bottom, left:right], gt[top:bottom, left:right]
    return float(ssim_map(pred, gt, window).mean())


def mask_bounding_rect(mask) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the smallest rectangle holding every True pixel of (H, W) ``mask``.

    End-exclusive, like ``cv2.boundingRect``'s ``(y, x, y + h, x + w)``.
    """
    mask = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask_bounding_rect: mask must be (H, W), got shape {mask.shape}")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask_bounding_rect: the mask is empty")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


@dataclasses.dataclass(frozen=True)
class ImageProtocol:
    """How one held-out image is scored: which box, which SSIM.

    Attributes:
        name: the protocol's name (:data:`PROTOCOLS`).
        box_axes: world axes along which the posed vertices' box is padded by
            :data:`~neuralbody.geometry.box.BODY_BOX_PADDING` (5 cm) on both sides.
        ssim_window: the SSIM of the box crop and of the whole image.
        description: one line for result files and tables.
    """

    name: str
    box_axes: tuple[int, ...]
    ssim_window: SsimWindow
    description: str

    def box(self, vertices) -> tuple:
        """``box_min, box_max`` (3,) each of posed vertices (V, 3), world, metres (:func:`body_box`)."""
        return body_box(vertices, axes=self.box_axes)


_PAD_CM = round(BODY_BOX_PADDING * 100)
ZJU_PROTOCOL = ImageProtocol(
    name="zju",
    box_axes=(2,),
    ssim_window=SSIM_NEURAL_BODY,
    description=(
        f"Neural Body's ZJU-MoCap evaluator (big_box=False): posed vertices' box padded {_PAD_CM} cm along world z "
        "only; PSNR inside its projection; SSIM 7x7 uniform window, data range 2, on its bounding rectangle"
    ),
)
NEURAL_BODY_CUSTOM_PROTOCOL = ImageProtocol(
    name="nb-custom",
    box_axes=(0, 1, 2),
    ssim_window=SSIM_NEURAL_BODY,
    description=(
        f"Neural Body's evaluator with its custom-data box (big_box=True): box padded {_PAD_CM} cm on every axis; "
        "SSIM 7x7 uniform window, data range 2"
    ),
)
PADDED_BOX_PROTOCOL = ImageProtocol(
    name="padded-box",
    box_axes=(0, 1, 2),
    ssim_window=SSIM_GAUSSIAN,
    description=(
        f"this project's earlier protocol: box padded {_PAD_CM} cm on every axis; SSIM 11x11 Gaussian window "
        "(sigma 1.5), data range 1"
    ),
)
PROTOCOLS = {p.name: p for p in (ZJU_PROTOCOL, NEURAL_BODY_CUSTOM_PROTOCOL, PADDED_BOX_PROTOCOL)}
DEFAULT_PROTOCOL = ZJU_PROTOCOL.name


def get_protocol(protocol: str | ImageProtocol) -> ImageProtocol:
    """The :class:`ImageProtocol` called ``protocol`` (one of :data:`PROTOCOLS`), or ``protocol`` itself."""
    if isinstance(protocol, ImageProtocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def box_mask_metrics(
    pred, gt, camera: Camera, box_min, box_max, *, ssim_window: SsimWindow = SSIM_NEURAL_BODY
) -> dict[str, float]:
    """Neural Body's evaluation protocol for one image, plus whole-image figures.

    Neural Body renders only the pixels whose rays cross the body's 3D bounding box and scores
    them against the ground truth:

    * ``psnr_box``: PSNR over the pixels inside the projection of the box
      (:func:`neuralbody.data.cameras.project_box_mask`, the convex hull of the 8 projected
      corners: the pixels whose ray crosses the box).
    * ``ssim_box``: both images are set to 0 outside that projection (Neural Body's images hold
      only the rendered pixels), cropped to the projection's bounding rectangle, then SSIM
      under ``ssim_window``.
    * ``psnr_full`` / ``ssim_full``: the same metrics over the whole image. With a black
      background these are much higher than the box figures (Neural Body: 34.2 vs 28.1 dB), so
      only compare box figures with the published tables.

    Which box (padded along z only or on every axis) is the caller's choice
    (:meth:`ImageProtocol.box`).

    Args:
        pred: (H, W, 3) rendered image in [0, 1], as seen by ``camera``.
        gt: (H, W, 3) ground-truth image in [0, 1].
        camera: the camera (its width and height must match the images).
        box_min: (3,) corner of the body's axis-aligned bounding box, world frame, metres.
        box_max: (3,) opposite corner, metres.
        ssim_window: :data:`SSIM_NEURAL_BODY` (default, Neural Body's evaluator) or
            :data:`SSIM_GAUSSIAN`.

    Returns:
        dict with ``psnr_box``, ``ssim_box``, ``psnr_full``, ``ssim_full`` (dB and [0, 1]).
    """
    pred, gt = as_image_pair(pred, gt)
    if tuple(pred.shape[:2]) != (camera.height, camera.width):
        raise ValueError(
            f"box_mask_metrics: images are {tuple(pred.shape[:2])} but camera {camera.name!r} is "
            f"{camera.height}x{camera.width}; scale the camera with Camera.scaled to the image size"
        )
    box_mask_np = project_box_mask(camera, np.asarray(box_min, dtype=np.float64), np.asarray(box_max, dtype=np.float64))
    if not box_mask_np.any():
        raise ValueError(f"box_mask_metrics: the box does not project into camera {camera.name!r}; check box_min/box_max")
    box_mask = torch.as_tensor(box_mask_np, device=pred.device)
    keep = box_mask[:, :, None]
    pred_in_box = torch.where(keep, pred, torch.zeros_like(pred))
    gt_in_box = torch.where(keep, gt, torch.zeros_like(gt))
    return {
        "psnr_box": psnr(pred, gt, mask=box_mask),
        "ssim_box": ssim(pred_in_box, gt_in_box, bbox=mask_bounding_rect(box_mask_np), window=ssim_window),
        "psnr_full": psnr(pred, gt),
        "ssim_full": ssim(pred, gt, window=ssim_window),
    }
