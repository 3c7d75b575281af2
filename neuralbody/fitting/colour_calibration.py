"""Matching the cameras' colour responses from the fitted body: one RGB gain per camera.

Cameras of one rig rarely agree about colour: each sets its own exposure, gain and white
balance. A radiance field's view-dependent colour head then learns each training camera's
response in that camera's direction, so a novel view changes its colour balance as it passes
a camera: an orbit video flickers, and a held-out camera sees a colour cast (box PSNR barely
notices: the box is mostly background, the errors small in absolute terms). Measured: on the
Pose2Sim demo the same skin, seen by cam03 and cam04, differs by 15 / 17 / 29 % (R / G / B),
and cam02 records it 11-20 % darker than cam01; calibrating halves the swing of the rendered
B/G ratio along an orbit (std 0.059 -> 0.031) and leaves the held-out PSNR where it was. On a
synthetic capture with two of four training cameras shifted by up to 30 %, the orbit's colour
swing grows threefold without calibration (B/G std 0.035 -> 0.131) and returns to that of the
unshifted capture with it (0.031).

Model: camera c records the colour of a diffuse surface point p as

    I_c(p) = g_c * L(p)        (per channel, g_c > 0)

with ``L`` the point's colour in a reference response shared by the rig. For two cameras a, b
that see the same point, ``log I_b - log I_a = log g_b - log g_a``.

Samples: the vertices of each frame's fitted body mesh (world, metres; faces wound outwards,
as body models are) that camera c sees: facing it (cosine between the vertex normal and the
direction to the camera above ``min_cos``), not occluded (a ray cast from the camera centre
reaches the vertex within ``tolerance`` metres), inside its image and inside its person mask
eroded by ``erode_px`` (away from the outline, where mesh and image disagree; default the
training's mask border, 5 px at 512 px width), and neither dark nor saturated
(``min_value < I < max_value`` in every channel). Colours are read at the nearest pixel.

Estimate: per camera pair with at least ``min_points`` shared samples, the median of the log
ratios (robust to samples that land on the wrong side of an edge, skin beside black shorts);
then weighted least squares over the pairs (weights ``sqrt(points)``) for ``log g``. The gauge
(one free factor per channel) is fixed by the darkest camera: per channel the smallest gain is
1, so dividing an image by its camera's gain never brightens it and nothing clips. Cameras that
share no pair with the largest connected group keep gain 1 and are reported.

Use (:class:`~neuralbody.data.cameras.Camera` ``colour_gain``): training images are divided by
their camera's gain (the model learns the reference colours), renders for a capture camera are
multiplied by it, so a held-out camera is compared in its own response.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from scipy import ndimage

from neuralbody.data.cameras import Camera, project_points
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.raycast import cast_rays
from neuralbody.training.image_source import default_border_px

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SampleSettings:
    """Which mesh vertices count as seen by a camera (see the module docstring)."""

    min_cos: float = 0.5
    tolerance: float = 0.01  # metres
    erode_px: int | None = None  # None: as the training's mask border, 5 px at 512 px width
    min_value: float = 0.08
    max_value: float = 0.98


@dataclasses.dataclass
class ColourCalibration:
    """Result of :func:`solve_log_gains` / :func:`calibrate_colours` for C cameras.

    Attributes:
        gains: (C, 3) RGB gain of each camera (>= 1; per channel the smallest is 1).
        connected: (C,) bool, the camera shares samples with the largest connected group
            (False: its gain is left at 1).
        pair_points: (C, C) int, samples seen by both cameras (symmetric, 0 on the diagonal).
        pair_log_ratio: (C, C, 3) median of ``log I_b - log I_a`` for row a, column b (NaN
            where fewer than ``min_points``).
        pair_residual: (C, C, 3) measured minus modelled log ratio (NaN where not measured): how
            far the cameras' disagreement is from a pure per-camera gain.
    """

    gains: np.ndarray
    connected: np.ndarray
    pair_points: np.ndarray
    pair_log_ratio: np.ndarray
    pair_residual: np.ndarray


def visible_vertex_colours(
    vertices,
    faces,
    cameras: list[Camera],
    images: list[np.ndarray],
    masks: list[np.ndarray],
    settings: SampleSettings = SampleSettings(),
) -> tuple[np.ndarray, np.ndarray]:
    """Colour of every mesh vertex in every camera that sees it (see the module docstring).

    Args:
        vertices: (V, 3) the frame's fitted body mesh, world, metres.
        faces: (F, 3) int triangle indices.
        cameras: C cameras.
        images: C images (H_c, W_c, 3) float in [0, 1], each its camera's size.
        masks: C person masks (H_c, W_c) bool.
        settings: visibility and value thresholds.

    Returns:
        ``colours`` (C, V, 3) float64 (zeros where not seen) and ``seen`` (C, V) bool.
    """
    vertices = torch.as_tensor(np.asarray(vertices), dtype=torch.float64)
    faces = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise ValueError(f"visible_vertex_colours: vertices must be (V, 3), got {tuple(vertices.shape)}")
    if not (len(cameras) == len(images) == len(masks)):
        raise ValueError(
            f"visible_vertex_colours: one image and one mask per camera, got {len(cameras)} cameras, "
            f"{len(images)} images, {len(masks)} masks"
        )
    normals = vertex_normals(vertices, faces)
    num_vertices = vertices.shape[0]
    colours = np.zeros((len(cameras), num_vertices, 3))
    seen = np.zeros((len(cameras), num_vertices), dtype=bool)
    for c, (camera, image, mask) in enumerate(zip(cameras, images, masks, strict=True)):
        image = np.asarray(image, dtype=np.float64)
        mask = np.asarray(mask, dtype=bool)
        if image.shape != (camera.height, camera.width, 3) or mask.shape != image.shape[:2]:
            raise ValueError(
                f"visible_vertex_colours: camera {camera.name or c} is {camera.width}x{camera.height} but its "
                f"image is {image.shape} and its mask {mask.shape}"
            )
        centre = torch.as_tensor(camera.center, dtype=torch.float64)
        to_camera = centre - vertices
        distance = to_camera.norm(dim=1).clamp_min(1e-12)
        facing = (normals * to_camera).sum(dim=1) / distance > settings.min_cos
        hits = cast_rays(vertices, faces, centre.expand_as(vertices).contiguous(), -to_camera / distance[:, None])
        unoccluded = ~hits.hit.cpu() | (hits.t.cpu().double() >= distance - settings.tolerance)
        uv, depth = project_points(camera, vertices.numpy())
        u, v = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
        ok = (facing & unoccluded).numpy() & (depth > 0) & (u >= 0) & (v >= 0) & (u < camera.width) & (v < camera.height)
        erode_px = default_border_px(camera.width) if settings.erode_px is None else settings.erode_px
        inner = ndimage.binary_erosion(mask, iterations=erode_px, border_value=0) if erode_px > 0 else mask
        ok[ok] &= inner[v[ok], u[ok]]
        values = image[v[ok], u[ok]]
        ok[ok] &= (values.min(axis=1) > settings.min_value) & (values.max(axis=1) < settings.max_value)
        colours[c, ok] = image[v[ok], u[ok]]
        seen[c] = ok
    return colours, seen


def pair_log_ratios(colours: np.ndarray, seen: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Per camera pair (a < b), (N_ab, 3) ``log I_b - log I_a`` of the vertices both see.

    colours: (C, V, 3) in (0, 1]; seen: (C, V) bool (from :func:`visible_vertex_colours`).
    """
    ratios = {}
    for a in range(colours.shape[0]):
        for b in range(a + 1, colours.shape[0]):
            both = seen[a] & seen[b]
            if both.any():
                ratios[(a, b)] = np.log(colours[b, both]) - np.log(colours[a, both])
    return ratios


