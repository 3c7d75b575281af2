"""BlazePose's 33 landmarks -> the 17 COCO body keypoints, and its segmentation -> a person mask.

Pure functions (no MediaPipe import), so the mapping is testable anywhere.

BlazePose (MediaPipe Pose) landmark order (``mp.solutions.pose.PoseLandmark``)::

    0 nose, 1-3 left eye inner/eye/outer, 4-6 right eye inner/eye/outer, 7 left ear, 8 right ear,
    9-10 mouth left/right, 11-12 shoulders, 13-14 elbows, 15-16 wrists, 17-22 pinky/index/thumb,
    23-24 hips, 25-26 knees, 27-28 ankles, 29-30 heels, 31-32 foot index       (left before right)

COCO-17 (:data:`neuralbody.fitting.keypoints.COCO_KEYPOINTS`) takes the nose, the eye centres,
ears, shoulders, elbows, wrists, hips, knees and ankles ("left" is the person's left in both).

Coordinates: MediaPipe's normalised ``x, y`` run from 0 at the left/top *edge* of the image to 1
at the right/bottom edge; this package puts pixel centres on integers (OpenCV), so
``u = x * width - 0.5``, ``v = y * height - 0.5``. The confidence is BlazePose's ``visibility``
(a probability in [0, 1]); a landmark that falls outside the image gets confidence 0, because
BlazePose extrapolates landmarks it cannot see.
"""

from __future__ import annotations

import numpy as np

BLAZEPOSE_NUM_LANDMARKS = 33

BLAZEPOSE_OF_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
"""For each COCO-17 keypoint (COCO order), the index of the BlazePose landmark standing in for it."""


def blazepose_to_coco(landmarks: np.ndarray, width: int, height: int, *, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """COCO-17 pixel keypoints from BlazePose landmarks.

    Args:
        landmarks: (..., 33, 3) ``(x, y, visibility)``, x and y normalised to the image that
            was processed (0..1 edge to edge), visibility in [0, 1].
        width, height: size in pixels of the processed image (a crop, or the whole image).
        offset: ``(x0, y0)`` pixel position of the processed crop's top-left corner in the
            full image (0, 0 for the whole image).

    Returns:
        (..., 17, 3) float64 ``(u, v, confidence)`` in pixels of the full image (pixel centres
        on integers); confidence is the visibility, 0 for landmarks outside the processed image.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim < 2 or landmarks.shape[-2:] != (BLAZEPOSE_NUM_LANDMARKS, 3):
        raise ValueError(
            f"blazepose_to_coco: landmarks must be (..., {BLAZEPOSE_NUM_LANDMARKS}, 3) = (x, y, visibility), "
            f"got {landmarks.shape}"
        )
    if width <= 0 or height <= 0:
        raise ValueError(f"blazepose_to_coco: width and height must be positive, got {width}x{height}")
    picked = landmarks[..., BLAZEPOSE_OF_COCO, :]
    x, y, visibility = picked[..., 0], picked[..., 1], picked[..., 2]
    inside = (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1) & np.isfinite(x) & np.isfinite(y)
    u = x * width - 0.5 + offset[0]
    v = y * height - 0.5 + offset[1]
    confidence = np.where(inside, np.clip(np.nan_to_num(visibility, nan=0.0), 0.0, 1.0), 0.0)
    return np.stack([u, v, confidence], axis=-1)


def segmentation_to_mask(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(H, W) bool person mask from a (H, W) float person probability (MediaPipe's segmentation)."""
    probability = np.asarray(probability)
    if probability.ndim != 2:
        raise ValueError(f"segmentation_to_mask: probability must be (H, W), got {probability.shape}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"segmentation_to_mask: threshold must be in (0, 1), got {threshold}")
    return np.nan_to_num(probability, nan=0.0) > threshold
