"""Reading a multi-view capture in ZJU-MoCap layout (the real dataset and our synthetic ones).

On disk (paths relative to the capture folder)::

    annots.npy                 pickled dict: cams {K, D, R, T (millimetres)}, ims [{ims: [paths]}]
    <image paths from annots>  e.g. Camera_B1/000000.jpg or Camera_00/000000.png
    mask_cihp/<same path>.png  person masks, any non-zero value is the person (or mask/)
    params/{n}.npy             dict: poses (1, P), Rh (1, 3), Th (1, 3) metres, shapes (1, S)
    vertices/{n}.npy           (V, 3) posed vertices, world, metres
    neuralbody.json            (ours, optional) extras: held-out cameras, body model, ground truth

API::

    capture = read_capture(root, scale=0.5)   -> Capture (cameras scaled to half resolution)
    capture.cameras                           list[Camera], T in metres, K scaled by ``scale``
    capture.camera_names, capture.frame_ids, capture.num_frames, capture.num_views, capture.meta
    capture.image_path(frame, view)           Path
    capture.mask_path(frame, view)            Path | None
    capture.load_image(frame, view)           (H, W, 3) float32 in [0, 1] at the capture's scale
    capture.load_mask(frame, view)            (H, W) bool at the capture's scale
    capture.load_vertices(frame)              (V, 3) float32, world, metres
    capture.load_params(frame)                dict of arrays, or None without params/
    capture.load_body(frame)                  FrameBody (vertices, Rh, Th as float32 tensors)
    capture.summary()                         CaptureSummary (see :mod:`neuralbody.data.summary`)

How the file formats are read:

* ``annots['cams']``: ``K`` (3, 3) per camera, ``R`` (3, 3) world-to-camera rotation,
  ``T`` (3,) or (3, 1) in millimetres (divided by 1000 here), ``D`` (5,), (5, 1) or (1, 5)
  OpenCV ``k1 k2 p1 p2 k3`` (4 values are accepted, ``k3 = 0``). Lists or stacked arrays.
* ``annots['ims']``: one entry per frame with ``ims``, one image path per camera, in the
  camera order of ``cams``. The frame *index* (0 .. num_frames - 1) is the position in this
  list. A camera's name is its image sub-folder in frame 0 (``Camera_B1``, ``Camera (1)``),
  or the ``cameras`` list of ``neuralbody.json`` when present. Image sizes are read from the
  headers of frame 0's images (ZJU-MoCap: 1024 x 1024).
* Masks: for image ``<dir>/<name>.<ext>`` the first existing of ``mask_cihp/<dir>/<name>.png``,
  ``mask_cihp/<dir>/<name>.<ext>``, ``mask/<dir>/<name>.png``, ``mask/<dir>/<name>.<ext>``
  (a ``mask_dir`` in ``neuralbody.json`` is tried first). Any non-zero value is the person.
* ``params`` / ``vertices`` are named by the frame's *number* ``n = index + offset``.
  Most ZJU-MoCap subjects (377, 386, 387, 390, 392, 393, 394, ...) name them ``0.npy, 1.npy, ...``
  (offset 0) and their images ``Camera_B1/000000.jpg``. Subjects 313 and 315 number them from 1
  (offset 1) and name images ``Camera (1)/CoreView_313_Camera_(1)_0001_2019-08-23_16-08-50.592.jpg``
  with masks under ``mask/``. The offset is detected once per capture: 0 if ``params/0.npy`` or
  ``vertices/0.npy`` exists, else 1 if ``params/1.npy`` or ``vertices/1.npy`` exists, else 0 (no body
  data); ``"frame_offset": n`` in ``neuralbody.json`` overrides the detection.
  ``capture.frame_ids[i]`` is that on-disk number of frame ``i``.
* Without ``params/``, :meth:`Capture.load_body` sets ``Rh = 0`` and ``Th`` = the mean of the
  frame's vertices, so the body frame (``x_world = R(Rh) x_body + Th``) is still defined: an
  unrotated frame centred on the person.

Everything in ``annots.npy`` is validated once by :func:`read_capture`; errors name the file,
what is wrong and how to fix it. Missing images, masks or body files are reported when they
are loaded, with the exact path.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from neuralbody.body.frame_body import FrameBody
from neuralbody.data import images as image_io
from neuralbody.data.cameras import Camera
from neuralbody.data.transaction import recover

log = logging.getLogger(__name__)

ANNOTS = "annots.npy"
META = "neuralbody.json"
MASK_DIRS = ("mask_cihp", "mask")


class Capture:
    """A multi-view capture on disk: calibrated cameras and, per frame, images, masks and body fits.

    Build it with :func:`read_capture`. Frames are indexed ``0 .. num_frames - 1`` in the order
    of ``annots['ims']``; views ``0 .. num_views - 1`` in the order of ``annots['cams']``.

    Attributes:
        root: the capture folder.
        cameras: one :class:`Camera` per view, T in metres, scaled to the capture's ``scale``.
        camera_names: the cameras' names.
        frame_ids: (num_frames,) the on-disk number of each frame (``params/{id}.npy``).
        meta: contents of ``neuralbody.json`` ({} when absent, as for real ZJU-MoCap data).
        scale: image scale relative to the files (0.5: 1024 x 1024 files are read as 512 x 512).
        frame_offset: ``frame_ids[i] - i``.
    """

    def __init__(
        self,
        *,
        root: Path,
        cameras: list[Camera],
        image_relpaths: list[list[str]],
        file_sizes: list[tuple[int, int]],
        frame_offset: int,
        meta: dict,
        scale: float,
    ) -> None:
        self.root = Path(root)
        self.cameras = list(cameras)
        self.camera_names = [camera.name for camera in cameras]
        self._image_relpaths = image_relpaths
        self._file_sizes = file_sizes
        self.frame_offset = int(frame_offset)
        self.frame_ids = [index + self.frame_offset for index in range(len(image_relpaths))]
        self.meta = meta
        self.scale = float(scale)
        self._mask_dirs = tuple(
            dict.fromkeys([*([meta["mask_dir"]] if isinstance(meta.get("mask_dir"), str) else []), *MASK_DIRS])
        )

    def __repr__(self) -> str:
        return f"Capture({str(self.root)!r}, views={self.num_views}, frames={self.num_frames}, scale={self.scale})"

    @property
    def num_frames(self) -> int:
        return len(self._image_relpaths)

    @property
    def num_views(self) -> int:
        return len(self.cameras)

    @property
    def has_params(self) -> bool:
        """Whether frame 0 has a ``params/{id}.npy`` file."""
        return self.params_path(0).is_file()

    @property
    def has_vertices(self) -> bool:
        """Whether frame 0 has a ``vertices/{id}.npy`` file."""
        return self.vertices_path(0).is_file()

    def _check(self, frame: int, view: int | None = None) -> None:
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"{self.root}: frame index {frame} out of range 0..{self.num_frames - 1}")
        if view is not None and not 0 <= view < self.num_views:
            raise IndexError(f"{self.root}: view index {view} out of range 0..{self.num_views - 1}")

    # paths --------------------------------------------------------------------------------
    def image_relpath(self, frame: int, view: int) -> str:
        """The image path as listed in ``annots.npy``, relative to :attr:`root`."""
        self._check(frame, view)
        return self._image_relpaths[frame][view]

    def image_path(self, frame: int, view: int) -> Path:
        return self.root / self.image_relpath(frame, view)

    def mask_candidates(self, frame: int, view: int) -> list[Path]:
        """Where the mask of an image may be, in lookup order (see the module docstring)."""
        relpath = self.image_relpath(frame, view)
        stem = os.path.splitext(relpath)[0]
        variants = list(dict.fromkeys([stem + ".png", relpath]))
        return [self.root / directory / variant for directory in self._mask_dirs for variant in variants]

    def mask_path(self, frame: int, view: int) -> Path | None:
        """The first existing mask file of an image, or None when there is none."""
        for candidate in self.mask_candidates(frame, view):
            if candidate.is_file():
                return candidate
        return None

    def params_path(self, frame: int) -> Path:
        self._check(frame)
        return self.root / "params" / f"{self.frame_ids[frame]}.npy"

    def vertices_path(self, frame: int) -> Path:
        self._check(frame)
        return self.root / "vertices" / f"{self.frame_ids[frame]}.npy"

    # loading ------------------------------------------------------------------------------
    def load_image(self, frame: int, view: int) -> np.ndarray:
        """(H, W, 3) float32 RGB in [0, 1] at the capture's scale (area-averaged when downscaled)."""
        path = self.image_path(frame, view)
        image = image_io.read_image(path)
        self._check_size(path, image.shape, view)
        camera = self.cameras[view]
        return image_io.resize_image(image, (camera.width, camera.height))

    def load_mask(self, frame: int, view: int) -> np.ndarray:
        """(H, W) bool person mask at the capture's scale (nearest-neighbour resize)."""
        path = self.mask_path(frame, view)
        if path is None:
            tried = ", ".join(str(p) for p in self.mask_candidates(frame, view))
            raise FileNotFoundError(f"no mask for frame {frame}, view {view}; looked for: {tried}")
        mask = image_io.read_mask(path)
        self._check_size(path, mask.shape, view)
        camera = self.cameras[view]
        return image_io.resize_mask(mask, (camera.width, camera.height))

    def _check_size(self, path: Path, shape: tuple[int, ...], view: int) -> None:
        width, height = self._file_sizes[view]
        if shape[:2] != (height, width):
            raise ValueError(
                f"{path} is {shape[1]}x{shape[0]} but camera {self.camera_names[view]!r} images are "
                f"{width}x{height} (from frame 0); all frames of a camera must share one size"
            )

    def load_vertices(self, frame: int) -> np.ndarray:
        """(V, 3) float32 posed body vertices of a frame, world coordinates, metres."""
        path = self.vertices_path(frame)
        if not path.is_file():
            raise FileNotFoundError(
                f"body vertices not found: {path} (frame index {frame}, on-disk number {self.frame_ids[frame]})"
            )
        vertices = np.load(path, allow_pickle=False)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.all(np.isfinite(vertices)):
            raise ValueError(f"{path}: vertices must be a finite (V, 3) array in metres, got shape {vertices.shape}")
        return vertices.astype(np.float32)

    def load_params(self, frame: int) -> dict[str, np.ndarray] | None:
        """The frame's body parameters (poses, Rh, Th, shapes, and whatever else is stored), or None."""
        path = self.params_path(frame)
        if not path.is_file():
            return None
        value = np.load(path, allow_pickle=True)
        if value.dtype != object or value.shape != ():
            raise ValueError(
                f"{path}: expected a pickled dict (np.save of a dict), got an array of shape {value.shape}"
            )
        params = {key: np.asarray(item) for key, item in value.item().items()}
        for key in ("Rh", "Th"):
            if key not in params or params[key].size != 3:
                raise ValueError(f"{path}: params must hold {key} with 3 values, got {params.get(key)!r}")
        return params

    def load_body(self, frame: int) -> FrameBody:
        """FrameBody of a frame: vertices (V, 3), Rh (3,) axis-angle, Th (3,) metres, float32 tensors.

        Without params, ``Rh = 0`` and ``Th`` = mean of the vertices (an unrotated body frame
        centred on the person).
        """
        vertices = self.load_vertices(frame)
        params = self.load_params(frame)
        if params is None:
            rh = np.zeros(3, dtype=np.float32)
            th = vertices.mean(axis=0, dtype=np.float64).astype(np.float32)
        else:
            rh = params["Rh"].reshape(3).astype(np.float32)
            th = params["Th"].reshape(3).astype(np.float32)
        return FrameBody(vertices=torch.from_numpy(vertices), Rh=torch.from_numpy(rh), Th=torch.from_numpy(th))

    def summary(self, *, sample_frames: int = 3):
        """A :class:`~neuralbody.data.summary.CaptureSummary` (mask coverage on ``sample_frames`` frames)."""
        from neuralbody.data.summary import summarize_capture

        return summarize_capture(self, sample_frames=sample_frames)


