"""``track-head``: a face video -> MediaPipe landmarks -> the fit of Anny's head -> a head capture.

1. every chosen frame of the video or image folder (:mod:`neuralbody.capture_import.video`)
   through MediaPipe's face mesh (:mod:`neuralbody.head.face_mesh`);
2. the fit (:mod:`neuralbody.head.track_fit`) of head pose, jaw, facial actions and, unless
   given, the focal length, with the landmark map of :mod:`neuralbody.head.landmark_map`;
3. the capture (:mod:`neuralbody.head.track_capture`): a fixed square crop, per-frame person
   masks from MediaPipe's selfie segmentation cut to the head's reach, cameras and parameters.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from neuralbody.capture_import.video import FrameSource, open_source
from neuralbody.head.face_mesh import NUM_LANDMARKS, FaceMeshDetector
from neuralbody.head.landmark_map import default_landmark_map
from neuralbody.head.rig import HeadRig
from neuralbody.head.track_capture import (capture_cameras, face_crop, frame_params, write_capture_files,
                                           write_frame)
from neuralbody.head.track_fit import FitSettings, LandmarkHead, TrackedHead, fit_landmarks
from neuralbody.io.errors import InputError
from neuralbody.io.progress import progress_bar

log = logging.getLogger(__name__)
MIN_DETECTION_RATE = 0.5


@dataclasses.dataclass
class Landmarks:
    """MediaPipe's landmarks of the chosen frames.

    Attributes:
        points: (N, 478, 2) pixels (zeros where no face). found: (N,) bool.
        frames: the video frame numbers. width, height: the video's size, pixels.
    """

    points: np.ndarray
    found: np.ndarray
    frames: list[int]
    width: int
    height: int


def detect_landmarks(source: FrameSource, frames: list[int], *, progress: bool = True) -> Landmarks:
    """Run the face mesh (video mode) over ``frames`` (increasing) of ``source``."""
    points, found, size = [], [], None
    with FaceMeshDetector(video=True) as detector:
        for index, image in progress_bar(source.frames(frames), total=len(frames), desc="track-head landmarks",
                                         unit="frame", enabled=progress):
            if size is None:
                size = image.shape[:2]
            elif image.shape[:2] != size:
                raise InputError(f"{source.path} frame {index}", f"is {image.shape[1]}x{image.shape[0]}, the first "
                                 f"{size[1]}x{size[0]}", "give frames of one size")
            detection = detector.detect(image)
            points.append(detection.landmarks)
            found.append(detection.found)
    return Landmarks(np.stack(points), np.array(found), list(frames), size[1], size[0])


def check_detections(landmarks: Landmarks, path: Path) -> None:
    """An InputError naming the video when too few frames have a face."""
    rate = float(landmarks.found.mean())
    if rate < MIN_DETECTION_RATE:
        raise InputError(path, f"has a face in only {landmarks.found.sum()} of {len(landmarks.found)} frames "
                         f"({rate:.0%})", "give a video with one face in view (frontal to three-quarter, lit)")


def write_tracked_capture(out: Path, source: FrameSource, landmarks: Landmarks, rig: HeadRig, tracked: TrackedHead,
                          resolution: int, *, focal_given: bool, progress: bool = True) -> None:
    """The capture of the tracked video (layout: :mod:`neuralbody.head.track_capture`)."""
    crop = face_crop(landmarks.points, landmarks.found, resolution)
    cameras = capture_cameras(tracked, landmarks.width, landmarks.height, crop)
    params = frame_params(rig, tracked)
    out.mkdir(parents=True, exist_ok=True)
    with FaceMeshDetector(video=False) as detector:
        for number, (_, image) in enumerate(progress_bar(source.frames(landmarks.frames), total=len(landmarks.frames),
                                                         desc="track-head capture", unit="frame", enabled=progress)):
            write_frame(out, number, cameras[number], rig, params[number], image, detector.person_mask(image), crop)
    residual = tracked.residual_px.numpy()
    info = {"source": source.path.name, "frames": landmarks.frames, "video_size": [landmarks.width, landmarks.height],
            "focal_px": tracked.focal, "focal": "given" if focal_given else "estimated",
            "crop": dataclasses.asdict(crop), "detection_rate": float(landmarks.found.mean()),
            "median_residual_px": float(np.nanmedian(residual))}
    tracking = {"landmarks": landmarks.points, "found": landmarks.found, "frames": np.array(landmarks.frames),
                "residual_px": residual, "focal": np.array(tracked.focal), "rotation": tracked.rotation.numpy(),
                "translation": tracked.translation.numpy(), "jaw": tracked.jaw.numpy(),
                "expression": tracked.expression.numpy(), "video_size": np.array([landmarks.width, landmarks.height])}
    write_capture_files(out, rig, tracked, cameras, info, tracking)


def track_video(path: Path, out: Path, rig: HeadRig, *, frames: list[int] | None = None, focal: float | None = None,
                resolution: int = 256, settings: FitSettings = FitSettings(), progress: bool = True) -> TrackedHead:
    """The whole of ``track-head`` (the module docstring); returns the fit (video pixels)."""
    source = open_source(path)
    wanted = sorted(set(frames)) if frames is not None else list(range(source.num_frames))
    landmarks = detect_landmarks(source, wanted, progress=progress)
    check_detections(landmarks, path)
    head = LandmarkHead(rig, default_landmark_map())
    if head.count != NUM_LANDMARKS:
        raise ValueError(f"track_video: the landmark map has {head.count} points, MediaPipe gives {NUM_LANDMARKS}")
    tracked = fit_landmarks(head, torch.from_numpy(landmarks.points), torch.from_numpy(landmarks.found),
                            landmarks.width, landmarks.height, focal=focal, settings=settings, progress=progress)
    log.info("track-head: %d frames, face in %.0f%%, focal %.1f px (%s), median landmark residual %.2f px",
             len(landmarks.frames), 100 * landmarks.found.mean(), tracked.focal, "given" if focal else "estimated",
             float(np.nanmedian(tracked.residual_px.numpy())))
    write_tracked_capture(out, source, landmarks, rig, tracked, resolution, focal_given=focal is not None,
                          progress=progress)
    return tracked
