"""Where the training sampler gets its decoded images: all preloaded, or streamed through an LRU cache.

A *training image* is one (frame, view) pair decoded for ray sampling: the colours as uint8,
the person mask, and the two pixel-index sets rays are drawn from (see
:mod:`neuralbody.training.rays`)::

    band   = dilate(M, border_px) xor erode(M, border_px)     (square neighbourhood)
    inside = M and not band        box = B and not band

with M the person mask and B the projection of the body box (posed vertices' box padded
``box_padding`` metres, :func:`neuralbody.geometry.box.body_box`). Decoded size is about ``H*W*(3 + 1) + 4*(|inside| + |box|)`` bytes
(at most 13 bytes a pixel with the colour trust below: 3.4 MB at 512x512).

With masks judged from the data (``DecodeSettings.trust``, :mod:`neuralbody.training.mask_trust`)
the band is not left out: M is the mask with its small holes filled, ``inside = M`` and
``box = B``, and ``colour_trust`` marks the pixels off the trust band around M's outline.

Two sources with one interface (``get(frame, view) -> TrainingImage``, ``prefetch(frame)``):

* :class:`PreloadedImages` decodes every training pair up front (fast steps, memory grows
  with frames x views).
* :class:`StreamingImages` decodes pairs on demand and keeps at most ``capacity`` of them in
  a least-recently-used cache; ``prefetch(frame)`` decodes the views of the next step's frame
  on one background thread while the current step trains.

:func:`choose_source` preloads when the estimated decoded size fits ``preload_budget_bytes``
(default 1.5 GB) and streams otherwise. Both return the very same arrays for a pair, so the
rays drawn with the same generator are identical.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading

import numpy as np
import torch
from scipy import ndimage

from neuralbody.data.cameras import project_box_mask
from neuralbody.geometry.box import BODY_BOX_PADDING, body_box
from neuralbody.io.progress import progress_bar
from neuralbody.training.mask_trust import MaskQuality, fill_small_holes, outline_band

log = logging.getLogger(__name__)

BYTES_PER_PIXEL_BOUND = 13  # rgb 3 + mask 1 + inside/box ids 2 x int32 + colour trust 1
DEFAULT_PRELOAD_BUDGET = int(1.5e9)
DEFAULT_CACHE_BYTES = int(1e9)


@dataclasses.dataclass
class TrainingImage:
    """One decoded training image (frame, view), flattened row-major (pixel id = y * W + x).

    Attributes:
        frame, view: capture indices.
        rgb: (H*W, 3) uint8 colours.
        mask: (H*W,) bool person mask.
        inside_ids: (P,) int32 pixel ids on the person, off the border band.
        box_ids: (Q,) int32 pixel ids inside the body box's projection, off the band.
        colour_trust: (H*W,) bool, where the colour is supervised (None: everywhere).
    """

    frame: int
    view: int
    rgb: torch.Tensor
    mask: torch.Tensor
    inside_ids: torch.Tensor
    box_ids: torch.Tensor
    colour_trust: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        tensors = (self.rgb, self.mask, self.inside_ids, self.box_ids, self.colour_trust)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def default_border_px(width: int) -> int:
    """Neural Body excludes 5 px at 512 px width; scaled with the width, at least 1."""
    return max(1, int(round(5 * width / 512)))


def border_band(mask: np.ndarray, border_px: int) -> np.ndarray:
    """(H, W) bool band of pixels within ``border_px`` of the mask border (square neighbourhood)."""
    if border_px <= 0:
        return np.zeros_like(mask, dtype=bool)
    structure = np.ones((3, 3), dtype=bool)
    dilated = ndimage.binary_dilation(mask, structure, iterations=border_px)
    eroded = ndimage.binary_erosion(mask, structure, iterations=border_px, border_value=0)
    return dilated & ~eroded


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """How images are decoded: ``border_px`` None = 5 px at 512 px width; ``box_padding`` metres
    (:func:`neuralbody.geometry.box.body_box`'s padding); ``trust``: the masks judged from the
    data (:class:`~neuralbody.training.mask_trust.MaskQuality`), used instead of ``border_px``
    when given (see :func:`decode_training_image`)."""

    border_px: int | None = None
    box_padding: float = BODY_BOX_PADDING
    trust: MaskQuality | None = None


def decode_training_image(capture, *, frame: int, view: int, body, settings: DecodeSettings) -> TrainingImage:
    """Read and decode one training pair (see the module docstring); ``body.vertices``: (V, 3) world, metres.

    With ``settings.trust`` (masks judged from the data, :mod:`neuralbody.training.mask_trust`)
    no pixel is left out: the mask (small holes filled) is the opacity target on the whole box;
    the colour is trusted off the band around its outline.
    """
    camera = capture.cameras[view]
    band_px = settings.border_px if settings.border_px is not None else default_border_px(camera.width)
    if settings.trust is not None:
        band_px = 0
    image = capture.load_image(frame, view)
    mask = np.asarray(capture.load_mask(frame, view), dtype=bool)
    if image.shape[:2] != (camera.height, camera.width) or mask.shape != image.shape[:2]:
        raise ValueError(
            f"frame {frame} camera {view}: image {image.shape} / mask {mask.shape} do not match the "
            f"camera's {camera.width}x{camera.height}; check the capture's images and annots.npy"
        )
    colour_trust = None
    if settings.trust is not None:
        trust = settings.trust
        mask = fill_small_holes(mask, trust.band_px + 1.0 if trust.band_px else 0.0)
        if trust.band_px > 0:
            colour_trust = torch.from_numpy(~outline_band(mask, trust.band_px).reshape(-1))
    box_min, box_max = body_box(body.vertices.detach().cpu().double().numpy(), settings.box_padding)
    box_mask = project_box_mask(camera, box_min, box_max)
    keep = ~border_band(mask, band_px)
    inside = np.flatnonzero(mask & keep)
    box = np.flatnonzero(box_mask & keep)
    if inside.size == 0:
        inside = np.flatnonzero(mask) if mask.any() else box
    if camera.has_colour_gain:  # into the rig's reference colours (gains >= 1: nothing clips)
        image = np.asarray(image) / camera.colour_gain
    rgb = np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8).reshape(-1, 3)
    return TrainingImage(
        frame=frame, view=view, rgb=torch.from_numpy(rgb), mask=torch.from_numpy(mask.reshape(-1)),
        inside_ids=torch.from_numpy(inside.astype(np.int32)), box_ids=torch.from_numpy(box.astype(np.int32)),
        colour_trust=colour_trust,
    )


def estimate_decoded_bytes(capture, *, frames: list[int], views: list[int]) -> int:
    """Upper bound of the decoded size of all (frame, view) training pairs, bytes."""
    pixels = sum(capture.cameras[v].width * capture.cameras[v].height for v in views)
    return BYTES_PER_PIXEL_BOUND * pixels * len(frames)


class PreloadedImages:
    """Every training pair decoded once at construction."""

    streaming = False

    def __init__(self, capture, *, frames: list[int], views: list[int], bodies: dict, settings: DecodeSettings,
                 progress: bool = True) -> None:
        self.images: dict[tuple[int, int], TrainingImage] = {}
        pairs = [(f, v) for f in frames for v in views]
        for frame, view in progress_bar(pairs, desc="loading images", unit="img", enabled=progress, leave=False):
            self.images[frame, view] = decode_training_image(
                capture, frame=frame, view=view, body=bodies[frame], settings=settings
            )
        log.info("preloaded %d training images (%d frames x %d views, %.1f MB)", len(pairs), len(frames),
                 len(views), sum(i.nbytes for i in self.images.values()) / 1e6)

    def get(self, frame: int, view: int) -> TrainingImage:
        return self.images[frame, view]

    def prefetch(self, frame: int) -> None:
        """Nothing to do: everything is in memory."""

    def close(self) -> None:
        pass


class StreamingImages:
    """Training pairs decoded on demand, at most ``capacity`` kept (least recently used evicted).

    Thread-safe: ``prefetch(frame)`` queues the frame's views on one background thread; a
    ``get`` of a pair being decoded waits for it instead of decoding it twice. ``max_held``
    records the largest number of entries the cache ever held (never above ``capacity``).
    """

    streaming = True

    def __init__(self, capture, *, views: list[int], bodies: dict, settings: DecodeSettings, capacity: int,
                 background: bool = True) -> None:
        if capacity < 1:
            raise ValueError(f"StreamingImages capacity must be at least 1 entry (got {capacity})")
        self.capture = capture
        self.views = list(views)
        self.bodies = bodies
        self.settings = settings
        self.capacity = int(capacity)
        self.max_held = 0
        self.decoded = 0
        self._cache: collections.OrderedDict[tuple[int, int], TrainingImage] = collections.OrderedDict()
        self._pending: dict[tuple[int, int], concurrent.futures.Future] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prefetch") if background else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def entries(self) -> list[TrainingImage]:
        """A snapshot of the cached images, least recently used first."""
        with self._lock:
            return list(self._cache.values())

    def _insert(self, key: tuple[int, int], image: TrainingImage) -> None:
        # caller holds the lock
        self._cache[key] = image
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.max_held = max(self.max_held, len(self._cache))

    def _decode(self, key: tuple[int, int]) -> TrainingImage:
        frame, view = key
        image = decode_training_image(self.capture, frame=frame, view=view, body=self.bodies[frame],
                                      settings=self.settings)
        with self._lock:
            self.decoded += 1
            self._insert(key, image)
            self._pending.pop(key, None)
        return image

    def get(self, frame: int, view: int) -> TrainingImage:
        key = (frame, view)
        with self._lock:
            image = self._cache.get(key)
            if image is not None:
                self._cache.move_to_end(key)
                return image
            future = self._pending.get(key)
        if future is not None:
            return future.result()
        return self._decode(key)

    def prefetch(self, frame: int) -> None:
        """Start decoding ``frame``'s training views in the background (no-op without a thread)."""
        if self._pool is None:
            return
        with self._lock:
            keys = [(frame, v) for v in self.views if (frame, v) not in self._cache and (frame, v) not in self._pending]
            for key in keys:
                self._pending[key] = self._pool.submit(self._decode, key)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def choose_source(capture, *, frames: list[int], views: list[int], bodies: dict, settings: DecodeSettings,
                  mode: str = "auto", preload_budget_bytes: int = DEFAULT_PRELOAD_BUDGET,
                  cache_bytes: int = DEFAULT_CACHE_BYTES, progress: bool = True):
    """``mode`` "preload", "stream" or "auto" (preload when the decoded estimate fits the budget).

    The streaming cache holds ``cache_bytes`` worth of images (estimated), at least two
    frames' worth of views (the current step's and the prefetched one).
    """
    if mode not in ("auto", "preload", "stream"):
        raise ValueError(f"image source mode {mode!r}: choose auto, preload or stream")
    estimate = estimate_decoded_bytes(capture, frames=frames, views=views)
    if mode == "auto":
        mode = "preload" if estimate <= preload_budget_bytes else "stream"
    if mode == "preload":
        return PreloadedImages(capture, frames=frames, views=views, bodies=bodies, settings=settings, progress=progress)
    per_image = max(estimate // max(len(frames) * len(views), 1), 1)
    capacity = max(int(cache_bytes // per_image), 2 * len(views))
    log.info("streaming %d training images (%.1f GB decoded estimate) through a cache of %d (%.2f GB)",
             len(frames) * len(views), estimate / 1e9, capacity, capacity * per_image / 1e9)
    return StreamingImages(capture, views=views, bodies=bodies, settings=settings, capacity=capacity)
