"""A face's 478 landmarks and a person mask in an image, on the CPU, with MediaPipe (optional extra).

MediaPipe's legacy face mesh (``mp.solutions.face_mesh``: a face detector and a landmark
network whose weights, ``face_detection_short_range.tflite`` and
``face_landmark_with_attention.tflite``, ship inside the ``mediapipe`` wheel) regresses 468
points of a dense face mesh plus 10 iris points (``refine_landmarks``); the selfie
segmentation (``selfie_segmentation.tflite``, also in the wheel) gives the person mask.
Nothing is downloaded at run time. Install with ``pip install 'neuralbody[detect]'``
(MediaPipe 0.10.14).

Pixels: ``u = x W - 0.5``, ``v = y H - 0.5`` from MediaPipe's normalised ``(x, y)``, so pixel
centres are on integers (the project's convention, as :mod:`neuralbody.capture_import.blazepose`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralbody.capture_import.person_detector import INSTALL_HINT

NUM_LANDMARKS = 478  # 468 mesh points + 10 iris points (refine_landmarks)


def require_face_mesh():
    """The ``mediapipe`` module with its legacy face mesh, or an ImportError saying how to install it."""
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(f"face tracking needs MediaPipe, an optional extra that is not installed ({error}). "
                          f"Install it with: {INSTALL_HINT}") from error
    solutions = getattr(mediapipe, "solutions", None)
    if solutions is None or not hasattr(solutions, "face_mesh") or not hasattr(solutions, "selfie_segmentation"):
        raise ImportError(f"mediapipe {getattr(mediapipe, '__version__', '?')} has no legacy mp.solutions.face_mesh "
                          f"(with its models in the wheel); install the supported release: {INSTALL_HINT}")
    return mediapipe


@dataclasses.dataclass
class FaceDetection:
    """What the face mesh found in one image.

    Attributes:
        landmarks: (478, 2) pixels ``(u, v)``, pixel centres on integers; zeros when no face.
        found: whether a face was detected.
    """

    landmarks: np.ndarray
    found: bool


def normalised_to_pixels(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(L, 2) pixels of MediaPipe's normalised (L, 2+) landmarks in a ``width`` x ``height`` image."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 2 or width < 1 or height < 1:
        raise ValueError(f"normalised_to_pixels: points must be (L, 2+) and the size positive, got "
                         f"{points.shape}, {width}x{height}")
    return np.stack([points[:, 0] * width - 0.5, points[:, 1] * height - 0.5], axis=1)


class FaceMeshDetector:
    """MediaPipe face mesh (one face, iris refinement) and selfie segmentation (state: the graphs).

    Args:
        video: track from frame to frame (MediaPipe's video mode: faster, smoother) instead of
            detecting in every image independently.
        min_detection_confidence: the face detector's threshold.
        mask_threshold: person probability above which a pixel is in the mask.
    """

    def __init__(self, *, video: bool = True, min_detection_confidence: float = 0.5, mask_threshold: float = 0.5):
        if not 0.0 < min_detection_confidence < 1.0 or not 0.0 < mask_threshold < 1.0:
            raise ValueError(f"FaceMeshDetector: thresholds must be in (0, 1), got {min_detection_confidence}, "
                             f"{mask_threshold}")
        mp = require_face_mesh()
        self.version = getattr(mp, "__version__", "?")
        self.mask_threshold = mask_threshold
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=min_detection_confidence, min_tracking_confidence=0.5)  # fmt: skip
        self._segmentation = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def close(self) -> None:
        self._mesh.close()
        self._segmentation.close()

    def __enter__(self) -> "FaceMeshDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, image: np.ndarray) -> FaceDetection:
        """The face's landmarks in ``image`` (H, W, 3) uint8 RGB."""
        image = _checked(image, "detect")
        height, width = image.shape[:2]
        result = self._mesh.process(image)
        if not result.multi_face_landmarks:
            return FaceDetection(np.zeros((NUM_LANDMARKS, 2)), False)
        points = np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
        if points.shape[0] != NUM_LANDMARKS:
            raise RuntimeError(f"MediaPipe {self.version} returned {points.shape[0]} face landmarks, expected "
                               f"{NUM_LANDMARKS}; install the supported release: {INSTALL_HINT}")
        return FaceDetection(normalised_to_pixels(points, width, height), True)

    def person_mask(self, image: np.ndarray) -> np.ndarray:
        """(H, W) bool: the selfie segmentation of ``image`` (H, W, 3) uint8 RGB above the threshold."""
        image = _checked(image, "person_mask")
        segmentation = self._segmentation.process(image).segmentation_mask
        if segmentation is None:
            return np.zeros(image.shape[:2], bool)
        return np.asarray(segmentation) > self.mask_threshold


def _checked(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"FaceMeshDetector.{what}: image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)
