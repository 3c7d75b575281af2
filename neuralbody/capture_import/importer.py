"""Importing synchronised videos (or image folders) and a calibration into ZJU-MoCap layout.

Output (relative to the output folder)::

    annots.npy            cams {K, D, R, T millimetres} of the *written* images, ims [{ims: paths}]
    <camera>/<i>.jpg      frame i (six digits) of each camera (or .png)
    neuralbody.json       source, calibration, offsets, frames, scale, crop, undistortion;
                          "masks": false, "params": false (nothing beyond images and cameras yet)

All of it is written in one transaction (:mod:`neuralbody.data.transaction`): a killed or failed
import leaves the output folder as it was.

Each camera's images go through, in this order (and its :class:`Camera` with them):

1. **Frame selection.** Output frame ``i`` is source frame ``start + i * step + offset[cam]``
   (offsets synchronise cameras that started late or early: ``cam03=1`` means cam03's frame
   ``k + 1`` shows the moment of the other cameras' frame ``k``).
2. **Crop** (optional, source pixels ``x0, y0, x1, y1``, end exclusive): ``cx -= x0``,
   ``cy -= y0``, size ``(x1 - x0, y1 - y0)``.
3. **Downscale** by ``scale`` (area average; :meth:`Camera.scaled`'s pixel-centre rule).
4. **Undistortion** (default on): the image is resampled (bilinear) onto the ideal pinhole
   camera with the same K and size, each output pixel ``u`` reading the source at
   ``K distort(K^-1 u)``, and the camera is written with ``D = 0``. Everything downstream then
   sees straight pinhole rays; pixels whose source lies outside the frame are black (a thin
   border for barrel distortion). With ``undistort=False`` the images are kept as recorded and
   ``D`` is written: :func:`~neuralbody.data.cameras.pixel_rays` and ``project_points`` handle it.

Image sizes: when a video is slightly smaller than the calibrated sensor (e.g. 1080 wide for a
1088-wide calibration: H.264 codes 1080 as 1088 and crops the right columns), the pixel grid
is assumed to start at the same top-left corner and K is kept (a warning says so); a video
larger than the calibration, or more than 2 % smaller, is an error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from neuralbody.capture_import.calibration import (
    detect_format,
    read_calibration,
    write_annots_cameras,
)
from neuralbody.capture_import.video import FrameSource, find_sources
from neuralbody.data.cameras import Camera
from neuralbody.data.images import resize_image, scaled_size
from neuralbody.data.transaction import Transaction, begin
from neuralbody.io.progress import progress_bar

log = logging.getLogger(__name__)

SIZE_TOLERANCE = 0.02  # a video may be this much smaller than the calibrated sensor (codec cropping)


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """What to import and how.

    Attributes:
        start, stop, step: source frame range ``start, start + step, ... < stop`` (stop None: as
            many as every camera has after its offset).
        offsets: ``{camera: frames}`` added to that camera's source frame index.
        scale: image scale (0.5 halves width and height).
        undistort: resample to the ideal pinhole camera and write ``D = 0`` (True) or keep
            the distorted images and ``D`` (False).
        crops: ``{camera: (x0, y0, x1, y1)}`` in source pixels, end exclusive.
        image_format: ``"jpg"`` (quality ``jpeg_quality``) or ``"png"``.
    """

    start: int = 0
    stop: int | None = None
    step: int = 1
    offsets: dict[str, int] = dataclasses.field(default_factory=dict)
    scale: float = 1.0
    undistort: bool = True
    crops: dict[str, tuple[int, int, int, int]] = dataclasses.field(default_factory=dict)
    image_format: str = "jpg"
    jpeg_quality: int = 95


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """An import's outcome: the folder, the written cameras and the source frames of each camera."""

    root: Path
    cameras: list[Camera]
    source_frames: dict[str, list[int]]


# parsing helpers for the CLI --------------------------------------------------------------
def _trailing_number(name: str) -> int | None:
    match = re.search(r"(\d+)\D*$", name)
    return int(match.group(1)) if match else None


def match_cameras(sources: list[FrameSource], cameras: list[Camera], *, calib: Path, src: Path) -> list[Camera]:
    """The calibrated camera of each source, by exact name, else by the number in the names (cam01 ~ 1)."""
    by_name = {camera.name: camera for camera in cameras}
    if all(source.name in by_name for source in sources):
        return [by_name[source.name] for source in sources]
    by_number = {_trailing_number(camera.name): camera for camera in cameras}
    numbers = [_trailing_number(source.name) for source in sources]
    if None not in by_number and len(by_number) == len(cameras) and all(n in by_number for n in numbers):
        if len(set(numbers)) == len(numbers):
            matched = [by_number[n] for n in numbers]
            log.warning("matched videos to calibrated cameras by number: %s",
                        ", ".join(f"{s.name}->{c.name}" for s, c in zip(sources, matched)))
            return matched
    raise ValueError(
        f"camera names in {calib} ({', '.join(c.name for c in cameras)}) do not match the videos/folders in "
        f"{src} ({', '.join(s.name for s in sources)}); rename the files after the calibration's cameras"
    )


