"""Which detections are the same person in every view: multi-view consistency of 2D keypoints.

A single-person detector picks *a* person per image; with a bystander in some views it may pick
the wrong one. The calibrated cameras settle it: the right detections triangulate to one 3D
skeleton that reprojects onto each of them; a bystander's (or a misdetection's) does not.

Per frame, :func:`consistent_person` triangulates from every pair of views, counts the views
whose keypoints reproject within ``tol_px`` (median over confident keypoints) of that 3D
skeleton, keeps the pair with the most agreeing views (ties: the smaller median residual) and
re-triangulates from all agreeing views. Views that disagree are *outliers*: the caller tries
the detection with left and right swapped (:func:`flip_left_right`; BlazePose confuses a person
facing the camera with one facing away), then re-detects inside :func:`person_box` (the
projection of the 3D skeleton's box, padded) of those views, and clips every mask to that box with :func:`clean_mask`.

:func:`estimate_offsets` uses the same residual to check synchronisation: for each view, the
frame shift that best fits the skeleton triangulated from the other views (greedy, one view at
a time, since a late camera also spoils the others' skeletons).

Units: pixels, metres (world), frames.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from scipy import ndimage

from neuralbody.data.cameras import Camera, project_points
from neuralbody.data.triangulation import reprojection_residuals, triangulate

MIN_KEYPOINTS = 6  # a view's median residual needs at least this many confident keypoints

COCO_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
"""COCO-17 index of each keypoint's left/right twin (single-view detectors often swap sides)."""


def flip_left_right(keypoints: np.ndarray) -> np.ndarray:
    """(..., 17, 3) COCO keypoints with the person's left and right swapped (same pixels, other labels)."""
    keypoints = np.asarray(keypoints)
    if keypoints.ndim < 2 or keypoints.shape[-2] != len(COCO_FLIP):
        raise ValueError(f"flip_left_right: keypoints must be (..., {len(COCO_FLIP)}, 3), got {keypoints.shape}")
    return keypoints[..., COCO_FLIP, :]


@dataclasses.dataclass
class Consensus:
    """The person of one frame as the views agree on it.

    Attributes:
        points: (K, 3) world keypoints, metres (NaN where not triangulated); all NaN when no
            two views agree.
        agreeing: (C,) bool, views whose detection is this person.
        residual_px: (C,) median reprojection error of each view's confident keypoints against
            ``points``, pixels (NaN: too few keypoints, or no consensus).
    """

    points: np.ndarray
    agreeing: np.ndarray
    residual_px: np.ndarray

    @property
    def found(self) -> bool:
        return bool(self.agreeing.sum() >= 2)


def view_residuals(
    cameras: list[Camera], keypoints2d: np.ndarray, points: np.ndarray, min_confidence: float = 0.5
) -> np.ndarray:
    """(C,) median pixel distance between ``points`` (K, 3) projected and each view's keypoints (C, K, 3).

    Only keypoints with confidence >= ``min_confidence`` count; NaN for a view with fewer than
    ``MIN_KEYPOINTS`` of them.
    """
    residual = reprojection_residuals(cameras, points, keypoints2d)  # (C, K)
    confident = (keypoints2d[..., 2] >= min_confidence) & np.isfinite(residual)
    out = np.full(len(cameras), np.nan)
    for view in range(len(cameras)):
        if confident[view].sum() >= MIN_KEYPOINTS:
            out[view] = float(np.median(residual[view][confident[view]]))
    return out


