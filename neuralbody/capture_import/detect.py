"""Person masks and COCO-17 keypoints for every image of a capture, checked across views.

Writes (relative to the capture folder)::

    mask/<camera>/<name>.png        person mask of image <camera>/<name>.<ext> (0 / 255), read by
                                    :class:`~neuralbody.data.capture.Capture` (``mask_dir`` "mask")
    keypoints2d/{frame_id}.npy      (views, 17, 3) COCO (u, v, confidence) in the capture's pixels,
                                    read by ``neuralbody fit``; confidence 0 = not this person
    detect.json                     per-view summary, frames without a consensus, sync check
    original/<camera>/<name>.<ext>  (``black_background`` only) the images as imported; the images
                                    themselves are rewritten with black outside the mask, the
                                    ZJU-MoCap convention Neural Body trains on

Per frame: detect in every whole image (:class:`~neuralbody.capture_import.person_detector.PersonDetector`),
find the person the views agree on (:func:`~neuralbody.capture_import.multiview_person.consistent_person`),
in the views that disagree try left and right swapped, then re-detect inside the person's
projected box (a bystander, or nobody found), and clip every mask to that box, keeping the
pieces that hold the person's keypoints.
A frame where no two views agree is guided by the last frame that had a consensus; with none,
its detections are written unverified. A view that still disagrees gets confidence 0 and an
empty mask, and is reported (never silently wrong). Afterwards, each view's frame offset is
checked (:func:`~neuralbody.capture_import.multiview_person.estimate_offsets`) and a re-import
with ``--offsets`` is suggested when a shift fits clearly better.

Running it again reads the images from ``original/`` when that exists, so it is repeatable.
Everything is written in one transaction (:mod:`neuralbody.data.transaction`): detection killed
or failing part-way leaves the capture as it was, and running it again does the whole job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from neuralbody.capture_import.multiview_person import (
    clean_mask,
    consistent_person,
    estimate_offsets,
    flip_left_right,
    person_box,
    view_residuals,
)
from neuralbody.capture_import.person_detector import Detector
from neuralbody.data import images as image_io
from neuralbody.data.cameras import project_points
from neuralbody.data.transaction import Transaction, begin
from neuralbody.data.writer import (
    ORIGINAL_DIR,
    black_out_background,
    save_npy,
    write_mask,
)
from neuralbody.io.progress import progress_bar

log = logging.getLogger(__name__)

KEYPOINT_DIR = "keypoints2d"


@dataclasses.dataclass(frozen=True)
class DetectConfig:
    """How to detect and check.

    Attributes:
        tol_fraction: a view agrees with the 3D person when its median keypoint reprojection
            error is below this fraction of its image height (0.03: 14 px at 480 px).
        box_padding_m: the 3D keypoints' box is padded this much (metres) before projecting it
            to the person's 2D box (the head top and feet lie beyond the keypoints).
        min_confidence: keypoints below this confidence are not counted in residuals.
        mask_dir: mask folder name ("mask" or "mask_cihp").
        black_background: rewrite the images with black outside the mask (originals kept).
        max_offset: frame shifts tried by the synchronisation check.
        offset_gain: a shift is suggested when its median residual is below this fraction of shift
            0's (0.85: on the Pose2Sim demo, cam03 read 3 frames later fits 19 % better).
    """

    tol_fraction: float = 0.03
    box_padding_m: float = 0.3
    min_confidence: float = 0.5
    mask_dir: str = "mask"
    black_background: bool = False
    max_offset: int = 3
    offset_gain: float = 0.85


@dataclasses.dataclass
class ViewSummary:
    """One camera's detection outcome (counts of frames)."""

    name: str
    frames: int = 0
    found: int = 0  # a person detected in the whole image
    agreed: int = 0  # the whole-image detection was the person the views agree on
    flipped: int = 0  # the whole-image detection had left and right swapped (fixed)
    redetected: int = 0  # wrong or missing at first, found inside the person's box
    lost: int = 0  # no detection of the person: confidence 0, empty mask
    unverified: int = 0  # no consensus to check against: written as detected
    residuals: list = dataclasses.field(default_factory=list)  # median px of written keypoints
    mask_fraction: list = dataclasses.field(default_factory=list)
    mask_removed: int = 0  # frames whose detected mask had pieces outside the person (cut by clean_mask)
    lost_frames: list = dataclasses.field(default_factory=list)

    def median_residual_px(self) -> float:
        return float(np.median(self.residuals)) if self.residuals else float("nan")

    def as_dict(self) -> dict:
        return {"name": self.name, "frames": self.frames, "found": self.found, "agreed": self.agreed,
                "flipped": self.flipped, "redetected": self.redetected, "lost": self.lost, "unverified": self.unverified,
                "mask_removed": self.mask_removed,
                "median_residual_px": _round(self.median_residual_px()),
                "mean_mask_fraction": _round(float(np.mean(self.mask_fraction)) if self.mask_fraction else float("nan")),
                "lost_frames": self.lost_frames}  # fmt: skip


