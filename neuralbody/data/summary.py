"""What a capture holds, at a glance: cameras, frames, body data, mask coverage (for ``neuralbody info``).

The capture is checked like ``neuralbody check`` does (:func:`neuralbody.data.checks.check_capture`),
except that images and masks are decoded for the sampled frames only (body files and camera
views are checked for every frame): params, vertices and masks count as present only when
they read cleanly, and the problems found are part of the summary. Damaged files are left
out of the figures, not fatal.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neuralbody.data.checks import check_capture
from neuralbody.io.errors import InputError, Problem

if TYPE_CHECKING:
    from neuralbody.data.capture import Capture

# neuralbody.json keys written by our writer that describe the layout rather than the capture
LAYOUT_META_KEYS = ("cameras", "num_frames", "image_size", "mask_dir", "depth", "frame_offset")


@dataclasses.dataclass
class ViewSummary:
    """One camera.

    Attributes:
        name: camera name.
        width, height: image size at the capture's scale, pixels.
        focal: (fx, fy) focal lengths at the capture's scale, pixels.
        distance: camera centre to the person's centre in the first sampled frame, metres
            (vertex mean, else params Th; None without body data).
        mask_coverage: mean fraction of the image inside the person mask over the sampled
            frames (None where no mask was found).
        colour_gain: (R, G, B) gain of the camera's colour response (all 1 unless the capture
            was colour-calibrated, ``neuralbody calibrate-colour``).
    """

    name: str
    width: int
    height: int
    focal: tuple[float, float]
    distance: float | None
    mask_coverage: float | None
    colour_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclasses.dataclass
class CaptureSummary:
    """A capture at a glance.

    Attributes:
        root: capture folder.
        num_views, num_frames: counts.
        frame_ids: (first, last) on-disk frame numbers.
        scale: image scale the capture was read at.
        views: one :class:`ViewSummary` per camera.
        vertex_count: body vertices per frame (None without ``vertices/``).
        has_params, has_vertices, has_masks: what exists and reads cleanly (masks: in the sampled frames).
        sampled_frames: frame indices whose images and masks were read (mask coverage, checks).
        meta_extras: ``neuralbody.json`` entries other than layout bookkeeping.
        problems: what the checks found, by kind ("images", "masks",
            "params", "vertices", "cameras"; see :mod:`neuralbody.data.checks`).
    """

    root: Path
    num_views: int
    num_frames: int
    frame_ids: tuple[int, int]
    scale: float
    views: list[ViewSummary]
    vertex_count: int | None
    has_params: bool
    has_vertices: bool
    has_masks: bool
    sampled_frames: list[int]
    meta_extras: dict
    problems: dict[str, list[Problem]] = dataclasses.field(default_factory=dict)


def sample_frame_indices(num_frames: int, count: int) -> list[int]:
    """Up to ``count`` frame indices spread evenly over ``0 .. num_frames - 1`` (first and last included)."""
    if count <= 0:
        raise ValueError(f"sample count must be positive, got {count}")
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(count, num_frames))})


def person_centre(capture: "Capture", frame: int) -> np.ndarray | None:
    """(3,) the person's centre in a frame, world, metres: vertex mean, else params Th, else None (or damaged)."""
    try:
        if capture.vertices_path(frame).is_file():
            return capture.load_vertices(frame).mean(axis=0, dtype=np.float64)
        params = capture.load_params(frame)
    except InputError:
        return None
    if params is not None:
        return np.asarray(params["Th"], dtype=np.float64).reshape(3)
    return None


def _mask_coverage(capture: "Capture", frame: int, view: int) -> float | None:
    if capture.mask_path(frame, view) is None:
        return None
    try:
        return float(capture.load_mask(frame, view).mean())
    except InputError:
        return None


def summarize_capture(capture: "Capture", *, sample_frames: int = 3) -> CaptureSummary:
    """Summarise a capture; decodes the images and masks of ``sample_frames`` frames, reads every body file."""
    frames = sample_frame_indices(capture.num_frames, sample_frames)
    report = check_capture(capture, image_frames=frames)  # body files of every frame: cheap
    centre = person_centre(capture, frames[0])
    views, any_mask = [], False
    for view, camera in enumerate(capture.cameras):
        coverages = []
        for frame in frames:
            coverage = _mask_coverage(capture, frame, view)
            if coverage is not None:
                coverages.append(coverage)
        any_mask = any_mask or bool(coverages)
        views.append(
            ViewSummary(
                name=camera.name,
                width=camera.width,
                height=camera.height,
                focal=(float(camera.K[0, 0]), float(camera.K[1, 1])),
                distance=None if centre is None else float(np.linalg.norm(camera.center - centre)),
                mask_coverage=float(np.mean(coverages)) if coverages else None,
                colour_gain=tuple(float(g) for g in camera.colour_gain),
            )
        )
    damaged = {kind for kind, found in report.by_kind.items() if any(p.severity == "error" for p in found)}
    return CaptureSummary(
        root=capture.root,
        num_views=capture.num_views,
        num_frames=capture.num_frames,
        frame_ids=(capture.frame_ids[0], capture.frame_ids[-1]),
        scale=capture.scale,
        views=views,
        vertex_count=report.vertex_count if capture.has_vertices and "vertices" not in damaged else None,
        has_params=capture.has_params and "params" not in damaged,
        has_vertices=capture.has_vertices and "vertices" not in damaged,
        has_masks=any_mask and "masks" not in damaged,
        sampled_frames=frames,
        meta_extras={k: v for k, v in capture.meta.items() if k not in LAYOUT_META_KEYS},
        problems={kind: found for kind, found in report.by_kind.items() if found},
    )
