"""One person's COCO-17 keypoints and mask in an image, on the CPU, with MediaPipe Pose (optional extra).

The weights ship inside the ``mediapipe`` wheel (``pose_detection.tflite``,
``pose_landmark_full.tflite`` / ``_lite``, ``selfie_segmentation.tflite``), so nothing is
downloaded at run time. Install with ``pip install 'neuralbody[detect]'`` (MediaPipe 0.10.14,
whose legacy ``mp.solutions.pose`` API carries those models; it works with NumPy 2).

MediaPipe Pose finds *one* person per image (the most confident detection); choosing the right
person when there are several is the job of :mod:`neuralbody.capture_import.multiview_person`,
which re-runs this detector on a crop around where the person must be.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import numpy as np

from neuralbody.capture_import.blazepose import blazepose_to_coco, segmentation_to_mask

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'neuralbody[detect]'   (or: pip install 'mediapipe==0.10.14')"
MODEL_COMPLEXITIES = (0, 1)  # lite and full ship in the wheel; 2 (heavy) would be downloaded, so it is not offered


def require_mediapipe():
    """The ``mediapipe`` module, or an ImportError saying how to install it."""
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(
            "person masks and keypoints need MediaPipe, an optional extra that is not installed "
            f"({error}). Install it with: {INSTALL_HINT}"
        ) from error
    if not hasattr(mediapipe, "solutions") or not hasattr(mediapipe.solutions, "pose"):
        raise ImportError(
            f"mediapipe {getattr(mediapipe, '__version__', '?')} has no legacy mp.solutions.pose (with its models "
            f"in the wheel); install the supported release: {INSTALL_HINT}"
        )
    return mediapipe


@dataclasses.dataclass
class PersonDetection:
    """What the detector found in one image (or crop), in full-image pixels.

    Attributes:
        keypoints: (17, 3) COCO ``(u, v, confidence)``, pixel centres on integers; all zero
            when nobody was found.
        mask: (H, W) bool person mask of the full image (False outside the processed crop).
        found: whether a person was detected.
    """

    keypoints: np.ndarray
    mask: np.ndarray
    found: bool


class Detector(Protocol):
    """What ``detect`` needs of a person detector (:class:`PersonDetector`, or a test's fake).

    Attributes:
        version: the detector's version, written to the capture's detection report.
        model_complexity: its model size (MediaPipe: 0 lite, 1 full), written to the report.
    """

    version: str
    model_complexity: int

    def detect(self, image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> PersonDetection:
        """The person in ``image`` (H, W, 3) uint8 RGB, or only inside ``box`` ``(x0, y0, x1, y1)``."""
        ...


class PersonDetector:
    """MediaPipe Pose in static-image mode with segmentation (state: the MediaPipe graph).

    Args:
        model_complexity: 0 (lite) or 1 (full, the default).
        min_detection_confidence: MediaPipe's person-detector threshold.
        mask_threshold: person probability above which a pixel is in the mask.
    """

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5, mask_threshold: float = 0.5):
        if model_complexity not in MODEL_COMPLEXITIES:
            raise ValueError(
                f"model_complexity must be one of {MODEL_COMPLEXITIES} (the models shipped in the wheel), "
                f"got {model_complexity}"
            )
        mp = require_mediapipe()
        self.version = str(mp.__version__)
        self.model_complexity = model_complexity
        self.mask_threshold = mask_threshold
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=model_complexity, enable_segmentation=True,
            min_detection_confidence=min_detection_confidence,
        )  # fmt: skip

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> "PersonDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> PersonDetection:
        """Detect the person in ``image`` (H, W, 3) uint8 RGB, or only inside ``box`` ``(x0, y0, x1, y1)`` (end exclusive)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"PersonDetector.detect: image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        x0, y0, x1, y1 = (0, 0, width, height) if box is None else clip_box(box, width, height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return PersonDetection(np.zeros((17, 3)), np.zeros((height, width), bool), False)
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        result = self._pose.process(crop)
        mask = np.zeros((height, width), dtype=bool)
        if result.pose_landmarks is None:
            return PersonDetection(np.zeros((17, 3)), mask, False)
        landmarks = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        keypoints = blazepose_to_coco(landmarks, x1 - x0, y1 - y0, offset=(x0, y0))
        if result.segmentation_mask is not None:
            mask[y0:y1, x0:x1] = segmentation_to_mask(result.segmentation_mask, self.mask_threshold)
        return PersonDetection(keypoints, mask, True)


def clip_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` rounded outwards to integers and clipped to a ``width`` x ``height`` image."""
    x0, y0, x1, y1 = box
    return (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))),
            min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1))))  # fmt: skip