@dataclasses.dataclass
class DetectResult:
    """A capture's detection: per-view summaries, frames without consensus, sync check, seconds."""

    root: Path
    views: list[ViewSummary]
    no_consensus: list[int]
    offsets: dict[str, dict[int, float]]
    suggested_offsets: dict[str, int]
    seconds: float


def _round(value: float, digits: int = 3):
    return None if not np.isfinite(value) else round(float(value), digits)


def source_image_path(capture, frame: int, view: int) -> Path:
    """The image detection reads: ``original/<relpath>`` when an earlier black-background run kept it, else the image."""
    original = capture.root / ORIGINAL_DIR / capture.image_relpath(frame, view)
    return original if original.is_file() else capture.image_path(frame, view)


def mask_write_path(capture, frame: int, view: int, mask_dir: str = "mask") -> Path:
    """Where the mask of an image is written: ``<mask_dir>/<image relpath without extension>.png``."""
    return capture.root / mask_dir / (os.path.splitext(capture.image_relpath(frame, view))[0] + ".png")


def write_keypoints(transaction: Transaction, frame_id: int, keypoints: np.ndarray) -> Path:
    """Stage ``keypoints2d/{frame_id}.npy``: (views, 17, 3) float64 ``(u, v, confidence)``; returns the staged file."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (17, 3):
        raise ValueError(f"write_keypoints: keypoints must be (views, 17, 3), got {keypoints.shape}")
    return save_npy(transaction.stage(f"{KEYPOINT_DIR}/{frame_id}.npy"), keypoints)


@dataclasses.dataclass
class FrameDetection:
    """One frame's outcome: keypoints (C, 17, 3) ``(u, v, confidence)`` as written, masks C (H, W) bool,
    the 3D person (17, 3) world metres the views agree on (or the guide, or None), whether the views
    agreed on their own (a consensus)."""

    keypoints: np.ndarray
    masks: list[np.ndarray]
    points: np.ndarray | None
    consensus: bool


def detect_capture(root, detector: Detector, config: DetectConfig | None = None, *, frames: list[int] | None = None,
                   progress: bool = True) -> DetectResult:  # fmt: skip
    """Masks and keypoints for every image of the capture at ``root`` (see the module docstring).

    Everything is written in one transaction (:mod:`neuralbody.data.transaction`): an error or a
    kill before the end leaves the capture as it was.

    Args:
        root: capture folder (ZJU-MoCap layout, e.g. from ``neuralbody import``).
        detector: a :class:`~neuralbody.capture_import.person_detector.Detector` (``detect``,
            ``version``, ``model_complexity``), e.g. a ``PersonDetector``.
        config: thresholds and outputs.
        frames: frame indices to process (default all).
        progress: show a progress bar.
    """
    from neuralbody.data.capture import read_capture

    config = DetectConfig() if config is None else config
    if config.mask_dir not in ("mask", "mask_cihp"):
        raise ValueError(f"mask_dir must be 'mask' or 'mask_cihp' (what the capture reader looks for), got {config.mask_dir!r}")
    started = time.perf_counter()
    capture = read_capture(root)
    frames = list(range(capture.num_frames)) if frames is None else list(frames)
    tol = np.array([config.tol_fraction * camera.height for camera in capture.cameras])
    views = [ViewSummary(name) for name in capture.camera_names]
    no_consensus: list[int] = []
    all_keypoints = np.zeros((len(frames), capture.num_views, 17, 3))
    guide = None  # the last frame's 3D person the views agreed on
    bar = progress_bar(total=len(frames) * capture.num_views, enabled=progress, desc="detect", unit="image",
                       disable=None)
    with begin(capture.root, "detect") as transaction:
        for index, frame in enumerate(frames):
            images = read_frame_images(capture, frame)
            detection = detect_frame(capture.cameras, detector, images, guide, tol, config, views, frame)
            bar.update(capture.num_views)
            if detection.consensus:
                guide = detection.points
            else:
                no_consensus.append(frame)
            stage_frame(transaction, capture, frame, detection, images, config)
            all_keypoints[index] = detection.keypoints
        bar.close()
        offsets, suggested = _offset_check(capture, frames, all_keypoints, config)
        result = DetectResult(root=capture.root, views=views, no_consensus=no_consensus, offsets=offsets,
                              suggested_offsets=suggested, seconds=time.perf_counter() - started)  # fmt: skip
        _write_report(transaction, capture, result, config, detector)
    return result


def read_frame_images(capture, frame: int) -> list[np.ndarray]:
    """Every view's (H, W, 3) uint8 image of ``frame`` (:func:`source_image_path`), checked against its
    camera's size."""
    images = []
    for view, camera in enumerate(capture.cameras):
        path = source_image_path(capture, frame, view)
        image = image_io.read_image(path, dtype=np.uint8)
        if image.shape[:2] != (camera.height, camera.width):
            raise ValueError(f"{path} is {image.shape[1]}x{image.shape[0]}, "
                             f"camera {capture.camera_names[view]} is {camera.width}x{camera.height}")  # fmt: skip
        images.append(image)
    return images