# reading ----------------------------------------------------------------------------------
def _load_annots(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"not a ZJU-MoCap capture folder: {path} not found")
    try:
        try:
            annots = np.load(path, allow_pickle=True)
        except UnicodeDecodeError:  # pickled under Python 2
            annots = np.load(path, allow_pickle=True, encoding="latin1")
        annots = annots.item() if annots.dtype == object and annots.shape == () else annots
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ValueError(
            f"{path}: cannot be read as a pickled dict ({error}); write it with np.save(path, dict)"
        ) from error
    if not isinstance(annots, dict) or "cams" not in annots or "ims" not in annots:
        raise ValueError(
            f"{path}: must be a dict with keys 'cams' and 'ims' (ZJU-MoCap layout), got {type(annots).__name__}"
        )
    return annots


def _camera_arrays(annots: dict, path: Path) -> list[dict[str, np.ndarray]]:
    cams = annots["cams"]
    if not isinstance(cams, dict) or any(key not in cams for key in "KDRT"):
        raise ValueError(f"{path}: annots['cams'] must be a dict with lists 'K', 'D', 'R', 'T' (one entry per camera)")
    counts = {key: len(cams[key]) for key in "KDRT"}
    if len(set(counts.values())) != 1 or counts["K"] == 0:
        raise ValueError(f"{path}: annots['cams'] lists must have one entry per camera, got lengths {counts}")
    expected = {
        "K": ((3, 3),),
        "R": ((3, 3),),
        "T": ((3,), (3, 1), (1, 3)),
        "D": ((5,), (5, 1), (1, 5), (4,), (4, 1), (1, 4)),
    }
    result = []
    for index in range(counts["K"]):
        entry = {}
        for key, shapes in expected.items():
            value = np.asarray(cams[key][index], dtype=np.float64)
            if value.shape not in shapes:
                raise ValueError(
                    f"{path}: annots['cams']['{key}'][{index}] has shape {value.shape}; expected one of {list(shapes)}"
                    + (" (T in millimetres)" if key == "T" else "")
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"{path}: annots['cams']['{key}'][{index}] contains NaN or inf; fix camera {index}'s calibration"
                )
            entry[key] = value
        result.append(entry)
    gains = cams.get("colour_gain")
    if gains is not None:
        if len(gains) != counts["K"]:
            raise ValueError(f"{path}: annots['cams']['colour_gain'] has {len(gains)} entries for {counts['K']} cameras; "
                             "re-run neuralbody calibrate-colour or remove the key")  # fmt: skip
        for entry, gain in zip(result, gains, strict=True):
            entry["colour_gain"] = gain  # checked by Camera
    return result


