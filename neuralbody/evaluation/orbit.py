"""Orbit camera paths around the person, and writing image sequences as GIF / MP4.

The capture's cameras define the ring: the world "up" direction is the mean of the cameras'
image-up axes (``-R[1, :]``, OpenCV y points down), the orbit's radius is the mean distance of
the camera centres from the vertical axis through the target and its height (along up) is
the cameras' mean height relative to the target. Orbit camera ``i`` of ``N`` sits at azimuth
``phi_0 + 2 pi i / N`` (``phi_0``: the reference camera's azimuth, so the orbit starts at it)
and looks at the target with the world-to-camera rotation
:func:`neuralbody.geometry.rotations.look_at_rotation` (OpenCV axes; rows right, down,
forward) and ``T = -R c`` (metres). Intrinsics: the reference camera's focal lengths with
the principal point moved to the image centre and no lens distortion, so the target projects
to the image centre in every orbit frame.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np

from neuralbody.data.cameras import Camera
from neuralbody.geometry.rotations import look_at_rotation

log = logging.getLogger(__name__)


def estimate_up(cameras: list[Camera]) -> np.ndarray:
    """(3,) unit world up direction: the normalised mean of the cameras' image-up axes ``-R[1, :]``."""
    if not cameras:
        raise ValueError("estimate_up needs at least one camera")
    up = -np.mean([camera.R[1] for camera in cameras], axis=0)
    norm = np.linalg.norm(up)
    if norm < 1e-6:
        raise ValueError("the cameras' up axes cancel out; cannot tell which way is up (pass up= explicitly)")
    return up / norm


def look_at_camera(
    *, center: np.ndarray, target: np.ndarray, up: np.ndarray, K: np.ndarray, width: int, height: int, name: str = ""
) -> Camera:
    """A distortion-free camera at ``center`` (3,) metres looking at ``target`` (3,) metres, image up ~ ``up`` (3,).

    The rotation is :func:`neuralbody.geometry.rotations.look_at_rotation`; ``K`` (3, 3) pixels.
    """
    R = look_at_rotation(center, target, up)
    return Camera(K=K, R=R, T=-R @ np.asarray(center, dtype=np.float64), D=np.zeros(5), width=width, height=height, name=name)


@dataclasses.dataclass
class OrbitPath:
    """An orbit: the cameras, and the ring they lie on (world, metres)."""

    cameras: list[Camera]
    target: np.ndarray
    up: np.ndarray
    radius: float
    height: float


def orbit_cameras(
    cameras: list[Camera],
    target: np.ndarray,
    *,
    num_steps: int,
    reference: int = 0,
    radius: float | None = None,
    height: float | None = None,
    up: np.ndarray | None = None,
) -> OrbitPath:
    """``num_steps`` cameras on a circle around ``target`` (3,) world metres (see the module docstring).

    Args:
        cameras: the capture's cameras (ring geometry, up direction, reference intrinsics).
        target: the point looked at, e.g. the body's centre, metres.
        num_steps: number of orbit cameras (one full turn).
        reference: index of the camera whose intrinsics, image size, azimuth and colour gain are used.
        radius: override of the ring radius, metres.
        height: override of the height above the target along up, metres.
        up: override of the world up direction.
    """
    if num_steps < 1:
        raise ValueError(f"orbit needs num_steps >= 1, got {num_steps}")
    if not 0 <= reference < len(cameras):
        raise ValueError(f"reference camera {reference} out of range 0..{len(cameras) - 1}")
    target = np.asarray(target, dtype=np.float64).reshape(3)
    up = estimate_up(cameras) if up is None else np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    offsets = np.stack([camera.center for camera in cameras]) - target
    heights = offsets @ up
    horizontal = offsets - heights[:, None] * up
    ring_radius = float(np.mean(np.linalg.norm(horizontal, axis=1))) if radius is None else float(radius)
    ring_height = float(np.mean(heights)) if height is None else float(height)
    if ring_radius <= 1e-6:
        raise ValueError("orbit radius is zero: the cameras sit on the vertical axis through the target; pass radius=")
    first = horizontal[reference]
    if np.linalg.norm(first) < 1e-9:
        first = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 1.0, 0.0])
    e1 = first / np.linalg.norm(first)
    e2 = np.cross(up, e1)
    ref = cameras[reference]
    K = ref.K.copy()
    K[0, 1] = 0.0
    K[0, 2] = (ref.width - 1) / 2.0
    K[1, 2] = (ref.height - 1) / 2.0
    path = []
    for step in range(num_steps):
        phi = 2.0 * math.pi * step / num_steps
        center = target + ring_radius * (math.cos(phi) * e1 + math.sin(phi) * e2) + ring_height * up
        camera = look_at_camera(center=center, target=target, up=up, K=K, width=ref.width, height=ref.height, name=f"orbit_{step:03d}")
        path.append(dataclasses.replace(camera, colour_gain=ref.colour_gain))  # seen in the reference camera's colours
    return OrbitPath(cameras=path, target=target, up=up, radius=ring_radius, height=ring_height)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(np.round(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_gif(frames: list[np.ndarray], path: str | Path, *, fps: float = 15.0) -> Path:
    """Animated GIF (looping) from (H, W, 3) uint8 or float [0, 1] frames; no ffmpeg needed."""
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("write_gif: no frames")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [frame if frame.dtype == np.uint8 else to_uint8(frame) for frame in frames]
    imageio.mimsave(path, images, format="GIF", duration=1.0 / fps, loop=0)
    return path


def mp4_available() -> bool:
    """Whether imageio can write MP4 (needs the ``imageio-ffmpeg`` package)."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def write_mp4(frames: list[np.ndarray], path: str | Path, *, fps: float = 15.0) -> Path | None:
    """MP4 (H.264) from frames when imageio-ffmpeg is installed; otherwise log one notice and return None.

    Frame sides are padded to even numbers (H.264 needs them).
    """
    if not mp4_available():
        log.info("MP4 skipped: `pip install imageio-ffmpeg` to get MP4 as well as GIF")
        return None
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = []
    for frame in frames:
        image = frame if frame.dtype == np.uint8 else to_uint8(frame)
        pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
        images.append(np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge"))
    imageio.mimsave(path, images, fps=fps, macro_block_size=1)
    return path