def fit_camera_to_source(camera: Camera, source: FrameSource) -> Camera:
    """The camera with the source's image size (see the module docstring for the rule)."""
    width, height = source.size
    if (width, height) == (camera.width, camera.height):
        return camera
    smaller = width <= camera.width and height <= camera.height
    close = width >= camera.width * (1 - SIZE_TOLERANCE) and height >= camera.height * (1 - SIZE_TOLERANCE)
    if not (smaller and close):
        raise ValueError(
            f"{source.path} is {width}x{height} but camera {camera.name!r} is calibrated at "
            f"{camera.width}x{camera.height}; resize the video to the calibrated size or recalibrate"
        )
    log.warning(
        "%s is %dx%d, calibrated %dx%d: assuming the frame is the calibrated sensor cropped at the right/bottom "
        "(codec padding), K kept", source.path.name, width, height, camera.width, camera.height,
    )
    return dataclasses.replace(camera, width=width, height=height)


def crop_camera(camera: Camera, box: tuple[int, int, int, int]) -> Camera:
    """The camera seeing only pixels ``x0 <= u < x1``, ``y0 <= v < y1`` (source pixels)."""
    x0, y0, x1, y1 = box
    if x1 > camera.width or y1 > camera.height:
        raise ValueError(f"crop {box} of camera {camera.name!r} exceeds its {camera.width}x{camera.height} image")
    K = camera.K.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    return dataclasses.replace(camera, K=K, width=x1 - x0, height=y1 - y0)


def undistortion_map(camera: Camera) -> np.ndarray:
    """(2, H, W) source ``(row, col)`` of every pixel of the ideal pinhole image: ``K distort(K^-1 u)``."""
    from neuralbody.data.cameras import project_points

    v, u = np.meshgrid(np.arange(camera.height, dtype=np.float64), np.arange(camera.width, dtype=np.float64),
                       indexing="ij")
    K = camera.K
    y = (v.ravel() - K[1, 2]) / K[1, 1]
    x = (u.ravel() - K[0, 2] - K[0, 1] * y) / K[0, 0]
    at_origin = dataclasses.replace(camera, R=np.eye(3), T=np.zeros(3))
    uv, _ = project_points(at_origin, np.stack([x, y, np.ones_like(x)], axis=1))
    return np.stack([uv[:, 1].reshape(v.shape), uv[:, 0].reshape(v.shape)])