def _image_lists(annots: dict, path: Path, num_cameras: int) -> list[list[str]]:
    frames = []
    for index, entry in enumerate(annots["ims"]):
        paths = entry.get("ims") if isinstance(entry, dict) else None
        if paths is None:
            raise ValueError(f"{path}: annots['ims'][{index}] must be a dict with an 'ims' list of image paths")
        paths = [str(p) for p in paths]
        if len(paths) != num_cameras:
            raise ValueError(
                f"{path}: frame {index} lists {len(paths)} images but annots['cams'] has {num_cameras} cameras; "
                "every frame needs one image per camera, in camera order"
            )
        frames.append(paths)
    if not frames:
        raise ValueError(f"{path}: annots['ims'] lists no frames")
    return frames


def _read_meta(root: Path) -> dict:
    path = root / META
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); fix or delete the file") from error
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: must hold a JSON object, got {type(meta).__name__}")
    return meta


def _camera_names(image_lists: list[list[str]], meta: dict) -> list[str]:
    count = len(image_lists[0])
    names = meta.get("cameras")
    if isinstance(names, list) and len(names) == count and all(isinstance(n, str) and n for n in names):
        return list(names)
    names = [os.path.dirname(p).replace("\\", "/") for p in image_lists[0]]
    if any(not name for name in names) or len(set(names)) != count:
        return [f"view_{index:02d}" for index in range(count)]
    return names


