"""Fitting residuals per frame (a dataclass and a printed table) and PNG overlays of fitted bodies.

Residuals are in pixels (distorted image pixels) and, where a reference mesh of the same
topology exists (the frame's body before the fit, e.g. the ground truth of a synthetic capture), in millimetres.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from neuralbody.data.cameras import Camera, project_points


@dataclasses.dataclass
class FrameResidual:
    """One frame's fitting summary.

    Attributes:
        frame: frame index.
        status: ``"ok"`` or ``"skipped"``.
        message: why a frame was skipped ("" when fitted).
        reprojection_px: mean pixel error of the fitted keypoints over observed keypoints.
        triangulation_px: mean pixel error of the triangulated keypoints.
        views: views with observed keypoints.
        seconds: fitting time of the frame.
        keypoint_error_mm: mean distance to reference keypoints (NaN without a reference).
        vertex_error_mm: mean per-vertex distance to the reference mesh (NaN without one).
        mask_beyond_pct: per view, the percentage of the person mask beyond the fitted body
            (:func:`mask_beyond_body`; empty without masks).
    """

    frame: int
    status: str
    message: str = ""
    reprojection_px: float = float("nan")
    triangulation_px: float = float("nan")
    views: int = 0
    seconds: float = float("nan")
    keypoint_error_mm: float = float("nan")
    vertex_error_mm: float = float("nan")
    mask_beyond_pct: list[float] = dataclasses.field(default_factory=list)


def residual_of(fit, *, reference_vertices: np.ndarray | None = None, regressor=None) -> FrameResidual:
    """FrameResidual of a :class:`~neuralbody.fitting.optimize.FrameFit`; ``reference_vertices`` (V, 3) metres."""
    observed = np.isfinite(fit.reprojection_px)
    row = FrameResidual(
        frame=fit.frame,
        status="ok",
        reprojection_px=float(np.nanmean(fit.reprojection_px)) if observed.any() else float("nan"),
        triangulation_px=fit.triangulation.mean_residual_px(),
        views=int(observed.any(axis=1).sum()),
        seconds=fit.seconds,
    )
    if reference_vertices is not None and reference_vertices.shape == fit.vertices.shape:
        row.vertex_error_mm = float(np.linalg.norm(reference_vertices - fit.vertices, axis=1).mean() * 1000)
        if regressor is not None:
            weights = regressor.weights.cpu().numpy()
            error = np.linalg.norm(weights @ reference_vertices - weights @ fit.vertices, axis=1)
            row.keypoint_error_mm = float(error.mean() * 1000)
    return row


def body_distance_px(camera: Camera, vertices: np.ndarray) -> np.ndarray | None:
    """(H, W) distance in pixels from each pixel to the nearest projected vertex (V, 3) world metres
    of ``camera``'s image; None when no vertex projects into the image."""
    from scipy.ndimage import distance_transform_edt

    uv, depth = project_points(camera, vertices)
    columns, rows = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    seen = (depth > 0) & (columns >= 0) & (columns < camera.width) & (rows >= 0) & (rows < camera.height)
    if not seen.any():
        return None
    splat = np.zeros((camera.height, camera.width), dtype=bool)
    splat[rows[seen], columns[seen]] = True
    return distance_transform_edt(~splat)


def mask_beyond_body(mask: np.ndarray, camera: Camera, vertices: np.ndarray, *, radius_px: float) -> float:
    """Share of a person mask's pixels farther than ``radius_px`` from every projected vertex of the fitted body.

    A mask the body explains scores about 0; a mask that also holds a bystander, a piece of the
    background or a prop scores that piece's share. mask: (H, W) bool of ``camera``'s image;
    vertices: (V, 3) world, metres (dense enough that the body's inside is within a pixel or two
    of a vertex, as Anny's and SMPL's are at a few hundred pixels of height).
    """
    mask = _check_mask(mask, camera)
    if not mask.any():
        return 0.0
    distance = body_distance_px(camera, vertices)
    return 1.0 if distance is None else float((distance[mask] > radius_px).mean())