def detect_frame(cameras, detector: Detector, images, guide, tol: np.ndarray, config: DetectConfig, views: list[ViewSummary],
                 frame: int) -> FrameDetection:  # fmt: skip
    """Detect, check across views and fix one frame (see the module docstring); counts go into ``views``.

    Args:
        cameras: the C cameras.
        images: C (H, W, 3) uint8 images.
        guide: (17, 3) the last frame's 3D person, world metres, or None.
        tol: (C,) agreement tolerance per view, pixels.
    """
    detections = [detector.detect(image) for image in images]
    keypoints = np.stack([d.keypoints for d in detections])
    consensus = consistent_person(cameras, keypoints, tol, config.min_confidence)
    for view, detection in enumerate(detections):
        views[view].frames += 1
        views[view].found += int(detection.found)
        views[view].agreed += int(consensus.agreeing[view])
    points = consensus.points if consensus.found else guide
    agreeing = consensus.agreeing.copy()
    boxes = [None] * len(cameras)
    if points is not None:
        boxes = [person_box(camera, points, config.box_padding_m) for camera in cameras]
        changed = False
        for view in np.flatnonzero(~agreeing):
            best = _retry_view(cameras[view], detector, images[view], detections[view], keypoints[view], boxes[view],
                               points, tol[view], config.min_confidence)  # fmt: skip
            if best is not None:
                kind, detections[view], keypoints[view] = best
                agreeing[view] = changed = True
                setattr(views[view], kind, getattr(views[view], kind) + 1)
        if changed or not consensus.found:
            refined = consistent_person(cameras, keypoints, tol, config.min_confidence)
            if refined.found:
                points, agreeing = refined.points, refined.agreeing | agreeing
                boxes = [person_box(camera, points, config.box_padding_m) for camera in cameras]
    masks = _frame_masks(cameras, detections, keypoints, points, agreeing, boxes, views, frame)
    if points is not None:
        residual = view_residuals(cameras, keypoints, points, config.min_confidence)
        for view in range(len(cameras)):
            if agreeing[view] and np.isfinite(residual[view]):
                views[view].residuals.append(float(residual[view]))
    return FrameDetection(keypoints=keypoints, masks=masks, points=points, consensus=bool(consensus.found))


