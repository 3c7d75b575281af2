"""A face's 478 landmarks and a person mask in an image, on the CPU, with MediaPipe (optional extra).

MediaPipe's legacy face mesh (``mp.solutions.face_mesh``: a landmark network whose weights,
``face_landmark_with_attention.tflite``, ship inside the ``mediapipe`` wheel) regresses 468
points of a dense face mesh plus 10 iris points (``refine_landmarks``); the selfie
segmentation (``selfie_segmentation.tflite``, also in the wheel) gives the person mask.
Nothing is downloaded at run time. Install with ``pip install 'neuralbody[detect]'``
(MediaPipe 0.10.14).

The face mesh's own detector (short range) misses faces that are small in the frame (a face
60 pixels wide in a 640 x 480 video: none found), so the face is found first by MediaPipe's
**full-range** face detector (``face_detection_full_range_sparse.tflite``, in the wheel; the
largest face), or, from the second frame of a video on, where the previous frame's landmarks
were; the face mesh then runs on a square crop of ``CROP_MARGIN`` times that box, resized to
``CROP_SIZE`` pixels, and the landmarks are mapped back (:mod:`neuralbody.head.square_crop`).

Pixels: ``u = x W - 0.5``, ``v = y H - 0.5`` from MediaPipe's normalised ``(x, y)``, so pixel
centres are on integers (the project's convention, as :mod:`neuralbody.capture_import.blazepose`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralbody.capture_import.person_detector import INSTALL_HINT
from neuralbody.head.square_crop import Crop, crop_image, square_around

NUM_LANDMARKS = 478  # 468 mesh points + 10 iris points (refine_landmarks)
CROP_SIZE = 256  # pixels: the face-mesh crop
CROP_MARGIN = 1.8  # the crop's side over the face box's longer side


def require_face_mesh():
    """The ``mediapipe`` module with its legacy face mesh, or an ImportError saying how to install it."""
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(f"face tracking needs MediaPipe, an optional extra that is not installed ({error}). "
                          f"Install it with: {INSTALL_HINT}") from error
    solutions = getattr(mediapipe, "solutions", None)
    needed = ("face_mesh", "face_detection", "selfie_segmentation")
    if solutions is None or not all(hasattr(solutions, name) for name in needed):
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
    """MediaPipe's full-range face detector, face mesh (iris refinement) and selfie segmentation.

    State: the MediaPipe graphs and, in video mode, the previous frame's face box.

    Args:
        video: follow the face from frame to frame (the previous landmarks place the crop)
            instead of detecting it in every image independently.
        min_detection_confidence: the face detector's and the face mesh's threshold.
        mask_threshold: person probability above which a pixel is in the mask.
    """

    def __init__(self, *, video: bool = True, min_detection_confidence: float = 0.5, mask_threshold: float = 0.5):
        if not 0.0 < min_detection_confidence < 1.0 or not 0.0 < mask_threshold < 1.0:
            raise ValueError(f"FaceMeshDetector: thresholds must be in (0, 1), got {min_detection_confidence}, "
                             f"{mask_threshold}")
        mp = require_face_mesh()
        self.version = getattr(mp, "__version__", "?")
        self.video = video
        self.mask_threshold = mask_threshold
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._finder = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                  min_detection_confidence=min_detection_confidence)
        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                                     min_detection_confidence=min_detection_confidence)
        self._segmentation = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def close(self) -> None:
        self._finder.close()
        self._mesh.close()
        self._segmentation.close()

    def __enter__(self) -> "FaceMeshDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def face_box(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)`` pixel corners of the largest face the full-range detector finds, or None."""
        image = _checked(image, "face_box")
        height, width = image.shape[:2]
        result = self._finder.process(image)
        boxes = [d.location_data.relative_bounding_box for d in (result.detections or [])]
        if not boxes:
            return None
        box = max(boxes, key=lambda b: b.width * b.height)
        low = np.array([box.xmin * width, box.ymin * height])
        return low, low + np.array([box.width * width, box.height * height])

    def detect(self, image: np.ndarray) -> FaceDetection:
        """The face's landmarks in ``image`` (H, W, 3) uint8 RGB (the module docstring's two steps)."""
        image = _checked(image, "detect")
        box = self._previous if self.video and self._previous is not None else self.face_box(image)
        if box is None:
            return FaceDetection(np.zeros((NUM_LANDMARKS, 2)), False)
        crop = square_around(*box, CROP_SIZE, margin=CROP_MARGIN)
        landmarks = self._mesh_in(image, crop)
        if landmarks is None and self._previous is not None:  # lost: look for the face again
            box = self.face_box(image)
            landmarks = None if box is None else self._mesh_in(image, square_around(*box, CROP_SIZE, margin=CROP_MARGIN))
        self._previous = None if landmarks is None else (landmarks[:468].min(0), landmarks[:468].max(0))
        if landmarks is None:
            return FaceDetection(np.zeros((NUM_LANDMARKS, 2)), False)
        return FaceDetection(landmarks, True)

    def _mesh_in(self, image: np.ndarray, crop: Crop) -> np.ndarray | None:
        """(478, 2) image pixels of the face mesh run on ``crop`` of the image, or None."""
        window = np.round(crop_image(image, crop) * 255.0).astype(np.uint8)
        result = self._mesh.process(window)
        if not result.multi_face_landmarks:
            return None
        points = np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
        if points.shape[0] != NUM_LANDMARKS:
            raise RuntimeError(f"MediaPipe {self.version} returned {points.shape[0]} face landmarks, expected "
                               f"{NUM_LANDMARKS}; install the supported release: {INSTALL_HINT}")
        return crop.to_image(normalised_to_pixels(points, CROP_SIZE, CROP_SIZE))

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
