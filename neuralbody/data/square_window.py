"""A square window of an image, the crop that networks and trackers read.

A window ``(x0, y0, side)`` has its top-left corner on the pixel edge ``(x0, y0)`` (integers) and
covers the image pixels ``x0 .. x0 + side - 1`` (likewise in y); it may reach past the image,
where it is black. Resized to ``size`` pixels (scale ``s = size / side``), crop pixel ``j`` covers
the image pixels ``x0 + [j, j + 1) / s``, so an image pixel ``u`` (pixel centres on integers) is at
``(u - x0 + 0.5) s - 0.5`` in the crop: the intrinsics of the crop are the camera's focal lengths
times ``s`` and the principal point moved by that map (:func:`window_intrinsics`).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class SquareWindow:
    """Top-left corner ``(x0, y0)`` (pixel edges, integers) and ``side`` in pixels; it may extend past the image."""

    x0: int
    y0: int
    side: int


def window_pixels(image: np.ndarray, window: SquareWindow) -> np.ndarray:
    """(side, side, C) float32: the window of ``image`` (H, W, C), zeros where it lies outside the image."""
    if image.ndim != 3:
        raise ValueError(f"window_pixels: image must be (H, W, C), got {image.shape}")
    height, width, channels = image.shape
    canvas = np.zeros((window.side, window.side, channels), dtype=np.float32)
    x0, y0 = max(window.x0, 0), max(window.y0, 0)
    x1, y1 = min(window.x0 + window.side, width), min(window.y0 + window.side, height)
    if x1 > x0 and y1 > y0:
        canvas[y0 - window.y0 : y1 - window.y0, x0 - window.x0 : x1 - window.x0] = image[y0:y1, x0:x1]
    return canvas


def window_intrinsics(K: np.ndarray, window: SquareWindow, size: int) -> np.ndarray:
    """(3, 3) intrinsics (pixels) of the window of a camera with intrinsics ``K`` (3, 3), resized to ``size``."""
    scale = size / window.side
    cropped = np.array(K, dtype=np.float64, copy=True)
    cropped[:2, :2] *= scale
    cropped[0, 2] = (cropped[0, 2] - window.x0 + 0.5) * scale - 0.5
    cropped[1, 2] = (cropped[1, 2] - window.y0 + 0.5) * scale - 0.5
    return cropped
