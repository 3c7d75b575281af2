"""Image and mask I/O and resizing.

Conventions: colour images are (H, W, 3) RGB, either uint8 or float32 in [0, 1]; masks are
(H, W) bool (any non-zero value on disk is the person, in any channel). Sizes are given as
``(width, height)`` like PIL. Resizing follows the pixel-centre convention of
:meth:`neuralbody.data.cameras.Camera.scaled`: pixel ``u`` of the source covers
``[u - 0.5, u + 0.5]`` and the image's outer edges stay where they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import contextlib
from collections.abc import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuralbody.io.errors import InputError, one_line

IMAGE_FIX = "replace the file (copy or export it again); `neuralbody check DATA` lists every damaged file"
# What PIL raises for empty, foreign, truncated or corrupt files (FileNotFoundError is checked before).
DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError)


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn PIL's decoding failures inside the block into an :class:`InputError` naming ``path``."""
    try:
        yield
    except UnidentifiedImageError:
        raise InputError(path, "not an image file PIL can read (empty, or not PNG / JPEG data)", IMAGE_FIX) from None
    except DECODE_ERRORS as error:
        detail = one_line(error) or type(error).__name__
        raise InputError(path, f"cannot decode the image ({detail})", IMAGE_FIX) from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    with _decoding(path), Image.open(path) as image:
        return image.size


def read_image(path: str | os.PathLike, *, dtype: type = np.float32) -> np.ndarray:
    """(H, W, 3) RGB image: uint8, or float32 in [0, 1] (``dtype=np.float32``, the default).

    Grey-level and RGBA files are converted to RGB (alpha dropped). A file that does not
    decode completely raises :class:`InputError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path} (check the path listed in annots.npy)")
    with _decoding(path), Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    if np.dtype(dtype) == np.uint8:
        return rgb.copy()
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"read_image: dtype must be uint8, float32 or float64, got {dtype}")
    return rgb.astype(dtype) / 255.0


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """(H, W) bool mask: True where any channel of the file is non-zero (InputError when it does not decode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    with _decoding(path), Image.open(path) as image:
        values = np.asarray(image)
    if values.ndim == 3:
        return np.any(values != 0, axis=2)
    return values != 0


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write (H, W) / (H, W, 3) as PNG, creating folders.

    uint8 is written as is; bool as 0 / 255; float in [0, 1] is scaled to 0..255 and rounded.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"write_png({path}): array must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValueError(f"write_png({path}): dtype must be uint8, bool or float, got {array.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``(round(width * scale), round(height * scale))``, as :meth:`Camera.scaled` computes it."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W, C) or (H, W) image to ``size = (width, height)``.

    Downscaling averages the source area under each output pixel (box filter: an exact block
    mean for integer factors, so 1024 -> 512 is the mean of 2 x 2 blocks); upscaling is
    bilinear. Computed in float32 per channel; the dtype of float input is kept.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"resize_image: image must be float (H, W) or (H, W, C), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    new_width, new_height = size
    if (new_width, new_height) == (width, height):
        return image.copy()
    if width % new_width == 0 and height % new_height == 0:  # exact block mean
        fy, fx = height // new_height, width // new_width
        blocks = image.reshape(new_height, fy, new_width, fx, *image.shape[2:])
        return blocks.mean(axis=(1, 3), dtype=np.float64).astype(image.dtype)
    downscale = new_width < width or new_height < height
    method = Image.Resampling.BOX if downscale else Image.Resampling.BILINEAR
    planes = image[..., None] if image.ndim == 2 else image
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32), mode="F").resize(
                (new_width, new_height), method
            )
        )
        for c in range(planes.shape[2])
    ]
    out = np.stack(channels, axis=-1)
    return (out[..., 0] if image.ndim == 2 else out).astype(image.dtype)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) bool mask to ``size = (width, height)`` by nearest neighbour.

    Output pixel ``u'`` takes the source pixel whose centre is nearest to
    ``(u' + 0.5) * W / W' - 0.5`` (ties round up, matching PIL's NEAREST).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"resize_mask: mask must be (H, W), got {mask.shape}")
    height, width = mask.shape
    new_width, new_height = size
    if (new_width, new_height) == (width, height):
        return mask.astype(bool)
    cols = np.clip(np.floor((np.arange(new_width) + 0.5) * width / new_width).astype(int), 0, width - 1)
    rows = np.clip(np.floor((np.arange(new_height) + 0.5) * height / new_height).astype(int), 0, height - 1)
    return mask.astype(bool)[rows[:, None], cols[None, :]]
