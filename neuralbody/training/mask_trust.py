"""How far to trust a capture's person masks, judged from the data: the masks against the posed body.

Real masks come from a segmentation network and are wrong near the person's outline (eroded,
dilated, ragged) and inside it (holes); a capture rarely says how wrong. Every capture does
hold the posed body of each frame (vertices, world, metres), so each mask can be compared
with the body's silhouette in the same camera:

1. **Body silhouette** (:func:`vertex_silhouette`): the posed vertices projected into the
   camera (pixel centres at integer coordinates), one pixel each, closed by a disc of radius
   ``r`` (dilation then erosion; ``r`` the vertices' median spacing in pixels, so the gaps
   between neighbouring vertices close but the outline stays on the outermost vertices), holes
   filled. Its outline lies on the body's outline to about a pixel.
2. **Agreement of one image** (:func:`mask_agreement`): for every pixel on the outer border of
   the mask (holes filled), the signed distance ``d`` to the silhouette's border in pixels,
   positive outside the silhouette (``d = edt(not S)``) and ``d = 1 - edt(S)`` inside (0 on the
   silhouette's own border pixels), with ``edt`` the Euclidean distance transform. Then::

       offset = median(d)                   (+: the mask is dilated, -: eroded; pixels)
       spread = 1.4826 * median |d - offset|   (raggedness, pixels; a robust standard deviation)
       holes  = share of the silhouette's core (eroded by 3 px) missing from the mask

3. **Capture** (:func:`estimate_mask_quality`): the medians over up to ``max_images`` training
   images spread over frames and views (a frame with a poor body fit does not decide), then
   the offset to correct and the **trust band** (:func:`trust_band`)::

       offset' = offset if 0.75 px <= |offset| <= limit and spread <= |offset| else 0
       band    = min(|offset| + 2 sqrt(max(spread^2 - 0.75^2, 0)), limit)   (0 when below 1 px;
                 |offset| counts only from 0.75 px)

   0.75 px is what exact masks read against the suite's bodies (pixel rounding, the vertex
   silhouette's own error): exact masks (and a good body fit) give offset' = 0, band = 0. Only
   a uniform offset (eroded, dilated) is corrected; an uneven or large one (limit: twice the
   5 px-at-512 px band of Neural Body) says more about the body fit (loose clothes) than
   about the mask, and only widens the band.

How training uses it (:mod:`neuralbody.training.image_source`): the **opacity** target is the
mask moved back by ``offset'`` with its small holes filled (:func:`corrected_mask`), on every
pixel of the body box, the outline included: mask errors that are random (ragged) average out
under the squared loss, so the outline stays pinned where the mask is right on average (a band
left out of supervision altogether leaves it free, and the body grows by the band's width).
The **colour** is not supervised within ``band`` of that outline (:func:`outline_band`),
where the image holds backdrop (a halo) or black (an eroded edge) instead of the person.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from neuralbody.data.cameras import Camera, project_points

log = logging.getLogger(__name__)

EXACT_OFFSET_PX = 0.75  # a median offset smaller than this is read as none (pixel rounding)
SPREAD_FLOOR_PX = 0.75  # the spread exact masks read (suite captures: 0.55-0.87 px): the estimate's own
CORE_ERODE_PX = 3  # the silhouette's core for the holes figure: eroded this much
SPACING_QUANTILE = 0.95  # of the nearest-neighbour distances: the closing radius


def _disc(radius: int) -> np.ndarray:
    v, u = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return u * u + v * v <= radius * radius


def vertex_spacing(vertices: np.ndarray, quantile: float = SPACING_QUANTILE) -> float:
    """The ``quantile`` of the distances from each vertex (V, 3), metres, to its nearest other vertex, metres.

    A high quantile: the sparsest regions of the mesh (a farthest-point subset, a coarse
    body model) must close too.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] < 2:
        raise ValueError(f"vertex_spacing: vertices must be (V >= 2, 3), got {vertices.shape}")
    distance, _ = cKDTree(vertices).query(vertices, k=2)
    return float(np.quantile(distance[:, 1], quantile))


