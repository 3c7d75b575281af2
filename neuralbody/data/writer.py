"""Writing a multi-view capture in ZJU-MoCap layout (what ``neuralbody synth`` produces).

On disk (paths relative to the capture folder; ``<cam>`` is the camera name, e.g.
``Camera_00``, ``<f>`` the frame index as six digits)::

    annots.npy                  pickled dict (np.save, allow_pickle):
                                  cams = {K: [(3, 3)], D: [(5, 1)], R: [(3, 3)], T: [(3, 1)] millimetres}
                                  ims  = [{ims: ['<cam>/<f>.png', ...one per camera]} ...one per frame]
    <cam>/<f>.png               RGB image, 8 bit (PNG, lossless; or <cam>/<f>.jpg: JPEG, as ZJU ships)
    mask_cihp/<cam>/<f>.png     person mask, uint8 0 / 255 (ZJU rule: 'mask_cihp/' + image path, .png)
    params/{i}.npy              dict: poses (1, P), Rh (1, 3) axis-angle, Th (1, 3) metres, shapes (1, S)
    vertices/{i}.npy            (V, 3) float32 posed vertices, world, metres
    gt_meshes/{i}.npz           vertices (V, 3) float32 metres, faces (F, 3) int32,    [ours]
                                optional colours (V, 3) uint8 RGB albedo
    depth/<cam>/<f>.png         z-depth in camera coordinates, uint16 MILLIMETRES, 0 = no surface [ours]
    neuralbody.json             capture description (body model, cameras split, frames split, ...) [ours;
                                left out on request, as in real ZJU-MoCap data]

The same arrays always give the same bytes: PNGs carry no metadata chunks, the ``.npz`` members
carry a fixed 1980-01-01 timestamp, JSON keys are sorted. ``annots.npy`` and
``neuralbody.json`` are written last, atomically (:mod:`neuralbody.io.atomic`), so a capture
with those files is complete.

Also here, for the commands that change a capture inside a transaction
(:mod:`neuralbody.data.transaction`): :func:`save_npy`, :func:`write_mask`, :func:`write_image`
(by suffix) and :func:`update_annots` (read, change, stage ``annots.npy``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from neuralbody.data.cameras import Camera
from neuralbody.io.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

MASK_DIR = "mask_cihp"
ORIGINAL_DIR = "original"  # images as imported, kept where a command rewrites them (black background)
JPEG_QUALITY = 95
DEPTH_DIR = "depth"
DEPTH_SCALE_MM = 1000.0  # depth PNG value = round(z metres * 1000)


IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg"}


def image_relpath(camera_name: str, frame: int, suffix: str = ".png") -> str:
    """Image path relative to the capture folder, as listed in ``annots.npy``."""
    return f"{camera_name}/{frame:06d}{suffix}"


def mask_relpath(image_path: str) -> str:
    """ZJU-MoCap's rule: ``mask_cihp/<image path with a .png suffix>``."""
    return f"{MASK_DIR}/{os.path.splitext(image_path)[0]}.png"


def depth_relpath(image_path: str) -> str:
    """``depth/<image path with a .png suffix>`` (uint16, millimetres)."""
    return f"{DEPTH_DIR}/{os.path.splitext(image_path)[0]}.png"