def _largest_component(edges: list[tuple[int, int]], num_cameras: int) -> np.ndarray:
    """(C,) bool: the cameras of the largest group linked by ``edges`` (camera pairs)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = [a for a, _ in edges]
    cols = [b for _, b in edges]
    graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(num_cameras, num_cameras))
    _, labels = connected_components(graph, directed=False)
    return labels == int(np.argmax(np.bincount(labels)))


def solve_log_gains(
    ratios: dict[tuple[int, int], np.ndarray], num_cameras: int, *, min_points: int = 100
) -> ColourCalibration:
    """Per-camera RGB gains from per-pair log colour ratios (see the module docstring).

    Args:
        ratios: {(a, b): (N_ab, 3) log I_b - log I_a}, a < b, e.g. gathered over frames from
            :func:`pair_log_ratios`.
        num_cameras: C.
        min_points: pairs with fewer samples are not used.

    Returns:
        :class:`ColourCalibration`.
    """
    if num_cameras < 1:
        raise ValueError(f"solve_log_gains: need at least one camera, got {num_cameras}")
    if min_points < 1:
        raise ValueError(f"solve_log_gains: min_points must be >= 1, got {min_points}")
    pair_points = np.zeros((num_cameras, num_cameras), dtype=np.int64)
    pair_log_ratio = np.full((num_cameras, num_cameras, 3), np.nan)
    edges, medians, weights = [], [], []
    for (a, b), values in ratios.items():
        if not (0 <= a < b < num_cameras):
            raise ValueError(f"solve_log_gains: pair {(a, b)} is not (a, b) with 0 <= a < b < {num_cameras}")
        values = np.asarray(values, dtype=np.float64).reshape(-1, 3)
        pair_points[a, b] = pair_points[b, a] = values.shape[0]
        if values.shape[0] < min_points:
            continue
        median = np.median(values, axis=0)
        pair_log_ratio[a, b], pair_log_ratio[b, a] = median, -median
        edges.append((a, b))
        medians.append(median)
        weights.append(np.sqrt(values.shape[0]))
    connected = _largest_component(edges, num_cameras)
    index = np.flatnonzero(connected)
    log_gains = np.zeros((num_cameras, 3))
    used = [k for k, (a, b) in enumerate(edges) if connected[a] and connected[b]]
    if used:
        column = {camera: k for k, camera in enumerate(index)}
        design = np.zeros((len(used) + 1, index.size))
        target = np.zeros((len(used) + 1, 3))
        for row, k in enumerate(used):
            a, b = edges[k]
            design[row, column[b]], design[row, column[a]] = weights[k], -weights[k]
            target[row] = weights[k] * medians[k]
        design[-1] = 1.0  # any gauge for the solve; the darkest camera is set to 1 below
        log_gains[index] = np.linalg.lstsq(design, target, rcond=None)[0]
    log_gains[index] -= log_gains[index].min(axis=0)
    modelled = log_gains[None, :, :] - log_gains[:, None, :]
    residual = pair_log_ratio - modelled
    if (~connected).any():
        log.warning("colour calibration: cameras %s share too few body samples with the others; their gain stays 1",
                    np.flatnonzero(~connected).tolist())  # fmt: skip
    return ColourCalibration(
        gains=np.exp(log_gains), connected=connected, pair_points=pair_points,
        pair_log_ratio=pair_log_ratio, pair_residual=residual,
    )  # fmt: skip


def calibrate_colours(
    capture,
    frames: list[int],
    faces,
    *,
    settings: SampleSettings = SampleSettings(),
    min_points: int = 100,
    progress: bool = True,
) -> ColourCalibration:
    """Per-camera RGB gains of a capture from its fitted bodies (``vertices/``), images and masks.

    Args:
        capture: a :class:`~neuralbody.data.capture.Capture` with fitted vertices for ``frames``.
        frames: frame indices to sample (frames without a vertices file are skipped).
        faces: (F, 3) triangles of the body model the vertices belong to.
        settings: visibility and value thresholds.
        min_points: pairs with fewer shared samples are not used.
        progress: show a progress bar.
    """
    from neuralbody.io.progress import progress_bar

    gathered: dict[tuple[int, int], list[np.ndarray]] = {}
    used = 0
    for frame in progress_bar(frames, enabled=progress, desc="colour samples", unit="frame"):
        if not capture.vertices_path(frame).is_file():
            continue
        vertices = capture.load_vertices(frame)
        images = [capture.load_image(frame, view) for view in range(capture.num_views)]
        masks = [np.asarray(capture.load_mask(frame, view), dtype=bool) for view in range(capture.num_views)]
        colours, seen = visible_vertex_colours(vertices, faces, capture.cameras, images, masks, settings)
        for pair, values in pair_log_ratios(colours, seen).items():
            gathered.setdefault(pair, []).append(values)
        used += 1
    if used == 0:
        raise FileNotFoundError(
            f"{capture.root}: no fitted body (vertices/) for the selected frames: run neuralbody fit {capture.root} first"
        )
    ratios = {pair: np.concatenate(values) for pair, values in gathered.items()}
    log.debug("colour calibration: %d frames, pairs %s", used, {p: len(v) for p, v in ratios.items()})
    return solve_log_gains(ratios, capture.num_views, min_points=min_points)
