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
    capture.load_body(frame)                  FrameBody (vertices, Rh, Th as float32 tensors; the body
                                              model's poses and shapes too when params/ has them)
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

Capture files are untrusted: ``annots.npy`` and ``params/*.npy`` are unpickled by
:func:`neuralbody.io.safe_load.load_npy_object` (numpy arrays, dicts, lists and scalars only,
nothing that runs code), image paths and ``mask_dir`` must stay inside the capture folder
(relative, no ``..`` climbing out), and damaged files raise :class:`~neuralbody.io.errors.InputError`
naming the file. :mod:`neuralbody.data.checks` reads a whole capture and lists every problem.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from neuralbody.body.frame_body import BodyPose, FrameBody
from neuralbody.data import images as image_io
from neuralbody.data.cameras import Camera
from neuralbody.data.transaction import recover
from neuralbody.io.errors import InputError, Problem
from neuralbody.io.paths import contained_relpath
from neuralbody.io.safe_load import load_npy, load_npy_object

log = logging.getLogger(__name__)

ANNOTS = "annots.npy"
META = "neuralbody.json"
MASK_DIRS = ("mask_cihp", "mask")
BODY_FIX = "fit the body again (`neuralbody fit`) or replace the file"
CHECK_HINT = "`neuralbody check DATA` lists every problem"
PARAMS_KEYS = ("Rh", "Th")  # what is read; ZJU-MoCap files also hold poses and shapes
INSIDE_FIX = "list paths relative to the capture folder, without '..' (a capture must not reach files elsewhere)"


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
            problem = f"is {shape[1]}x{shape[0]} but camera {self.camera_names[view]!r} images are {width}x{height}"
            raise InputError(path, problem + " (from frame 0)", "all frames of a camera must share one size")

    def load_vertices(self, frame: int) -> np.ndarray:
        """(V, 3) float32 posed body vertices of a frame, world coordinates, metres."""
        path = self.vertices_path(frame)
        if not path.is_file():
            raise FileNotFoundError(
                f"body vertices not found: {path} (frame index {frame}, on-disk number {self.frame_ids[frame]})"
            )
        vertices = load_npy(path)
        if vertices.dtype.kind not in "fiu" or vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
            raise InputError(path, f"vertices must be a (V, 3) array of numbers (metres), got {vertices.dtype} "
                             f"of shape {vertices.shape}", BODY_FIX)  # fmt: skip
        bad = ~np.isfinite(vertices).all(axis=1)
        if bad.any():
            kind = "NaN" if np.isnan(vertices).any() else "inf"
            raise InputError(path, f"vertices contain {kind} ({int(bad.sum())} of {len(vertices)} vertices)", BODY_FIX)
        return vertices.astype(np.float32)

    def load_params(self, frame: int) -> dict[str, np.ndarray] | None:
        """The frame's body parameters (poses, Rh, Th, shapes, and whatever else is stored), or None."""
        path = self.params_path(frame)
        if not path.is_file():
            return None
        value = load_npy_object(path)
        if not isinstance(value, dict):
            shape = getattr(value, "shape", None)
            raise InputError(path, f"expected a pickled dict (np.save of a dict), got {type(value).__name__}"
                             + (f" of shape {shape}" if shape is not None else ""), BODY_FIX)  # fmt: skip
        missing = [key for key in PARAMS_KEYS if key not in value]
        if missing:
            found = ", ".join(map(str, value)) or "none"
            fix = "write Rh (1, 3) axis-angle and Th (1, 3) metres, as ZJU-MoCap does; " + BODY_FIX
            raise InputError(path, f"params lack {', '.join(missing)} (keys found: {found})", fix)
        params = {}
        for key, item in value.items():
            try:
                params[key] = np.asarray(item)  # dtypes as stored
            except ValueError:  # ragged lists
                raise InputError(path, f"params[{key!r}] is not an array", BODY_FIX) from None
        for key in PARAMS_KEYS:
            if params[key].dtype.kind not in "fiu" or params[key].size != 3 or not np.all(np.isfinite(params[key])):
                got = params[key].ravel().tolist()[:6]
                raise InputError(path, f"params[{key!r}] must be 3 finite numbers, got {got}", BODY_FIX)
        return params

    def load_body(self, frame: int) -> FrameBody:
        """FrameBody of a frame: vertices (V, 3), Rh (3,) axis-angle, Th (3,) metres, float32 tensors.

        Without params, ``Rh = 0`` and ``Th`` = mean of the vertices (an unrotated body frame
        centred on the person), and no pose; with params, the body-model pose
        (:func:`body_pose`: no body model is loaded, the arrays are only read).
        """
        vertices = self.load_vertices(frame)
        params = self.load_params(frame)
        pose = None
        if params is None:
            rh = np.zeros(3, dtype=np.float32)
            th = vertices.mean(axis=0, dtype=np.float64).astype(np.float32)
        else:
            rh = params["Rh"].reshape(3).astype(np.float32)
            th = params["Th"].reshape(3).astype(np.float32)
            pose = body_pose(params, self.meta)
        return FrameBody(vertices=torch.from_numpy(vertices), Rh=torch.from_numpy(rh), Th=torch.from_numpy(th),
                         pose=pose)

    def summary(self, *, sample_frames: int = 3):
        """A :class:`~neuralbody.data.summary.CaptureSummary` (mask coverage on ``sample_frames`` frames)."""
        from neuralbody.data.summary import summarize_capture

        return summarize_capture(self, sample_frames=sample_frames)


def body_pose(params: dict[str, np.ndarray], meta: dict) -> BodyPose | None:
    """The body-model pose of a frame's params (:meth:`Capture.load_body`), or None without usable poses.

    ``poses`` (any shape, P numbers, radians) and, when present, ``shapes`` become float32
    tensors; the body model is ``neuralbody.json``'s ``body_model``, else SMPL for 72 pose
    values (ZJU-MoCap), else Anny. Poses that are not finite numbers give None: models that
    need them say so; the others do not look.
    """
    poses = params.get("poses")
    if poses is None or poses.dtype.kind not in "fiu" or poses.size == 0 or not np.all(np.isfinite(poses)):
        return None
    shapes = params.get("shapes")
    if shapes is not None and (shapes.dtype.kind not in "fiu" or not np.all(np.isfinite(shapes))):
        shapes = None
    meta = meta or {}
    name = meta.get("body_model") if isinstance(meta.get("body_model"), str) else None
    name = name or ("smpl" if poses.size == 72 else "anny")
    return BodyPose(
        model=name.lower(),
        poses=torch.from_numpy(poses.reshape(-1).astype(np.float32)),
        shapes=None if shapes is None else torch.from_numpy(shapes.reshape(-1).astype(np.float32)),
    )


# reading ----------------------------------------------------------------------------------
def _load_annots(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"not a ZJU-MoCap capture folder: {path} not found")
    annots = load_npy_object(path)  # InputError naming the file when damaged or refused
    if not isinstance(annots, dict) or "cams" not in annots or "ims" not in annots:
        problem = f"must be a dict with keys 'cams' and 'ims' (ZJU-MoCap layout), got {type(annots).__name__}"
        raise InputError(path, problem, "write it with np.save(path, dict)")
    return annots


def _camera_arrays(annots: dict, path: Path, problems: list[Problem] | None = None) -> list[dict | None]:
    """Per camera its K, D, R, T (and colour_gain) arrays.

    With a ``problems`` list, a camera with a problem is None and its problems are added
    there; without one, the first problem raises :class:`InputError`.
    """
    if problems is None:
        found: list[Problem] = []
        result = _camera_arrays(annots, path, found)
        if found:
            raise InputError.from_problems(found, more=CHECK_HINT)
        return result
    cams = annots["cams"]
    if not isinstance(cams, dict) or any(key not in cams for key in "KDRT"):
        raise InputError(path, "annots['cams'] must be a dict with lists 'K', 'D', 'R', 'T' (one entry per camera)",
                         "write the calibration in ZJU-MoCap layout")  # fmt: skip
    if any(isinstance(cams[key], (str, bytes)) or not hasattr(cams[key], "__len__") for key in "KDRT"):
        problem = "annots['cams'] 'K', 'D', 'R', 'T' must be lists or stacked arrays"
        raise InputError(path, problem, "write one entry per camera")
    counts = {key: len(cams[key]) for key in "KDRT"}
    if len(set(counts.values())) != 1 or counts["K"] == 0:
        raise InputError(path, f"annots['cams'] lists must have one entry per camera, got lengths {counts}",
                         "give every camera its K, D, R and T")  # fmt: skip
    expected = {
        "K": ((3, 3),),
        "R": ((3, 3),),
        "T": ((3,), (3, 1), (1, 3)),
        "D": ((5,), (5, 1), (1, 5), (4,), (4, 1), (1, 4)),
    }
    gains = cams.get("colour_gain")
    if gains is not None and len(gains) != counts["K"]:
        raise InputError(path, f"annots['cams']['colour_gain'] has {len(gains)} entries for {counts['K']} cameras",
                         "re-run neuralbody calibrate-colour or remove the key")  # fmt: skip
    result = []
    for index in range(counts["K"]):
        entry, before, fix = {}, len(problems), f"fix camera {index}'s calibration"
        for key, shapes in expected.items():
            name = f"annots['cams']['{key}'][{index}]"
            try:
                value = np.asarray(cams[key][index], dtype=np.float64)
            except (TypeError, ValueError):
                problems.append(Problem(str(path), f"{name} is not numeric", fix))
                continue
            if value.shape not in shapes:
                units = " (T in millimetres)" if key == "T" else ""
                problem = f"{name} has shape {value.shape}; expected one of {list(shapes)}{units}"
                problems.append(Problem(str(path), problem, fix))
            elif not np.all(np.isfinite(value)):
                problems.append(Problem(str(path), f"{name} contains NaN or inf", fix))
            entry[key] = value
        if gains is not None:
            entry["colour_gain"] = gains[index]  # checked by Camera
        result.append(entry if len(problems) == before else None)
    return result


def _image_lists(annots: dict, path: Path, num_cameras: int, problems: list[Problem] | None = None) -> list[list[str]]:
    """Per frame the image paths (relative to the capture, one per camera, staying inside it).

    Problems are added to ``problems`` when given, else the first raises :class:`InputError`.
    """
    if problems is None:
        found: list[Problem] = []
        frames = _image_lists(annots, path, num_cameras, found)
        if found:
            raise InputError.from_problems(found, more=CHECK_HINT)
        return frames
    entries = annots["ims"]
    if isinstance(entries, (str, bytes, dict)) or not hasattr(entries, "__len__") or len(entries) == 0:
        raise InputError(path, "annots['ims'] lists no frames", "list one {'ims': [paths]} entry per frame")
    frames = []
    for index, entry in enumerate(entries):
        paths = entry.get("ims") if isinstance(entry, dict) else None
        if paths is None or isinstance(paths, (str, bytes)) or not hasattr(paths, "__len__"):
            raise InputError(path, f"annots['ims'][{index}] must be a dict with an 'ims' list of image paths",
                             "list one image path per camera for every frame")  # fmt: skip
        paths = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in paths]
        if len(paths) != num_cameras:
            problem = f"frame {index} lists {len(paths)} images but annots['cams'] has {num_cameras} cameras"
            problems.append(Problem(str(path), problem, "every frame needs one image per camera, in camera order"))
        for view, relpath in enumerate(paths):
            if contained_relpath(relpath) is None:
                problem = f"frame {index}, camera {view}: image path {relpath!r} is not inside the capture folder"
                problems.append(Problem(str(path), problem, INSIDE_FIX))
        frames.append(paths)
    return frames


def _read_meta(root: Path) -> dict:
    path = root / META
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not valid JSON ({error})", "fix or delete the file") from None
    if not isinstance(meta, dict):
        raise InputError(path, f"must hold a JSON object, got {type(meta).__name__}", "fix or delete the file")
    mask_dir = meta.get("mask_dir")
    if mask_dir is not None and (not isinstance(mask_dir, str) or contained_relpath(mask_dir) is None):
        raise InputError(path, f"mask_dir {mask_dir!r} is not a folder inside the capture",
                         "give a relative folder name such as \"mask\", or remove the key")  # fmt: skip
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
            raise InputError(root / META, f"'frame_offset' must be an integer, got {offset!r}", "fix or remove the key")
        return offset
    for offset in (0, 1):
        if any((root / folder / f"{offset}.npy").is_file() for folder in ("params", "vertices")):
            return offset
    return 0


def _build_cameras(
    root: Path, annots_path: Path, arrays: list, image_lists: list[list[str]], names: list[str], problems: list[Problem]
) -> tuple[list[Camera], list[tuple[int, int]]]:
    """Cameras (full resolution) and image sizes (from frame 0's image headers); problems are added to ``problems``."""
    cameras, file_sizes = [], []
    for index, (entry, name) in enumerate(zip(arrays, names, strict=True)):
        first_image = root / image_lists[0][index]
        if not first_image.is_file():
            raise FileNotFoundError(
                f"image not found: {first_image} (listed in {annots_path}, frame 0, camera {index})"
            )
        try:
            width, height = image_io.image_size(first_image)
        except InputError as error:
            problems.extend(error.problems)
            continue
        file_sizes.append((width, height))
        if entry is None:
            continue
        try:
            camera = Camera(K=entry["K"], R=entry["R"], T=entry["T"].reshape(3) / 1000.0, D=entry["D"], width=width,
                            height=height, name=name, colour_gain=entry.get("colour_gain"))  # fmt: skip
            cameras.append(camera)
        except ValueError as error:
            problems.append(Problem(str(annots_path), f"camera {index}: {error}", "fix annots['cams'] for this camera"))
    return cameras, file_sizes


def read_capture(root: str | os.PathLike, *, scale: float = 1.0) -> Capture:
    """Read and validate a capture folder in ZJU-MoCap layout.

    Args:
        root: the capture folder (holding ``annots.npy``).
        scale: image scale (0.5 reads 1024 x 1024 images as 512 x 512, intrinsics scaled by
            :meth:`Camera.scaled`).

    Returns:
        A :class:`Capture`. Raises FileNotFoundError for a missing ``annots.npy`` or frame-0
        image, :class:`InputError` naming the file and the fix otherwise (its ``problems``
        list every problem of ``annots.npy``, its cameras and frame 0's image headers).
    """
    root = Path(root)
    recover(root)  # a killed writer's transaction: finished or discarded (neuralbody.data.transaction)
    image_io.scaled_size(1, 1, scale)  # validates scale
    annots_path = root / ANNOTS
    annots = _load_annots(annots_path)
    problems: list[Problem] = []
    camera_arrays = _camera_arrays(annots, annots_path, problems)
    image_lists = _image_lists(annots, annots_path, len(camera_arrays), problems)
    if problems:  # the image lists must be sound before any image is opened
        raise InputError.from_problems(problems, more=CHECK_HINT)
    meta = _read_meta(root)
    names = _camera_names(image_lists, meta)
    cameras, file_sizes = _build_cameras(root, annots_path, camera_arrays, image_lists, names, problems)
    if problems:
        raise InputError.from_problems(problems, more=CHECK_HINT)
    offset = _detect_frame_offset(root, meta)
    capture = Capture(
        root=root,
        cameras=[camera.scaled(scale) if scale != 1.0 else camera for camera in cameras],
        image_relpaths=image_lists,
        file_sizes=file_sizes,
        frame_offset=offset,
        meta=meta,
        scale=scale,
    )
    log.debug("read %r (frame offset %d)", capture, offset)
    return capture