def vertex_silhouette(camera: Camera, vertices: np.ndarray, *, spacing_m: float | None = None) -> np.ndarray:
    """(H, W) bool silhouette of the posed vertices (V, 3), world, metres, in ``camera``'s image.

    The vertices in front of the camera are rasterised one pixel each (nearest pixel centre),
    closed with a disc of radius ``ceil(spacing_px)`` (``spacing_m``, default
    :func:`vertex_spacing`, turned into pixels with the focal length at the vertices' median
    depth) and their holes filled. Empty when no vertex projects into the image.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    spacing_m = vertex_spacing(vertices) if spacing_m is None else float(spacing_m)
    if not (math.isfinite(spacing_m) and spacing_m > 0):
        raise ValueError(f"vertex_silhouette: spacing_m must be a positive length, got {spacing_m}")
    uv, depth = project_points(camera, vertices)
    height, width = camera.height, camera.width
    silhouette = np.zeros((height, width), dtype=bool)
    front = depth > 0
    if not front.any():
        return silhouette
    focal = 0.5 * (abs(float(camera.K[0, 0])) + abs(float(camera.K[1, 1])))
    radius = max(1, int(math.ceil(spacing_m * focal / float(np.median(depth[front])))))
    cols, rows = np.round(uv[front, 0]).astype(np.int64), np.round(uv[front, 1]).astype(np.int64)
    seen = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    pad = radius + 1  # closing near the image border: pad, close, crop
    padded = np.zeros((height + 2 * pad, width + 2 * pad), dtype=bool)
    padded[rows[seen] + pad, cols[seen] + pad] = True
    padded = ndimage.binary_closing(padded, structure=_disc(radius))
    return ndimage.binary_fill_holes(padded)[pad:-pad, pad:-pad]


@dataclasses.dataclass(frozen=True)
class MaskAgreement:
    """One mask against the body's silhouette (pixels; see the module docstring).

    Attributes:
        offset_px: median signed distance of the mask's outer border from the silhouette's
            border (+: dilated, -: eroded).
        spread_px: 1.4826 x the median absolute deviation of those distances (raggedness).
        holes: share of the silhouette's core missing from the mask, in [0, 1].
        border_pixels: how many border pixels were measured (0: nothing to compare).
    """

    offset_px: float
    spread_px: float
    holes: float
    border_pixels: int


def mask_agreement(mask: np.ndarray, silhouette: np.ndarray) -> MaskAgreement:
    """Compare a person mask (H, W) bool with the body's silhouette (H, W) bool of the same image."""
    mask, silhouette = np.asarray(mask, dtype=bool), np.asarray(silhouette, dtype=bool)
    if mask.ndim != 2 or mask.shape != silhouette.shape:
        raise ValueError(f"mask_agreement: mask {mask.shape} and silhouette {silhouette.shape} must be one (H, W)")
    if not mask.any() or not silhouette.any():
        return MaskAgreement(0.0, 0.0, 0.0, 0)
    filled = ndimage.binary_fill_holes(mask)
    border = filled & ~ndimage.binary_erosion(filled, border_value=0)
    signed = np.where(silhouette, 1.0 - ndimage.distance_transform_edt(silhouette),
                      ndimage.distance_transform_edt(~silhouette))  # fmt: skip
    distances = signed[border]
    offset = float(np.median(distances))
    spread = 1.4826 * float(np.median(np.abs(distances - offset)))
    core = ndimage.binary_erosion(silhouette, structure=_disc(CORE_ERODE_PX), border_value=0)
    holes = float((core & ~mask).sum() / core.sum()) if core.any() else 0.0
    return MaskAgreement(offset, spread, holes, int(border.sum()))


@dataclasses.dataclass(frozen=True)
class MaskQuality:
    """A capture's masks judged against its bodies (medians over the images compared).

    Attributes:
        offset_px, spread_px, holes: as in :class:`MaskAgreement`, medians over the images.
        correction_px: the offset the training target corrects (0 when it is below a pixel's rounding).
        band_px: the trust band, pixels (0: the masks are exact).
        images: how many images were compared.
    """

    offset_px: float
    spread_px: float
    holes: float
    correction_px: float
    band_px: float
    images: int

    @property
    def exact(self) -> bool:
        return self.band_px == 0.0 and self.correction_px == 0.0


def trust_band(offset_px: float, spread_px: float, *, limit_px: float = math.inf) -> tuple[float, float]:
    """The offset to correct and the trust band, pixels, from one capture's offset and spread.

    An offset below ``EXACT_OFFSET_PX`` in size reads as none; the spread beyond the estimate's
    own (``SPREAD_FLOOR_PX``, what exact masks read) is the masks' raggedness::

        offset' = offset if EXACT_OFFSET_PX <= |offset| <= limit_px and spread <= |offset| else 0
        band    = min(|offset| + 2 sqrt(max(spread^2 - SPREAD_FLOOR_PX^2, 0)), limit_px)
                  (0 when below 1 px)

    Only a uniform offset (an eroded or dilated mask: the spread below the offset) within
    ``limit_px`` is corrected; a larger or uneven one is more likely a body that does not fit
    the person (loose clothes, a poor fit) than a mask error, and only widens the band, which
    never exceeds ``limit_px``. Returns (offset', band).
    """
    offset, spread = float(offset_px), float(spread_px)
    uniform = EXACT_OFFSET_PX <= abs(offset) <= limit_px and spread <= abs(offset)
    correction = offset if uniform else 0.0
    shift = abs(offset) if abs(offset) >= EXACT_OFFSET_PX else 0.0
    band = min(shift + 2.0 * math.sqrt(max(spread**2 - SPREAD_FLOOR_PX**2, 0.0)), limit_px)
    return correction, (0.0 if band < 1.0 else band)