def trim_mask_to_body(mask: np.ndarray, camera: Camera, vertices: np.ndarray, *, radius_px: float) -> np.ndarray:
    """The (H, W) bool mask without its pixels farther than ``radius_px`` from every projected vertex
    of the fitted body (what :func:`mask_beyond_body` counts); empty when the body is not in view."""
    mask = _check_mask(mask, camera)
    distance = body_distance_px(camera, vertices)
    return np.zeros_like(mask) if distance is None else mask & (distance <= radius_px)


def _check_mask(mask: np.ndarray, camera: Camera) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (camera.height, camera.width):
        raise ValueError(f"mask must be ({camera.height}, {camera.width}) for camera {camera.name!r}, got {mask.shape}")
    return mask


def format_table(rows: list[FrameResidual]) -> str:
    """A fixed-width text table of the rows plus a mean line over fitted frames."""
    header = (
        f"{'frame':>5} {'status':>7} {'reproj px':>9} {'tri px':>7} {'views':>5} {'kp mm':>7} {'vert mm':>7} {'s':>6} "
        f"{'mask %':>6}  note"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        beyond = max(r.mask_beyond_pct) if r.mask_beyond_pct else float("nan")
        lines.append(
            f"{r.frame:>5} {r.status:>7} {r.reprojection_px:>9.2f} {r.triangulation_px:>7.2f} {r.views:>5} "
            f"{r.keypoint_error_mm:>7.1f} {r.vertex_error_mm:>7.1f} {r.seconds:>6.2f} {beyond:>6.1f}  {r.message}"
        )
    ok = [r for r in rows if r.status == "ok"]
    if ok:
        mean = lambda name: float(np.nanmean([getattr(r, name) for r in ok])) if any(  # noqa: E731
            np.isfinite(getattr(r, name)) for r in ok) else float("nan")  # fmt: skip
        lines.append("-" * len(header))
        lines.append(
            f"{'mean':>5} {len(ok):>4}/{len(rows):<2} {mean('reprojection_px'):>9.2f} {mean('triangulation_px'):>7.2f} "
            f"{'':>5} {mean('keypoint_error_mm'):>7.1f} {mean('vertex_error_mm'):>7.1f} {mean('seconds'):>6.2f}"
        )
    return "\n".join(lines)


def _edges(faces: np.ndarray, max_edges: int) -> np.ndarray:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    step = max(1, len(edges) // max_edges)
    return edges[::step]


def draw_overlay(
    images: list[np.ndarray],
    cameras: list[Camera],
    *,
    vertices: np.ndarray,
    faces: np.ndarray,
    keypoints2d: np.ndarray | None = None,
    fitted_keypoints: np.ndarray | None = None,
    max_edges: int = 1500,
) -> np.ndarray:
    """(H, sum W, 3) uint8: each view's image with the fitted mesh's edges (green), the observed
    keypoints (red) and the fitted keypoints (blue), views side by side.

    images: C (H, W, 3) float in [0, 1] or uint8; vertices (V, 3) world metres; faces (F, 3);
    keypoints2d (C, K, 3) observed ``(u, v, conf)``; fitted_keypoints (K, 3) world metres.
    """
    from PIL import Image, ImageDraw

    edges = _edges(np.asarray(faces), max_edges)
    panels = []
    for c, (image, camera) in enumerate(zip(images, cameras)):
        array = np.asarray(image)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
        canvas = Image.fromarray((array * 0.6).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        uv, depth = project_points(camera, vertices)
        for a, b in edges:
            if depth[a] > 0 and depth[b] > 0:
                draw.line([tuple(uv[a]), tuple(uv[b])], fill=(60, 220, 60), width=1)
        radius = max(2, camera.width // 128)
        if keypoints2d is not None:
            for u, v, conf in keypoints2d[c]:
                if conf > 0:
                    draw.ellipse([u - radius, v - radius, u + radius, v + radius], outline=(255, 40, 40))
        if fitted_keypoints is not None:
            for u, v in project_points(camera, fitted_keypoints)[0]:
                draw.rectangle([u - radius, v - radius, u + radius, v + radius], outline=(60, 120, 255))
        panels.append(np.asarray(canvas))
    height = max(p.shape[0] for p in panels)
    panels = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0))) for p in panels]
    return np.concatenate(panels, axis=1)


def write_overlay(path: str | Path, overlay: np.ndarray) -> None:
    """Write an overlay image as PNG (parent folders created)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(overlay).save(path)
