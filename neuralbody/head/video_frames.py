"""The frames of a face video: a video file (decoded by OpenCV, which the detect extra brings) or a folder of images.

Frames are read in order, as (H, W, 3) uint8 RGB, twice if needed (once to find the face,
once to write the capture) rather than held in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from neuralbody.data.images import read_image
from neuralbody.io.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FIX = "give a video OpenCV can decode (e.g. MP4/H.264) or a folder of PNG/JPEG frames"


class FrameSource:
    """A video file or a folder of images (state: the path and, for a folder, the sorted file list).

    Args:
        path: the video file or the folder.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise InputError(self.path, f"holds no images ({', '.join(IMAGE_SUFFIXES)})", FIX)
            self.count = len(self.files)
        elif self.path.is_file():
            self.files = []
            self.count = _video_frame_count(self.path)
        else:
            raise InputError(self.path, "does not exist", FIX)

    def frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, image)`` for the wanted frame indices, in increasing order."""
        wanted = sorted(set(indices))
        if self.files:
            for index in wanted:
                yield index, read_image(self.files[index], dtype=np.uint8)
            return
        yield from _video_frames(self.path, wanted)


def _open_video(path: Path):
    try:
        import cv2
    except ImportError as error:
        raise InputError(path, f"is a video and reading videos needs OpenCV ({error})",
                         "install the detect extra (pip install 'neuralbody[detect]') or give a folder of frames") from None
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(path, "cannot be opened as a video", FIX)
    return cv2, capture


def _video_frame_count(path: Path) -> int:
    cv2, capture = _open_video(path)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if count <= 0:  # some containers do not say: count by decoding
        count = 0
        while capture.grab():
            count += 1
    capture.release()
    if count == 0:
        raise InputError(path, "has no frames that decode", FIX)
    return count


def _video_frames(path: Path, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    cv2, capture = _open_video(path)
    position, remaining = 0, list(wanted)
    try:
        while remaining:
            if not capture.grab():
                raise InputError(path, f"ends at frame {position}, before frame {remaining[0]}",
                                 "choose --frames within the video")
            if position == remaining[0]:
                ok, bgr = capture.retrieve()
                if not ok:
                    raise InputError(path, f"frame {position} does not decode", FIX)
                yield position, np.ascontiguousarray(bgr[:, :, ::-1])
                remaining.pop(0)
            position += 1
    finally:
        capture.release()
