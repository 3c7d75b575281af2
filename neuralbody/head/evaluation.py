"""Rendering whole images of a head avatar and scoring them against the synthetic ground truth.

Per held-out frame and camera: PSNR over the whole image (black background; :func:`neuralbody.metrics.psnr`),
SSIM over the ground-truth mask's bounding rectangle (:func:`neuralbody.evaluation.image_metrics.ssim`),
and the depth error: mean ``|z_pred - z_gt|`` in millimetres over the pixels that are head in
the ground truth and have rendered opacity above 1/2 (with the share of the ground-truth head
that is so covered, ``depth_coverage``), for the surface depth (where the opacity reaches 1/2:
``depth_mm``) and for the expected depth of volume rendering (``mean_depth_mm``, which
semi-transparent density in front of or behind the surface pulls away from it).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays
from neuralbody.evaluation.image_metrics import mask_bounding_rect, ssim
from neuralbody.head.avatar import ImAvatar
from neuralbody.head.capture import HeadCapture
from neuralbody.head.occupancy import posed_occupancy
from neuralbody.head.frame import HeadFrame, head_frame
from neuralbody.head.raymarch import render_rays
from neuralbody.metrics import psnr


@dataclasses.dataclass
class RenderedImage:
    """One rendered view: rgb (H, W, 3), opacity (H, W), expected and surface depth (H, W) camera z metres; seconds."""

    rgb: np.ndarray
    opacity: np.ndarray
    depth: np.ndarray
    surface: np.ndarray
    seconds: float


@dataclasses.dataclass
class ImageScore:
    """Scores of one view: psnr (dB), ssim, depth_mm, mean_depth_mm, depth_coverage in [0, 1]."""

    split: str
    frame: int
    camera: str
    psnr: float
    ssim: float
    depth_mm: float
    mean_depth_mm: float
    depth_coverage: float


def render_image(avatar, frame: HeadFrame, camera: Camera, *, samples: int = 32, chunk: int = 4096) -> RenderedImage:
    """Render a camera's whole image of a frame (no gradients; rays in chunks).

    IMAvatar skips root finding outside its forward-mapped occupancy (:mod:`neuralbody.head.occupancy`),
    built here and counted in the time.
    """
    start = time.perf_counter()
    occupancy = posed_occupancy(avatar, frame) if isinstance(avatar, ImAvatar) else None
    o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    forward = torch.tensor(camera.R[2], dtype=torch.float32)
    parts = []
    with torch.no_grad():
        for first in range(0, o.shape[0], chunk):
            parts.append(render_rays(avatar, frame, o[first : first + chunk], d[first : first + chunk], forward,
                                     samples=samples, occupancy=occupancy))
    h, w = camera.height, camera.width
    return RenderedImage(rgb=torch.cat([p.rgb for p in parts]).reshape(h, w, 3).numpy(),
                         opacity=torch.cat([p.opacity for p in parts]).reshape(h, w).numpy(),
                         depth=torch.cat([p.depth for p in parts]).reshape(h, w).numpy(),
                         surface=torch.cat([p.surface for p in parts]).reshape(h, w).numpy(),
                         seconds=time.perf_counter() - start)


def score_image(rendered: RenderedImage, image: np.ndarray, mask: np.ndarray, depth: np.ndarray) -> dict:
    """Scores (:class:`ImageScore`'s) of a rendering against ground truth image (H, W, 3), mask and depth (H, W)."""
    covered = mask & (rendered.opacity > 0.5)

    def error_mm(predicted: np.ndarray) -> float:
        error = np.abs(predicted - depth)[covered]
        return float(error.mean() * 1000.0) if error.size else float("nan")

    return {"psnr": psnr(rendered.rgb, image), "ssim": ssim(rendered.rgb, image, bbox=mask_bounding_rect(mask)),
            "depth_mm": error_mm(rendered.surface), "mean_depth_mm": error_mm(rendered.depth),
            "depth_coverage": float(covered.sum() / max(1, mask.sum()))}


def evaluate_split(avatar, capture: HeadCapture, split: str, *, frames: list[int] | None = None,
                   samples: int = 32, keep: dict | None = None) -> list[ImageScore]:
    """Scores of every (frame, camera) of a held-out split (``frames``: a subset of its frames).

    ``keep``: if given, ``keep[(frame, camera)] = RenderedImage`` collects the renderings.
    """
    chosen = capture.split(split) if frames is None else frames
    scores = []
    for index in chosen:
        frame = head_frame(capture.rig, capture.params(index))
        for name in capture.views(split):
            rendered = render_image(avatar, frame, capture.camera(index, name), samples=samples)
            if keep is not None:
                keep[(index, name)] = rendered
            values = score_image(rendered, capture.image(index, name), capture.mask(index, name),
                                 capture.depth(index, name))
            scores.append(ImageScore(split=split, frame=index, camera=name, **values))
    return scores


def mean_scores(scores: list[ImageScore]) -> dict:
    """Means of psnr, ssim, depth_mm, mean_depth_mm (NaNs skipped), depth_coverage over scores."""
    out = {}
    for key in ("psnr", "ssim", "depth_mm", "mean_depth_mm", "depth_coverage"):
        values = np.array([getattr(s, key) for s in scores], dtype=np.float64)
        out[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out