def _remap(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a uint8 (H, W, 3) image at ``coords`` (2, H', W'); black outside."""
    from scipy.ndimage import map_coordinates

    planes = [map_coordinates(image[..., c].astype(np.float32), coords, order=1, mode="constant", cval=0.0)
              for c in range(image.shape[2])]
    return np.clip(np.round(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def _frame_range(sources: list[FrameSource], config: ImportConfig) -> list[int]:
    offsets = [config.offsets.get(source.name, 0) for source in sources]
    for source, offset in zip(sources, offsets):
        if config.start + offset < 0:
            raise ValueError(f"{source.path}: offset {offset} puts frame {config.start} before the video's start")
    available = min(source.num_frames - offset for source, offset in zip(sources, offsets))
    if config.stop is None and len({s.num_frames - o for s, o in zip(sources, offsets)}) > 1:
        log.warning("cameras hold different frame counts (%s); importing the %d frames they all have",
                    ", ".join(f"{s.name}: {s.num_frames}" for s in sources), available - config.start)
    stop = available if config.stop is None else config.stop
    if stop > available:
        counts = ", ".join(f"{s.name}: {s.num_frames} (offset {o})" for s, o in zip(sources, offsets))
        raise ValueError(f"frame range {config.start}:{stop} exceeds what every camera has ({counts}); lower the stop")
    frames = list(range(config.start, stop, config.step))
    if not frames:
        raise ValueError(f"frame range {config.start}:{stop}:{config.step} selects no frames")
    return frames


def import_capture(
    src: str | os.PathLike, calib: str | os.PathLike, out: str | os.PathLike, config: ImportConfig | None = None
) -> ImportResult:
    """Import the videos / image folders in ``src`` with calibration ``calib`` into ``out`` (ZJU-MoCap layout).

    Everything is written in one transaction on ``out`` (:mod:`neuralbody.data.transaction`; the
    folder is made): an import killed or failing part-way leaves ``out`` as it was, and running it
    again starts afresh. Files of ``out`` the import does not write (e.g. masks of an earlier
    import) are left as they are.

    Args:
        src: folder of videos (``cam01.mp4``) or of per-camera image folders (``cam01/*.jpg``);
            a ``videos/`` or ``images/`` sub-folder is used when ``src`` holds neither.
        calib: calibration file or folder (see :func:`~neuralbody.capture_import.calibration.read_calibration`).
        out: output folder.
        config: what to import (default: every common frame, scale 1, undistorted, JPEG).
    """
    config = ImportConfig() if config is None else config
    src, calib, out = Path(src), Path(calib), Path(out)
    if config.image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {config.image_format!r}")
    sources = find_sources(src)
    unknown = sorted((set(config.offsets) | set(config.crops)) - {source.name for source in sources})
    if unknown:
        raise ValueError(f"offsets/crops name unknown cameras {unknown}; cameras in {src}: {[s.name for s in sources]}")
    sizes = {source.name: source.size for source in sources}
    calibrated = read_calibration(calib, image_sizes=sizes)
    matched = match_cameras(sources, calibrated, calib=calib, src=src)
    cameras_in = [fit_camera_to_source(camera, source) for camera, source in zip(matched, sources)]
    frames = _frame_range(sources, config)
    log.info("importing %d frames x %d cameras from %s (calibration %s) into %s",
             len(frames), len(sources), src, calib, out)

    out.mkdir(parents=True, exist_ok=True)
    cameras_out: list[Camera] = []
    relpaths = [[""] * len(sources) for _ in frames]
    source_frames: dict[str, list[int]] = {}
    progress = progress_bar(total=len(frames) * len(sources), desc="import", unit="image", disable=None)
    with begin(out, "import") as transaction:
        for view, (source, camera) in enumerate(zip(sources, cameras_in)):
            camera_written, wanted, written = import_camera(transaction, source, camera, frames, config, progress)
            cameras_out.append(camera_written)
            source_frames[source.name] = wanted
            for index, rel in enumerate(written):
                relpaths[index][view] = rel
        progress.close()
        write_annots_cameras(cameras_out, transaction.stage("annots.npy"), relpaths)
        meta = _import_meta(src, calib, sources, source_frames, frames, config, cameras_out)
        transaction.write_text("neuralbody.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("wrote %d frames x %d cameras to %s", len(frames), len(sources), out)
    return ImportResult(root=out, cameras=cameras_out, source_frames=source_frames)


def import_camera(transaction: Transaction, source: FrameSource, camera: Camera, frames: list[int],
                  config: ImportConfig, progress=None) -> tuple[Camera, list[int], list[str]]:  # fmt: skip
    """Stage one camera's images of output ``frames`` (crop, scale, undistort: see the module docstring).

    Returns the camera as written, the source frame of each output frame and the image paths.
    """
    box = config.crops.get(source.name)
    camera = crop_camera(camera, box) if box else camera
    camera = dataclasses.replace(camera, name=source.name)
    if config.scale != 1.0:
        scaled_size(camera.width, camera.height, config.scale)  # validates the scale
        camera = camera.scaled(config.scale)
    coords = undistortion_map(camera) if (config.undistort and camera.has_distortion) else None
    offset = config.offsets.get(source.name, 0)
    wanted = [frame + offset for frame in frames]
    written = []
    for index, (_, image) in enumerate(source.frames(wanted)):
        if image.shape[:2] != (source.size[1], source.size[0]):
            raise ValueError(f"{source.path}: frame {wanted[index]} is {image.shape[1]}x{image.shape[0]}, "
                             f"the first was {source.size[0]}x{source.size[1]}")
        if box:
            image = image[box[1] : box[3], box[0] : box[2]]
        if config.scale != 1.0:
            image = resize_image(image.astype(np.float32), (camera.width, camera.height))
            image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        if coords is not None:
            image = _remap(image, coords)
        rel = f"{source.name}/{index:06d}.{config.image_format}"
        _write_image(transaction.stage(rel), image, config)
        written.append(rel)
        if progress is not None:
            progress.update(1)
    return (camera.undistorted() if config.undistort else camera), wanted, written


def _import_meta(src: Path, calib: Path, sources, source_frames, frames, config: ImportConfig, cameras) -> dict:
    """The ``neuralbody.json`` of an import."""
    return {
        "source": {"path": str(src.resolve()), "files": [str(s.path.name) for s in sources],
                   "kind": "video" if sources[0].is_video else "images",
                   "source_frames": {k: [v[0], v[-1]] for k, v in source_frames.items()}},
        "calibration": {"path": str(calib.resolve()), "format": detect_format(calib)},
        "import": {"start": config.start, "stop": frames[-1] + 1, "step": config.step, "offsets": dict(config.offsets),
                   "scale": config.scale, "undistorted": bool(config.undistort),
                   "crops": {k: list(v) for k, v in config.crops.items()}},
        "masks": False,
        "params": False,
        "cameras": [c.name for c in cameras],
        "num_frames": len(frames),
    }  # fmt: skip


def _write_image(path: Path, image: np.ndarray, config: ImportConfig) -> None:
    if config.image_format == "jpg":
        Image.fromarray(image).save(path, format="JPEG", quality=config.jpeg_quality)
    else:
        Image.fromarray(image).save(path, format="PNG")
