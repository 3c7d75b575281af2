"""Frame sources: a video file (read with imageio's ffmpeg plugin) or a folder of images.

A source has a ``name`` (the video's stem or the folder's name, matched against the
calibration's camera names), a frame count, a size ``(width, height)`` in pixels, and yields
frames as (H, W, 3) uint8 RGB by index. Videos are decoded sequentially once (seeking in
compressed video is slow and not frame-exact), so ask for increasing indices.

Video reading needs the ``imageio-ffmpeg`` package (it ships an ffmpeg binary in its wheel).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


@dataclasses.dataclass(frozen=True)
class FrameSource:
    """One camera's frames: a video file or an image folder.

    Attributes:
        name: camera name (video stem or folder name).
        path: the video file or the folder.
        num_frames: frames available.
        size: ``(width, height)`` in pixels.
        image_files: the folder's images in natural order (empty for a video).
    """

    name: str
    path: Path
    num_frames: int
    size: tuple[int, int]
    image_files: tuple[Path, ...] = ()

    @property
    def is_video(self) -> bool:
        return not self.image_files

    def frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, (H, W, 3) uint8 RGB)`` for the given increasing frame indices."""
        if any(b <= a for a, b in zip(indices, indices[1:])):
            raise ValueError(f"{self.path}: frame indices must increase, got {indices[:5]}...")
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise ValueError(f"{self.path}: frames {bad[:5]} out of range 0..{self.num_frames - 1}")
        if not indices:
            return
        if not self.is_video:
            for index in indices:
                with Image.open(self.image_files[index]) as image:
                    yield index, np.asarray(image.convert("RGB"))
            return
        wanted = iter(indices)
        target = next(wanted)
        for index, frame in enumerate(_iter_video(self.path)):
            if index == target:
                yield index, _rgb(frame, self.path)
                target = next(wanted, None)
                if target is None:
                    return
        raise ValueError(f"{self.path}: video ended before frame {target} (decoded {index + 1} frames)")


def _rgb(frame: np.ndarray, path: Path) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
        raise ValueError(f"{path}: unexpected frame of shape {frame.shape} and dtype {frame.dtype}")
    return np.ascontiguousarray(frame[..., :3])


def _iter_video(path: Path) -> Iterator[np.ndarray]:
    import imageio.v3 as iio

    try:
        yield from iio.imiter(path, plugin="FFMPEG")
    except ImportError as error:
        raise ImportError(
            f"reading {path} needs imageio-ffmpeg: pip install imageio-ffmpeg ({error})"
        ) from error


def _video_source(path: Path) -> FrameSource:
    try:
        import imageio_ffmpeg
    except ImportError as error:
        raise ImportError(f"reading {path} needs imageio-ffmpeg: pip install imageio-ffmpeg") from error
    try:
        num_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
    except (RuntimeError, OSError, StopIteration) as error:
        raise ValueError(f"{path}: cannot read this video with ffmpeg ({error})") from error
    width, height = (int(v) for v in meta["size"])  # after ffmpeg applied any rotation metadata
    if num_frames <= 0:
        raise ValueError(f"{path}: the video holds no frames")
    return FrameSource(name=path.stem, path=path, num_frames=int(num_frames), size=(width, height))


def _folder_source(path: Path) -> FrameSource:
    images = (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = tuple(sorted(images, key=lambda p: _natural_key(p.name)))
    if not files:
        raise ValueError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this camera folder")
    with Image.open(files[0]) as image:
        size = image.size
    return FrameSource(name=path.name, path=path, num_frames=len(files), size=size, image_files=files)


def open_source(path: str | os.PathLike) -> FrameSource:
    """A :class:`FrameSource` for a video file or an image folder."""
    path = Path(path)
    if path.is_dir():
        return _folder_source(path)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return _video_source(path)
    raise ValueError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of images")


def find_sources(root: str | os.PathLike) -> list[FrameSource]:
    """The cameras of a capture folder: its videos, else its sub-folders of images, in natural order.

    ``root/cam01.mp4, root/cam02.mp4, ...`` or ``root/cam01/000000.jpg, ...``. A ``videos/`` or
    ``images/`` sub-folder is looked into when ``root`` holds neither directly.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"capture source not found or not a folder: {root}")
    for folder in (root, root / "videos", root / "images"):
        if not folder.is_dir():
            continue
        videos = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES),
                        key=lambda p: _natural_key(p.name))
        if videos:
            return [open_source(p) for p in videos]
        folders = sorted(
            (p for p in folder.iterdir()
             if p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir())),
            key=lambda p: _natural_key(p.name),
        )
        if folders:
            return [open_source(p) for p in folders]
    raise ValueError(
        f"{root}: no videos ({', '.join(VIDEO_SUFFIXES)}) and no per-camera image folders found "
        "(expected SRC/<camera>.mp4 or SRC/<camera>/<frame>.jpg)"
    )