def write_png(path: Path, array: np.ndarray) -> None:
    """Write uint8 (H, W) / (H, W, 3) or uint16 (H, W) as PNG without metadata (reproducible bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        image = Image.fromarray(np.ascontiguousarray(array).astype("<u2"))  # mode I;16
    elif array.dtype == np.uint8:
        image = Image.fromarray(np.ascontiguousarray(array))
    else:
        raise ValueError(f"write_png({path}): dtype must be uint8 or uint16, got {array.dtype}")
    with open(path, "wb") as handle:
        image.save(handle, format="PNG", compress_level=6)


def write_jpeg(path: Path, array: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """Write (H, W, 3) uint8 RGB as a baseline JPEG at ``quality`` (1-95; 4:2:0 chroma), no metadata."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"write_jpeg({path}): expected (H, W, 3) uint8, got {array.shape} {array.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        Image.fromarray(np.ascontiguousarray(array)).save(handle, format="JPEG", quality=int(quality))


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """(H, W) float32 z-depth in metres from a depth PNG written here (0 where empty)."""
    return np.asarray(Image.open(path), dtype=np.float32) / DEPTH_SCALE_MM


def save_npy(path: str | os.PathLike, value, *, allow_pickle: bool = False) -> Path:
    """``np.save`` to exactly ``path`` (no ``.npy`` appended; parent folders made); a dict needs ``allow_pickle``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.save(handle, value, allow_pickle=allow_pickle)
    return path


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write a (H, W) mask (non-zero = the person) as an 8-bit PNG of 0 / 255 (parent folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8)).save(path, format="PNG")
    return path


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a (H, W, 3) uint8 RGB image in the format of ``path``'s suffix (JPEG at quality 95)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(path)
    return path


def save_npz_reproducible(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed`` but with fixed member timestamps, so equal arrays give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def black_out_background(transaction, capture, frame: int, view: int, image: np.ndarray, mask: np.ndarray) -> None:
    """Stage the image of ``(frame, view)`` rewritten black outside ``mask`` (the ZJU-MoCap convention
    Neural Body trains on), keeping the image as it was under ``original/`` once.

    Args:
        transaction: the :class:`~neuralbody.data.transaction.Transaction` on ``capture``'s folder.
        capture: the :class:`~neuralbody.data.capture.Capture` (read at scale 1).
        image: (H, W, 3) uint8 RGB, the image as imported (e.g. read from ``original/``).
        mask: (H, W) bool, the person.
    """
    image, mask = np.asarray(image), np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != mask.shape:
        raise ValueError(
            f"black_out_background: image (H, W, 3) and mask (H, W) must match, got {image.shape}, {mask.shape}"
        )
    relpath = capture.image_relpath(frame, view)
    original = f"{ORIGINAL_DIR}/{relpath}"
    if not (capture.root / original).is_file() and not transaction.is_staged(original):
        transaction.copy(capture.image_path(frame, view), original)
    write_image(transaction.stage(relpath), np.where(mask[..., None], image, 0).astype(np.uint8))


def save_annots(path: str | os.PathLike, annots: dict) -> Path:
    """Write an ``annots.npy`` dict (pickled, ``np.save``) atomically
    (:func:`neuralbody.io.atomic.atomic_write_bytes`)."""
    buffer = io.BytesIO()
    np.save(buffer, annots, allow_pickle=True)
    return atomic_write_bytes(path, buffer.getvalue())


def update_annots(transaction, change: Callable[[dict], None]) -> dict:
    """Read the capture's ``annots.npy`` (as ``transaction`` would leave it), let ``change`` edit the
    dict in place, and stage the result in the :class:`~neuralbody.data.transaction.Transaction`.

    Returns the changed dict. Errors name the file (the capture reader's checks).
    """
    from neuralbody.data.capture import (  # the reader's loader and checks
        ANNOTS,
        _load_annots,
    )

    annots = _load_annots(transaction.current(ANNOTS))
    change(annots)
    save_annots(transaction.stage(ANNOTS), annots)
    return annots


def cameras_to_annots(cameras: list[Camera]) -> dict:
    """ZJU ``cams`` dict: K (3, 3), D (5, 1), R (3, 3), T (3, 1) in millimetres; plus ``colour_gain``
    (3,) per camera when any camera is colour-calibrated (other ZJU-MoCap readers ignore it)."""
    cams = {
        "K": [np.asarray(c.K, dtype=np.float64) for c in cameras],
        "D": [np.asarray(c.D, dtype=np.float64).reshape(5, 1) for c in cameras],
        "R": [np.asarray(c.R, dtype=np.float64) for c in cameras],
        "T": [np.asarray(c.T, dtype=np.float64).reshape(3, 1) * 1000.0 for c in cameras],
    }
    if any(c.has_colour_gain for c in cameras):
        cams["colour_gain"] = [np.asarray(c.colour_gain, dtype=np.float64) for c in cameras]
    return cams


class CaptureWriter:
    """Streams frames of a multi-view capture to disk in ZJU-MoCap layout.

    Usage::

        writer = CaptureWriter(root, cameras, meta)
        for each frame:
            writer.add_frame(images=..., masks=..., depths=..., params=..., vertices=..., faces=...)
        writer.close()   # writes annots.npy and neuralbody.json

    Args:
        root: output folder (created).
        cameras: one :class:`Camera` per view; names become image folders and must be unique.
        meta: JSON-serialisable description written to ``neuralbody.json`` (``num_frames``
            and ``cameras`` names are added by :meth:`close`).
        image_format: "png" (lossless, default) or "jpg" (JPEG at ``jpeg_quality``).
        jpeg_quality: 1-95, for "jpg".
        write_meta: write ``neuralbody.json`` (False: the capture holds only what real
            ZJU-MoCap data holds, and ``meta`` is not written anywhere).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        cameras: list[Camera],
        meta: dict,
        *,
        image_format: str = "png",
        jpeg_quality: int = JPEG_QUALITY,
        write_meta: bool = True,
    ) -> None:
        names = [c.name for c in cameras]
        if not cameras:
            raise ValueError("CaptureWriter: at least one camera is needed")
        if len(set(names)) != len(names) or any(not n or "/" in n for n in names):
            raise ValueError(f"CaptureWriter: camera names must be unique, non-empty, without '/': {names}")
        sizes = {(c.width, c.height) for c in cameras}
        if len(sizes) != 1:
            raise ValueError(f"CaptureWriter: all cameras must share one image size, got {sorted(sizes)}")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"CaptureWriter: image_format must be one of {sorted(IMAGE_FORMATS)}, got {image_format!r}")
        if not 1 <= int(jpeg_quality) <= 95:
            raise ValueError(f"CaptureWriter: jpeg_quality must be in 1..95, got {jpeg_quality}")
        self.image_suffix = IMAGE_FORMATS[image_format]
        self.jpeg_quality = int(jpeg_quality)
        self.write_meta = bool(write_meta)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cameras = list(cameras)
        self.meta = dict(meta)
        self.width, self.height = sizes.pop()
        self._ims: list[dict] = []
        self._closed = False

    @property
    def num_frames(self) -> int:
        return len(self._ims)

    def add_frame(
        self,
        *,
        images: np.ndarray,
        masks: np.ndarray,
        depths: np.ndarray,
        params: dict,
        vertices: np.ndarray,
        faces: np.ndarray,
        gt_mesh: tuple[np.ndarray, np.ndarray] | None = None,
        gt_colours: np.ndarray | None = None,
    ) -> int:
        """Write one frame for every camera; returns its frame index.

        Args:
            images: (C, H, W, 3) uint8 RGB, one per camera.
            masks: (C, H, W) bool person masks.
            depths: (C, H, W) float z-depth in camera coordinates, metres (0 where empty).
            params: dict with ``poses`` (P,), ``Rh`` (3,), ``Th`` (3,) metres, ``shapes`` (S,);
                saved as (1, n) float32 rows like ZJU-MoCap.
            vertices: (V, 3) posed vertices, world, metres.
            faces: (F, 3) triangle indices.
            gt_mesh: the ground-truth surface ``(vertices (N, 3) metres, faces (M, 3))`` for
                ``gt_meshes/`` when it is not ``(vertices, faces)``: a clothed person, or the full
                mesh when ``vertices/`` hold a subset of its vertices; None: the body.
            gt_colours: optional (N, 3) uint8 RGB albedo (unshaded) of the ground-truth surface's
                vertices, saved as ``colours`` beside them.
        """
        if self._closed:
            raise ValueError(f"CaptureWriter({self.root}): add_frame after close()")
        count, height, width = len(self.cameras), self.height, self.width
        images, masks, depths = np.asarray(images), np.asarray(masks), np.asarray(depths)
        for name, value, shape in (
            ("images", images, (count, height, width, 3)),
            ("masks", masks, (count, height, width)),
            ("depths", depths, (count, height, width)),
        ):
            if value.shape != shape:
                raise ValueError(f"CaptureWriter.add_frame: {name} must have shape {shape}, got {value.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"CaptureWriter.add_frame: images must be uint8, got {images.dtype}")
        vertices = np.asarray(vertices, dtype=np.float32)
        faces = np.asarray(faces)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(
                f"CaptureWriter.add_frame: vertices must be (V, 3) and faces (F, 3), got {vertices.shape}, {faces.shape}"
            )
        missing = {"poses", "Rh", "Th", "shapes"} - set(params)
        if missing:
            raise ValueError(f"CaptureWriter.add_frame: params lacks {sorted(missing)}")
        gt_count = len(vertices) if gt_mesh is None else len(gt_mesh[0])
        if gt_colours is not None and (np.shape(gt_colours) != (gt_count, 3) or np.asarray(gt_colours).dtype != np.uint8):
            raise ValueError(f"CaptureWriter.add_frame: gt_colours must be ({gt_count}, 3) uint8, got "
                             f"{np.shape(gt_colours)} {np.asarray(gt_colours).dtype}")

        frame = len(self._ims)
        paths = []
        depth_mm = np.round(np.clip(depths, 0.0, 65.535) * DEPTH_SCALE_MM).astype(np.uint16)
        for view, camera in enumerate(self.cameras):
            rel = image_relpath(camera.name, frame, self.image_suffix)
            paths.append(rel)
            if self.image_suffix == ".png":
                write_png(self.root / rel, images[view])
            else:
                write_jpeg(self.root / rel, images[view], self.jpeg_quality)
            write_png(self.root / mask_relpath(rel), (masks[view] != 0).astype(np.uint8) * 255)
            write_png(self.root / depth_relpath(rel), np.where(masks[view] != 0, depth_mm[view], 0).astype(np.uint16))
        save_npy(
            self.root / "params" / f"{frame}.npy",
            {key: np.asarray(params[key], dtype=np.float32).reshape(1, -1) for key in ("poses", "Rh", "Th", "shapes")},
            allow_pickle=True,
        )
        save_npy(self.root / "vertices" / f"{frame}.npy", vertices)
        gt_vertices, gt_faces = (vertices, faces) if gt_mesh is None else gt_mesh
        extra = {} if gt_colours is None else {"colours": np.asarray(gt_colours)}
        save_npz_reproducible(
            self.root / "gt_meshes" / f"{frame}.npz",
            vertices=np.asarray(gt_vertices, dtype=np.float32),
            faces=np.asarray(gt_faces).astype(np.int32),
            **extra,
        )
        self._ims.append({"ims": paths})
        return frame

    def close(self) -> Path:
        """Write ``annots.npy`` and ``neuralbody.json`` (unless ``write_meta`` is off; atomically); returns the folder."""
        if self._closed:
            return self.root
        if not self._ims:
            raise ValueError(f"CaptureWriter({self.root}): no frames were added")
        annots = {"cams": cameras_to_annots(self.cameras), "ims": self._ims}
        save_annots(self.root / "annots.npy", annots)
        meta = dict(self.meta)
        meta.update(
            num_frames=len(self._ims),
            cameras=[c.name for c in self.cameras],
            image_size=[self.width, self.height],
            mask_dir=MASK_DIR,
            depth={"dir": DEPTH_DIR, "format": "png uint16", "unit": "millimetre", "empty": 0, "kind": "camera z"},
        )
        if self.write_meta:
            atomic_write_text(self.root / "neuralbody.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self._closed = True
        log.info("wrote %d frames x %d views to %s", len(self._ims), len(self.cameras), self.root)
        return self.root