def consistent_person(
    cameras: list[Camera], keypoints2d: np.ndarray, tol_px: np.ndarray | float, min_confidence: float = 0.5
) -> Consensus:
    """The 3D person most views agree on (see the module docstring).

    Args:
        cameras: the C cameras.
        keypoints2d: (C, K, 3) ``(u, v, confidence)`` per view (confidence 0: not detected).
        tol_px: (C,) or scalar, largest median residual of an agreeing view, pixels.
        min_confidence: keypoints below this confidence are not counted in residuals.
    """
    keypoints2d = np.asarray(keypoints2d, dtype=np.float64)
    num_views = len(cameras)
    if keypoints2d.ndim != 3 or keypoints2d.shape[0] != num_views or keypoints2d.shape[2] != 3:
        raise ValueError(f"consistent_person: keypoints2d must be ({num_views}, K, 3), got {keypoints2d.shape}")
    tol = np.broadcast_to(np.asarray(tol_px, dtype=np.float64), (num_views,))
    usable = (keypoints2d[..., 2] >= min_confidence).sum(axis=1) >= MIN_KEYPOINTS
    best = None
    for a, b in itertools.combinations(np.flatnonzero(usable), 2):
        pair = keypoints2d.copy()
        pair[[v for v in range(num_views) if v not in (a, b)], :, 2] = 0.0
        points = triangulate(cameras, pair, iterations=0).points
        residual = view_residuals(cameras, keypoints2d, points, min_confidence)
        agreeing = np.isfinite(residual) & (residual <= tol)
        if not (agreeing[a] and agreeing[b]):
            continue
        score = (int(agreeing.sum()), -float(np.nanmedian(residual[agreeing])))
        if best is None or score > best[0]:
            best = (score, agreeing)
    if best is None:
        return Consensus(np.full((keypoints2d.shape[1], 3), np.nan), np.zeros(num_views, bool), np.full(num_views, np.nan))
    agreeing = best[1]
    chosen = keypoints2d.copy()
    chosen[~agreeing, :, 2] = 0.0
    points = triangulate(cameras, chosen).points
    residual = view_residuals(cameras, keypoints2d, points, min_confidence)
    return Consensus(points, agreeing & np.isfinite(residual) & (residual <= tol), residual)


