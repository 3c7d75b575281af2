"""Writing a sequence fit into its capture, in one transaction (:mod:`neuralbody.data.transaction`).

What :func:`write_fit` writes (paths relative to the capture; ``n`` a fitted frame's on-disk number)::

    params/{n}.npy               dict: poses (1, P), Rh (1, 3) axis-angle, Th (1, 3) metres, shapes (1, S)
    vertices/{n}.npy             (V, 3) float32 posed vertices, world, metres
    before_fit/params/{n}.npy    the frame's body before ``neuralbody fit`` first replaced it (the
    before_fit/vertices/{n}.npy  dataset's own fit, or the synthetic ground truth); written once, never replaced
    fit/overlay_{n:04d}.png      the fitted mesh and keypoints over every view (optional)
    fit/residuals.json           the shared shape, per-frame residuals, the frames backed up
    <mask path>                  (``trim_masks``) a mask reaching beyond the fitted body, cut down to it;
                                 the mask as it was kept once under ``mask_untrimmed/``, a
                                 black-background image rewritten from ``original/``

Frames the fit did not fit (not selected, or skipped) keep their bodies as they were. All of it
is staged and committed together: a fit killed at any moment leaves the capture as it was before,
or with all of the above.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable

import numpy as np

from neuralbody.data.transaction import Transaction, begin
from neuralbody.data.writer import ORIGINAL_DIR, black_out_background, save_npy, write_mask
from neuralbody.fitting import report
from neuralbody.fitting.optimize import FrameFit, SequenceFit

log = logging.getLogger(__name__)

BACKUP_DIR = "before_fit"
FIT_DIR = "fit"
UNTRIMMED_DIR = "mask_untrimmed"
MASK_BEYOND_WARN_PCT = 2.0  # a mask with more of its pixels beyond the fitted body is reported


@dataclasses.dataclass(frozen=True)
class FitOutputs:
    """What :func:`write_fit` writes besides the bodies.

    Attributes:
        overlays: ``fit/overlay_*.png``.
        check_masks: measure how much of each person mask lies beyond the fitted body.
        trim_masks: cut the masks beyond :data:`MASK_BEYOND_WARN_PCT` down to the body (needs ``check_masks``).
    """

    overlays: bool = True
    check_masks: bool = True
    trim_masks: bool = False


@dataclasses.dataclass
class WrittenFit:
    """What :func:`write_fit` wrote: one residual row per selected frame, the frames whose previous
    body went to ``before_fit/``, the ``(frame, view)`` masks trimmed."""

    rows: list[report.FrameResidual]
    backed_up: list[int]
    trimmed: list[tuple[int, int]]


def mask_radius_px(camera) -> float:
    """How far (pixels) a mask pixel may lie from the fitted body's projected vertices and still count
    as the body: 1.5 % of the image width, at least 3 px (the fit's outline is good to a few pixels)."""
    return max(3.0, 0.015 * camera.width)


def write_fit(
    capture,
    result: SequenceFit,
    frames: list[int],
    *,
    faces: np.ndarray,
    regressor=None,
    load_keypoints: Callable[[int], np.ndarray] | None = None,
    outputs: FitOutputs = FitOutputs(),
) -> WrittenFit:
    """Write ``result`` (the fit of ``frames``) into ``capture``'s folder in one transaction.

    Args:
        capture: the :class:`~neuralbody.data.capture.Capture` that was fitted (scale 1).
        result: the :class:`~neuralbody.fitting.optimize.SequenceFit`.
        frames: the frame indices the fit was asked for (skipped ones get a "skipped" row).
        faces: (F, 3) the body model's triangles (overlays).
        regressor: the keypoint regressor (keypoint errors against the previous body), or None.
        load_keypoints: frame -> (C, K, 3) observed keypoints (overlays), or None.
        outputs: what else to write.
    """
    written = WrittenFit(rows=[], backed_up=[], trimmed=[])
    with begin(capture.root, "fit") as transaction:
        for frame in frames:
            if frame in result.skipped or frame not in result.fits:
                reason = result.skipped.get(frame, "not fitted")
                written.rows.append(report.FrameResidual(frame=frame, status="skipped", message=reason))
                continue
            fit = result.fits[frame]
            previous, backed_up = stage_body(transaction, capture, fit)
            if backed_up:
                written.backed_up.append(frame)
            row = report.residual_of(fit, reference_vertices=previous, regressor=regressor)
            if outputs.check_masks:
                row.mask_beyond_pct = mask_beyond_pct(capture, frame, fit.vertices)
                if outputs.trim_masks:
                    written.trimmed += trim_masks(transaction, capture, frame, fit.vertices, row.mask_beyond_pct)
            if outputs.overlays:
                stage_overlay(transaction, capture, fit, faces, load_keypoints)
            written.rows.append(row)
        summary = {"shapes": result.shapes.tolist(), "frames": [dataclasses.asdict(r) for r in written.rows],
                   "backup": {"folder": BACKUP_DIR, "frames": written.backed_up}}  # fmt: skip
        transaction.write_text(f"{FIT_DIR}/residuals.json", json.dumps(summary, indent=2, default=float) + "\n")
    return written


def stage_body(transaction: Transaction, capture, fit: FrameFit) -> tuple[np.ndarray | None, bool]:
    """Stage ``params/{n}.npy`` and ``vertices/{n}.npy`` of one fitted frame; the body they replace
    goes to ``before_fit/`` when that holds none of this frame yet.

    Returns the (V, 3) vertices the frame had (the residuals' reference), or None, and whether a backup was staged.
    """
    number = capture.frame_ids[fit.frame]
    backed_up = False
    for name in ("params", "vertices"):
        current, backup = capture.root / name / f"{number}.npy", f"{BACKUP_DIR}/{name}/{number}.npy"
        if current.is_file() and not (capture.root / backup).is_file():
            transaction.copy(current, backup)
            backed_up = True
    previous = None
    if capture.vertices_path(fit.frame).is_file():
        try:
            previous = np.load(capture.vertices_path(fit.frame), allow_pickle=False)
        except (OSError, ValueError) as error:
            log.warning("frame %d: previous vertices unreadable (%s); no error against them", fit.frame, error)
    save_npy(transaction.stage(f"params/{number}.npy"), fit.params(), allow_pickle=True)
    save_npy(transaction.stage(f"vertices/{number}.npy"), np.asarray(fit.vertices, dtype=np.float32))
    return previous, backed_up


def mask_beyond_pct(capture, frame: int, vertices: np.ndarray) -> list[float]:
    """Per view, the percentage of the person mask lying beyond the fitted (V, 3) vertices, world metres
    (:func:`~neuralbody.fitting.report.mask_beyond_body`); [] without masks."""
    try:
        masks = [capture.load_mask(frame, view) for view in range(capture.num_views)]
        return [
            100 * report.mask_beyond_body(mask, camera, vertices, radius_px=mask_radius_px(camera))
            for mask, camera in zip(masks, capture.cameras)
        ]
    except (OSError, ValueError) as error:
        log.warning("frame %d: no mask check (%s)", frame, error)
        return []


def trim_masks(transaction: Transaction, capture, frame: int, vertices: np.ndarray, beyond_pct: list[float]) -> list:
    """Trim (:func:`trim_mask`) the masks of ``frame`` that reach beyond :data:`MASK_BEYOND_WARN_PCT` % of their
    pixels away from the body (``beyond_pct``: per view, from :func:`mask_beyond_pct`); returns their (frame, view)."""
    trimmed = []
    for view, pct in enumerate(beyond_pct):
        if pct > MASK_BEYOND_WARN_PCT and trim_mask(transaction, capture, frame, view, vertices):
            trimmed.append((frame, view))
    return trimmed


def trim_mask(transaction: Transaction, capture, frame: int, view: int, vertices: np.ndarray) -> bool:
    """Stage one mask cut down to the fitted body (:func:`neuralbody.fitting.report.trim_mask_to_body`).

    The mask as it was is kept once under ``mask_untrimmed/``; where detection kept the image under
    ``original/`` (``--black-background``), the image is rewritten black outside the trimmed mask.
    ``vertices`` (V, 3) world metres. Returns False when the frame has no mask there.
    """
    from PIL import Image

    path = capture.mask_path(frame, view)
    if path is None:
        return False
    relpath = path.relative_to(capture.root).as_posix()
    camera = capture.cameras[view]
    mask = capture.load_mask(frame, view)
    trimmed = report.trim_mask_to_body(mask, camera, vertices, radius_px=mask_radius_px(camera))
    kept = f"{UNTRIMMED_DIR}/{relpath}"
    if not (capture.root / kept).is_file() and not transaction.is_staged(kept):
        transaction.copy(path, kept)
    write_mask(transaction.stage(relpath), trimmed)
    original = capture.root / ORIGINAL_DIR / capture.image_relpath(frame, view)
    if original.is_file():
        image = np.asarray(Image.open(original).convert("RGB"))
        black_out_background(transaction, capture, frame, view, image, trimmed)
    log.info("frame %d %s: mask trimmed to the fitted body (untrimmed kept in %s)", frame, camera.name, kept)
    return True


def stage_overlay(transaction: Transaction, capture, fit: FrameFit, faces: np.ndarray, load_keypoints=None) -> None:
    """Stage ``fit/overlay_{n:04d}.png`` (:func:`~neuralbody.fitting.report.draw_overlay`); a frame whose
    images or keypoints cannot be read gets a warning instead."""
    try:
        images = [capture.load_image(fit.frame, view) for view in range(capture.num_views)]
        overlay = report.draw_overlay(
            images, capture.cameras, vertices=fit.vertices, faces=np.asarray(faces),
            keypoints2d=None if load_keypoints is None else load_keypoints(fit.frame), fitted_keypoints=fit.keypoints,
        )  # fmt: skip
    except (OSError, ValueError) as error:
        log.warning("frame %d: no overlay (%s)", fit.frame, error)
        return
    report.write_overlay(transaction.stage(f"{FIT_DIR}/overlay_{capture.frame_ids[fit.frame]:04d}.png"), overlay)
