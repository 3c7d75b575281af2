"""How far to trust a capture's person masks, judged from the data: the masks against the posed body.

Real masks come from a segmentation network and are wrong near the person's outline (eroded,
dilated, ragged) and inside it (holes); a capture rarely says how wrong. Every capture does
hold the posed body of each frame (vertices, world, metres), so each mask can be compared
with the body's silhouette in the same camera:

1. **Body silhouette** (:func:`vertex_silhouette`): the posed vertices projected into the
   camera (pixel centres at integer coordinates), one pixel each, closed by a disc of radius
   ``r`` (dilation then erosion; ``r`` the 95th percentile of the vertices' nearest-neighbour
   spacing in pixels, so the gaps between neighbouring vertices close but the outline stays on
   the outermost vertices), holes filled. Its outline lies on the body's outline to about a
   pixel (concavities narrower than ``2 r``, such as an arm against the body, fill).
2. **Agreement of one image** (:func:`mask_agreement`): for every pixel on the outer border of
   the mask (holes filled), the signed distance ``d`` to the silhouette's border in pixels,
   positive outside the silhouette (``d = edt(not S)``) and ``d = 1 - edt(S)`` inside (0 on the
   silhouette's own border pixels), with ``edt`` the Euclidean distance transform. Then::

       offset = median(d)                   (+: the mask is dilated, -: eroded; pixels)
       spread = 1.4826 * median |d - offset|   (raggedness, pixels; a robust standard deviation)
       holes  = share of the silhouette's core (eroded by 3 px) missing from the mask

3. **Capture** (:func:`estimate_mask_quality`): the medians over up to ``max_images`` training
   images spread over frames and views (a frame with a poor body fit does not decide), then
   the **trust band** (:func:`trust_band`)::

       band = min(|offset| + 2 sqrt(max(spread^2 - 0.75^2, 0)), limit)
              (|offset| counted from 0.75 px; 0 when the band is below 1 px)

   0.75 px is what exact masks read against the suite's bodies (pixel rounding, the vertex
   silhouette's own error): exact masks (and a good body fit) give band 0. The limit (twice
   Neural Body's 5 px at 512 px) caps what is more likely a body that does not fit the person
   (loose clothes, a poor fit) than a mask error.

How training uses it (:mod:`neuralbody.training.image_source`): the **opacity** target is the
mask, its small holes filled (:func:`fill_small_holes`), on every pixel of the body box, the
outline included: random errors (ragged) average out under the squared loss, so the outline
stays where the mask is right on average (a band left out of supervision altogether leaves it
free, and the body grows by the band's width). A uniform offset (an eroded or dilated mask) is
measured but not undone: it is the same in every view, so the held-out images, masked alike,
show it too (undoing a 3 px dilation cost 1.4 dB on the suite's ``walk-pinstripe``). The
**colour** is not supervised within ``band`` of the outline (:func:`outline_band`), where the
image holds backdrop (a halo) or black (an eroded edge) instead of the person.
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
        band_px: the trust band, pixels (0: the masks are exact).
        images: how many images were compared.
    """

    offset_px: float
    spread_px: float
    holes: float
    band_px: float
    images: int

    @property
    def exact(self) -> bool:
        return self.band_px == 0.0


def trust_band(offset_px: float, spread_px: float, *, limit_px: float = math.inf) -> float:
    """The trust band, pixels, from one capture's offset and spread.

    An offset below ``EXACT_OFFSET_PX`` in size reads as none; the spread beyond the estimate's
    own (``SPREAD_FLOOR_PX``, what exact masks read) is the masks' raggedness::

        band = min(|offset| + 2 sqrt(max(spread^2 - SPREAD_FLOOR_PX^2, 0)), limit_px)
               (|offset| counted from EXACT_OFFSET_PX; 0 when the band is below 1 px)

    ``limit_px``: a wider disagreement says more about the body (loose clothes, a poor fit)
    than about the mask.
    """
    offset, spread = abs(float(offset_px)), float(spread_px)
    shift = offset if offset >= EXACT_OFFSET_PX else 0.0
    band = min(shift + 2.0 * math.sqrt(max(spread**2 - SPREAD_FLOOR_PX**2, 0.0)), limit_px)
    return 0.0 if band < 1.0 else band


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
    ``limit_px``: the widest band (:func:`trust_band`)."""
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
        return MaskQuality(0.0, 0.0, 0.0, 0.0, 0)
    offset = float(np.median([a.offset_px for a in agreements]))
    spread = float(np.median([a.spread_px for a in agreements]))
    holes = float(np.median([a.holes for a in agreements]))
    band = trust_band(offset, spread, limit_px=limit_px)
    quality = MaskQuality(offset, spread, holes, band, len(agreements))
    log.info("masks against the bodies (%d images): offset %+.2f px, spread %.2f px, holes %.2f %% "
             "-> trust band %.1f px", quality.images, offset, spread, 100 * holes, band)  # fmt: skip
    return quality


def fill_small_holes(mask: np.ndarray, depth_px: float) -> np.ndarray:
    """The mask (H, W) bool with the holes no deeper than ``depth_px`` filled.

    A hole is background enclosed by the mask; its depth is the largest distance of its pixels
    from the mask. Deeper enclosed background (the gap between an arm on the hip and the body)
    stays. ``depth_px`` 0: unchanged.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"fill_small_holes: mask must be (H, W), got {mask.shape}")
    if not math.isfinite(depth_px) or depth_px < 0:
        raise ValueError(f"fill_small_holes: depth_px must be >= 0, got {depth_px}")
    out = mask.copy()
    if depth_px == 0 or not out.any():
        return out
    holes = ndimage.binary_fill_holes(out) & ~out
    labels, count = ndimage.label(holes)
    if count:
        depth = ndimage.maximum(ndimage.distance_transform_edt(~out), labels, np.arange(1, count + 1))
        out |= np.isin(labels, np.flatnonzero(np.asarray(depth) <= depth_px) + 1)
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