def person_box(camera: Camera, points: np.ndarray, padding_m: float = 0.3) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)`` pixel box of the 3D keypoints' box, padded by ``padding_m`` metres.

    ``points``: (K, 3) world metres, NaN rows ignored. None when fewer than two points are
    finite or a box corner is behind the camera.
    """
    finite = np.all(np.isfinite(points), axis=1)
    if finite.sum() < 2:
        return None
    low, high = points[finite].min(axis=0) - padding_m, points[finite].max(axis=0) + padding_m
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    uv, depth = project_points(camera, corners)
    if np.any(depth <= 0):
        return None
    return float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()) + 1.0, float(uv[:, 1].max()) + 1.0


def clean_mask(mask: np.ndarray, box: tuple[float, float, float, float] | None, anchors_uv: np.ndarray | None = None,
               min_fraction: float = 0.2) -> np.ndarray:
    """The person's part of a (H, W) bool mask.

    Pixels outside ``box`` (x0, y0, x1, y1) go; of the connected pieces left, those holding one of
    ``anchors_uv`` (N, 2) pixels (the person's projected keypoints) stay, and so does any piece
    at least ``min_fraction`` of the largest one (a piece of a limb the keypoints miss).
    """
    mask = np.asarray(mask, dtype=bool).copy()
    height, width = mask.shape
    if box is not None:
        x0, y0, x1, y1 = (int(np.floor(box[0])), int(np.floor(box[1])), int(np.ceil(box[2])), int(np.ceil(box[3])))
        keep = np.zeros_like(mask)
        keep[max(0, y0) : max(0, min(height, y1)), max(0, x0) : max(0, min(width, x1))] = True
        mask &= keep
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    kept = sizes >= min_fraction * sizes.max()
    if anchors_uv is not None and len(anchors_uv):
        uv = np.round(np.asarray(anchors_uv, dtype=np.float64)).astype(int)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        near = ndimage.maximum_filter(labels, size=5)
        kept[near[uv[inside, 1], uv[inside, 0]]] = True
    kept[0] = False
    return kept[labels]


def _shift_table(cameras, keypoints2d, view, base, max_offset, min_confidence) -> dict[int, float]:
    """{shift: median px} of ``view`` against the other views' skeleton, the others read at ``frame + base[u]``."""
    frames, num_views = keypoints2d.shape[:2]
    others = [u for u in range(num_views) if u != view]
    skeletons = {}
    for frame in range(frames):
        rows = [frame + base[u] for u in others]
        if min(rows) < 0 or max(rows) >= frames:
            continue
        observed = np.stack([keypoints2d[frame + base[u], u] if u != view else np.zeros_like(keypoints2d[0, 0])
                             for u in range(num_views)])  # fmt: skip
        if (observed[..., 2] >= min_confidence).any(axis=1).sum() >= 2:
            skeletons[frame] = triangulate(cameras, observed).points
    table = {}
    for shift in range(-max_offset, max_offset + 1):
        residuals = []
        for frame, points in skeletons.items():
            if 0 <= frame + shift < frames:
                value = view_residuals(cameras[view : view + 1], keypoints2d[frame + shift, view : view + 1],
                                       points, min_confidence)[0]  # fmt: skip
                if np.isfinite(value):
                    residuals.append(value)
        table[shift] = float(np.median(residuals)) if residuals else float("nan")
    return table


@dataclasses.dataclass
class OffsetEstimate:
    """Synchronisation check of C views.

    Attributes:
        shifts: ``{view: frames}`` the shift found per view (0: in sync); shift ``s`` means the
            view's frame ``f + s`` shows the moment of the others' frame ``f`` (import it with
            offset ``+s``).
        residual_px: ``{view: {shift: median px}}`` of each view against the other views'
            skeleton (the others read at their found shifts).
    """

    shifts: dict[int, int]
    residual_px: dict[int, dict[int, float]]


def estimate_offsets(cameras: list[Camera], keypoints2d: np.ndarray, *, max_offset: int = 3, min_confidence: float = 0.5,
                     gain: float = 0.8) -> OffsetEstimate:  # fmt: skip
    """Frame shift of each view that best fits the skeleton the other views triangulate.

    Greedy, because a late camera also spoils the others' skeletons: every round scores each
    unfixed view's shifts against the others (read at the shifts found so far) and fixes the
    view whose best shift beats shift 0 by the largest factor, while that best residual is below
    ``gain`` times shift 0's; the rest stay at 0.

    Args:
        cameras: the C cameras.
        keypoints2d: (F, C, K, 3) keypoints of F consecutive frames (confidence 0: missing).
        max_offset: shifts ``-max_offset..max_offset`` are tried.
        gain: a shift is kept only if its median residual is below ``gain`` x shift 0's.
    """
    keypoints2d = np.asarray(keypoints2d, dtype=np.float64)
    if keypoints2d.ndim != 4 or keypoints2d.shape[1] != len(cameras) or keypoints2d.shape[3] != 3:
        raise ValueError(f"estimate_offsets: keypoints2d must be (F, {len(cameras)}, K, 3), got {keypoints2d.shape}")
    num_views = keypoints2d.shape[1]
    base = {view: 0 for view in range(num_views)}
    fixed: set[int] = set()
    while True:
        tables = {v: _shift_table(cameras, keypoints2d, v, base, max_offset, min_confidence) for v in range(num_views)}
        best = None
        for view in set(range(num_views)) - fixed:
            finite = {s: r for s, r in tables[view].items() if np.isfinite(r)}
            if not finite or not np.isfinite(tables[view].get(0, np.nan)):
                continue
            shift = min(finite, key=finite.get)
            ratio = finite[shift] / max(tables[view][0], 1e-9)
            if shift != 0 and ratio < gain and (best is None or ratio < best[0]):
                best = (ratio, view, shift)
        if best is None:
            return OffsetEstimate(shifts=dict(base), residual_px=tables)
        base[best[1]] = best[2]
        fixed.add(best[1])