def spread_pairs(frames: list[int], views: list[int], max_images: int) -> list[tuple[int, int]]:
    """Up to ``max_images`` (frame, view) pairs spread evenly over frames, cycling through the views."""
    if not frames or not views or max_images < 1:
        raise ValueError("spread_pairs: needs frames, views and max_images >= 1")
    count = min(max_images, len(frames) * len(views))
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [(frames[i], views[k % len(views)]) for k, i in enumerate(picks)]


def estimate_mask_quality(capture, *, frames: list[int], views: list[int], max_images: int = 8,
                          limit_px: float = math.inf) -> MaskQuality:
    """Judge ``capture``'s masks on up to ``max_images`` training images (see the module docstring);
    ``limit_px``: the largest offset corrected and the widest band (:func:`trust_band`)."""
    agreements = []
    spacing = None
    for frame, view in spread_pairs(frames, views, max_images):
        vertices = capture.load_body(frame).vertices.detach().cpu().double().numpy()
        spacing = vertex_spacing(vertices) if spacing is None else spacing  # the vertex count is fixed
        silhouette = vertex_silhouette(capture.cameras[view], vertices, spacing_m=spacing)
        agreement = mask_agreement(np.asarray(capture.load_mask(frame, view), dtype=bool), silhouette)
        if agreement.border_pixels:
            agreements.append(agreement)
    if not agreements:
        return MaskQuality(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    offset = float(np.median([a.offset_px for a in agreements]))
    spread = float(np.median([a.spread_px for a in agreements]))
    holes = float(np.median([a.holes for a in agreements]))
    correction, band = trust_band(offset, spread, limit_px=limit_px)
    quality = MaskQuality(offset, spread, holes, correction, band, len(agreements))
    log.info("masks against the bodies (%d images): offset %+.2f px, spread %.2f px, holes %.2f %% -> correction %+.2f px, trust band %.1f px",
             quality.images, offset, spread, 100 * holes, correction, band)  # fmt: skip
    return quality


def corrected_mask(mask: np.ndarray, offset_px: float, *, fill_holes_px: float = 0.0) -> np.ndarray:
    """The mask (H, W) bool moved back by a measured ``offset_px`` and with its small holes filled.

    ``offset_px`` > 0 (dilated): keep the pixels deeper than ``offset_px`` inside,
    ``edt(M) > offset_px``; < 0 (eroded): add the pixels within ``|offset_px|`` outside,
    ``edt(not M) <= |offset_px|``; 0: unchanged. Holes (background enclosed by the mask) whose
    deepest pixel is at most ``fill_holes_px`` from the mask are filled (larger enclosed
    background, such as the gap between an arm on the hip and the body, stays).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"corrected_mask: mask must be (H, W), got {mask.shape}")
    if not (math.isfinite(offset_px) and math.isfinite(fill_holes_px)) or fill_holes_px < 0:
        raise ValueError(f"corrected_mask: offset_px must be finite and fill_holes_px >= 0, got {offset_px}, {fill_holes_px}")
    out = mask.copy()
    if fill_holes_px > 0 and out.any():
        holes = ndimage.binary_fill_holes(out) & ~out
        labels, count = ndimage.label(holes)
        if count:
            depth = ndimage.maximum(ndimage.distance_transform_edt(~out), labels, np.arange(1, count + 1))
            small = np.flatnonzero(np.asarray(depth) <= fill_holes_px) + 1
            out |= np.isin(labels, small)
    if offset_px > 0:
        out = ndimage.distance_transform_edt(out) > offset_px
    elif offset_px < 0:
        out = out | (ndimage.distance_transform_edt(~out) <= -offset_px)
    return out


def outline_band(mask: np.ndarray, band_px: float) -> np.ndarray:
    """(H, W) bool pixels within ``band_px`` of the mask's (H, W) outline, on either side (Euclidean).

    A pixel of the mask at distance ``edt(M) <= band_px`` from the nearest background pixel, or
    a background pixel at ``edt(not M) <= band_px`` from the mask. Empty for ``band_px`` < 1.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"outline_band: mask must be (H, W), got {mask.shape}")
    if band_px < 1 or not mask.any() or mask.all():
        return np.zeros_like(mask)
    inside = mask & (ndimage.distance_transform_edt(mask) <= band_px)
    return inside | (~mask & (ndimage.distance_transform_edt(~mask) <= band_px))