def _retry_view(camera, detector: Detector, image, detection, keypoints, box, points, tol: float, min_confidence: float):
    """A view that disagrees: its detection with left and right swapped, or a re-detection inside the
    person's box (as is or swapped), whichever lands closest to ``points`` within ``tol`` pixels.
    Returns ``(kind, detection, keypoints (17, 3))`` (kind: the :class:`ViewSummary` counter) or None."""
    candidates = [("flipped", detection, flip_left_right(keypoints))] if detection.found else []
    if box is not None:
        retry = detector.detect(image, box=box)
        if retry.found:
            candidates += [("redetected", retry, retry.keypoints),
                           ("redetected", retry, flip_left_right(retry.keypoints))]  # fmt: skip
    scored = []
    for kind, candidate_detection, candidate in candidates:
        residual = view_residuals([camera], candidate[None], points, min_confidence)[0]
        if np.isfinite(residual) and residual <= tol:
            scored.append((residual, kind, candidate_detection, candidate))
    if not scored:
        return None
    _, kind, best_detection, best = min(scored, key=lambda item: item[0])
    return kind, best_detection, best


def _frame_masks(cameras, detections, keypoints, points, agreeing, boxes, views, frame: int) -> list[np.ndarray]:
    """Each view's mask: as detected (no 3D person), cut to the person's box and keypoints (agreeing), or
    empty with the keypoints' confidence set to 0 (lost; ``keypoints`` (C, 17, 3) is changed in place)."""
    masks = []
    for view, detection in enumerate(detections):
        summary = views[view]
        if points is None:
            summary.unverified += 1
            mask = detection.mask
        elif agreeing[view]:
            anchors, depth = project_points(cameras[view], points[np.all(np.isfinite(points), axis=1)])
            mask = clean_mask(detection.mask, boxes[view], anchors[depth > 0])
            summary.mask_removed += int(mask.sum() < detection.mask.sum())
        else:
            summary.lost += 1
            summary.lost_frames.append(int(frame))
            keypoints[view, :, 2] = 0.0
            mask = np.zeros_like(detection.mask)
        masks.append(mask)
        summary.mask_fraction.append(float(mask.mean()))
    return masks


def stage_frame(transaction: Transaction, capture, frame: int, detection: FrameDetection, images, config: DetectConfig):
    """Stage one frame's masks, keypoints and (``black_background``) rewritten images."""
    for view, mask in enumerate(detection.masks):
        relpath = mask_write_path(capture, frame, view, config.mask_dir).relative_to(capture.root)
        write_mask(transaction.stage(relpath), mask)
        if config.black_background:
            black_out_background(transaction, capture, frame, view, images[view], mask)
    write_keypoints(transaction, capture.frame_ids[frame], detection.keypoints)


def _offset_check(capture, frames: list[int], all_keypoints: np.ndarray, config: DetectConfig):
    """``(per camera {shift: median px}, {camera: suggested shift})`` of the synchronisation check, or
    empty dicts when the frames are too few or not consecutive."""
    consecutive = len(frames) > 2 * config.max_offset + 2 and frames == list(range(frames[0], frames[0] + len(frames)))
    if not consecutive or config.max_offset <= 0:
        return {}, {}
    estimate = estimate_offsets(capture.cameras, all_keypoints, max_offset=config.max_offset,
                                min_confidence=config.min_confidence, gain=config.offset_gain)  # fmt: skip
    offsets = {capture.camera_names[view]: table for view, table in estimate.residual_px.items()}
    suggested = {capture.camera_names[view]: shift for view, shift in estimate.shifts.items() if shift}
    return offsets, suggested


def _write_report(transaction: Transaction, capture, result: DetectResult, config: DetectConfig, detector: Detector) -> None:
    document = {
        "detector": {"kind": type(detector).__name__, "version": detector.version,
                     "model_complexity": detector.model_complexity},
        "config": dataclasses.asdict(config),
        "views": [view.as_dict() for view in result.views],
        "no_consensus_frames": result.no_consensus,
        "offset_check_px": {name: {str(k): _round(v) for k, v in shifts.items()} for name, shifts in result.offsets.items()},
        "suggested_offsets": result.suggested_offsets,
        "seconds": round(result.seconds, 1),
    }  # fmt: skip
    transaction.write_text("detect.json", json.dumps(document, indent=2) + "\n")
    meta_path = transaction.current("neuralbody.json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    meta.update({"masks": True, "mask_dir": config.mask_dir, "keypoints2d": KEYPOINT_DIR,
                 "black_background": bool(config.black_background or meta.get("black_background", False))})
    transaction.write_text("neuralbody.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
