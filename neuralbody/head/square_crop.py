"""A square window of an image, resized: the tracker's crops (pixel centres on integers; the window
itself: :mod:`neuralbody.data.square_window`).

A crop's pixel ``j`` (of ``resolution``) covers the image pixels ``x0 + [j, j + 1) s^-1`` with
``s = resolution / side``, so an image pixel ``u`` is ``(u - x0 + 0.5) s - 0.5`` in the crop and
back ``x0 + (u' + 0.5) / s - 0.5``. Outside the image is black.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralbody.data.images import resize_image
from neuralbody.data.square_window import SquareWindow, window_pixels


@dataclasses.dataclass(frozen=True)
class Crop:
    """A square window of the video: top-left pixel ``(x0, y0)`` and ``side`` (whole pixels); ``resolution`` of the output."""

    x0: int
    y0: int
    side: int
    resolution: int

    @property
    def scale(self) -> float:
        return self.resolution / self.side


    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> image pixels."""
        return np.array([self.x0, self.y0]) + (np.asarray(points, dtype=np.float64) + 0.5) / self.scale - 0.5


def square_around(low: np.ndarray, high: np.ndarray, resolution: int, *, margin: float, lift: float = 0.0) -> Crop:
    """The square crop centred on the box ``low``-``high`` (pixels), ``margin`` times its longer side, raised by ``lift`` of that."""
    if resolution < 16 or margin < 1.0:
        raise ValueError(f"square_around: resolution >= 16 and margin >= 1 needed, got {resolution}, {margin}")
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    side = max(8, int(round(float((high - low).max()) * margin)))
    centre = (low + high) / 2.0 - np.array([0.0, lift * side])
    return Crop(x0=int(round(centre[0] - side / 2.0)), y0=int(round(centre[1] - side / 2.0)), side=side,
                resolution=resolution)


def crop_image(image: np.ndarray, crop: Crop) -> np.ndarray:
    """(R, R, C) float32 crop of a (H, W, C) uint8 or (H, W) bool image; black (False) outside it."""
    image = np.asarray(image)
    planes = image[..., None] if image.ndim == 2 else image
    window = window_pixels(planes, SquareWindow(crop.x0, crop.y0, crop.side))
    out = resize_image(window, (crop.resolution, crop.resolution))
    return out[..., 0] if image.ndim == 2 else out / 255.0