def _detect_frame_offset(root: Path, meta: dict) -> int:
    if "frame_offset" in meta:
        offset = meta["frame_offset"]
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ValueError(f"{root / META}: 'frame_offset' must be an integer, got {offset!r}")
        return offset
    for offset in (0, 1):
        if any((root / folder / f"{offset}.npy").is_file() for folder in ("params", "vertices")):
            return offset
    return 0


def read_capture(root: str | os.PathLike, *, scale: float = 1.0) -> Capture:
    """Read and validate a capture folder in ZJU-MoCap layout.

    Args:
        root: the capture folder (holding ``annots.npy``).
        scale: image scale (0.5 reads 1024 x 1024 images as 512 x 512, intrinsics scaled by
            :meth:`Camera.scaled`).

    Returns:
        A :class:`Capture`. Raises FileNotFoundError / ValueError naming the file and the fix.
    """
    root = Path(root)
    recover(root)  # a killed writer's transaction: finished or discarded (neuralbody.data.transaction)
    image_io.scaled_size(1, 1, scale)  # validates scale
    annots_path = root / ANNOTS
    annots = _load_annots(annots_path)
    camera_arrays = _camera_arrays(annots, annots_path)
    image_lists = _image_lists(annots, annots_path, len(camera_arrays))
    meta = _read_meta(root)
    names = _camera_names(image_lists, meta)

    file_sizes, cameras = [], []
    for index, (arrays, name) in enumerate(zip(camera_arrays, names, strict=True)):
        first_image = root / image_lists[0][index]
        if not first_image.is_file():
            raise FileNotFoundError(
                f"image not found: {first_image} (listed in {annots_path}, frame 0, camera {index})"
            )
        width, height = image_io.image_size(first_image)
        file_sizes.append((width, height))
        try:
            camera = Camera(
                K=arrays["K"],
                R=arrays["R"],
                T=arrays["T"].reshape(3) / 1000.0,
                D=arrays["D"],
                width=width,
                height=height,
                name=name,
                colour_gain=arrays.get("colour_gain"),
            )
        except ValueError as error:
            raise ValueError(f"{annots_path}: camera {index}: {error}; fix annots['cams'] for this camera") from error
        cameras.append(camera.scaled(scale) if scale != 1.0 else camera)

    offset = _detect_frame_offset(root, meta)
    capture = Capture(
        root=root,
        cameras=cameras,
        image_relpaths=image_lists,
        file_sizes=file_sizes,
        frame_offset=offset,
        meta=meta,
        scale=scale,
    )
    log.debug("read %r (frame offset %d)", capture, offset)
    return capture
