"""Reading (and writing) multi-camera calibrations in the formats people have, as :class:`Camera` lists.

Every reader returns ``list[Camera]`` in neuralbody's conventions (world-to-camera ``R``,
``T`` in metres, OpenCV axes x right / y down / z forward, OpenCV distortion ``k1 k2 p1 p2 k3``
on normalised coordinates, pixel centres at integers).

Formats:

* **Qualisys** ``.qca.txt`` (XML, :func:`read_qualisys`). Per camera ``serial`` is the name;
  ``fov_video`` (left, top, right, bottom, inclusive pixel bounds) the image size;
  ``intrinsic`` focal lengths and principal point in *sensor units*, 64 a pixel (Qualisys'
  sub-pixel factor: ``sensorMaxU 69568 = 64 x 1087``), the principal point measured from
  the sensor origin, so ``cx = centerPointU / 64 - left``; ``transform`` a rotation matrix
  ``M = [[r11 r12 r13], [r21 r22 r23], [r31 r32 r33]]`` and the camera **centre**
  ``(x, y, z)`` in millimetres. ``M``'s rows are the camera's axes in world coordinates with
  Qualisys' camera axes (x right, y up, z backwards, the camera looks along -z), so the
  OpenCV world-to-camera rotation is ``R = diag(1, -1, -1) M`` and ``T = -R c``. This was
  checked on a real 4-camera lab calibration: with this reading the four optical axes pass
  within ~0.1 m of a common point 3.3-3.8 m in front of every camera and world +z (up)
  maps to image up; the other readings (M camera-to-world, or the position as T) give
  axes that miss each other by metres or point away from the scene. It is also what
  Pose2Sim does (transpose twice, then rotate the camera by pi about x).
  Distortion ``radialDistortion1/2/3`` and ``tangentalDistortion1/2`` are taken as OpenCV
  ``k1, k2, k3, p1, p2`` on normalised coordinates, as written (Pose2Sim divides them by 64;
  that has not been verified either way here: on 1088 x 1920 images the two readings differ
  by at most ~6 px at the image corners and < 1 px within the central half).
* **EasyMocap / ZJU-MoCap** ``intri.yml`` + ``extri.yml`` (OpenCV FileStorage YAML, T in
  metres; :mod:`neuralbody.capture_import.opencv_yaml`).
* **ZJU-MoCap** ``annots.npy`` (:func:`read_annots_cameras`, T in millimetres on disk).

:func:`read_calibration` picks the reader from the path.
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from neuralbody.capture_import.opencv_yaml import read_easymocap, write_easymocap
from neuralbody.data.cameras import Camera
from neuralbody.data.images import image_size

QUALISYS_UNITS_PER_PIXEL = 64.0
_QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # camera axes (x right, y up, z back) -> (x right, y down, z forward)

FORMATS = (
    "Qualisys .qca.txt (XML)",
    "EasyMocap/ZJU-MoCap intri.yml + extri.yml (a folder holding both, or either file)",
    "ZJU-MoCap annots.npy (or its folder)",
)

__all__ = [
    "FORMATS",
    "read_annots_cameras",
    "read_calibration",
    "read_easymocap",
    "read_qualisys",
    "write_annots_cameras",
    "write_easymocap",
    "write_qualisys",
]


def _float(element: ET.Element, key: str, path: Path, name: str) -> float:
    value = element.get(key)
    if value is None:
        raise ValueError(f"{path}: camera {name!r}: <{element.tag}> lacks the attribute {key!r}")
    return float(value)


def read_qualisys(path: str | os.PathLike) -> list[Camera]:
    """Cameras from a Qualisys ``.qca.txt`` XML calibration (see the module docstring for the maths).

    Returns one :class:`Camera` per active ``<camera>``, named by its ``serial``, sized by its
    ``fov_video``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{path}: not valid XML ({error}); expected a Qualisys .qca.txt calibration") from error
    elements = root.findall("cameras/camera")
    if root.tag != "calibration" or not elements:
        raise ValueError(f"{path}: no <calibration><cameras><camera> elements; not a Qualisys .qca.txt file")
    cameras = []
    for index, element in enumerate(elements):
        if element.get("active", "1") == "0":
            continue
        name = element.get("serial") or f"camera{index + 1:02d}"
        fov, intrinsic, transform = (element.find(tag) for tag in ("fov_video", "intrinsic", "transform"))
        if fov is None or intrinsic is None or transform is None:
            raise ValueError(f"{path}: camera {name!r} needs <fov_video>, <intrinsic> and <transform>")
        get_fov, get_in, get_tr = (
            (lambda key, e=e: _float(e, key, path, name)) for e in (fov, intrinsic, transform)
        )
        left, top = get_fov("left"), get_fov("top")
        width, height = int(get_fov("right") - left + 1), int(get_fov("bottom") - top + 1)
        units = QUALISYS_UNITS_PER_PIXEL
        K = np.array(
            [
                [
                    get_in("focalLengthU") / units,
                    float(intrinsic.get("skew", 0.0)) / units,
                    get_in("centerPointU") / units - left,
                ],
                [0.0, get_in("focalLengthV") / units, get_in("centerPointV") / units - top],
                [0.0, 0.0, 1.0],
            ]
        )
        D = np.array(
            [
                get_in("radialDistortion1"),
                get_in("radialDistortion2"),
                get_in("tangentalDistortion1"),
                get_in("tangentalDistortion2"),
                float(intrinsic.get("radialDistortion3", 0.0)),
            ]
        )
        M = np.array([[get_tr(f"r{i}{j}") for j in (1, 2, 3)] for i in (1, 2, 3)])
        centre = np.array([get_tr("x"), get_tr("y"), get_tr("z")]) / 1000.0
        R = _QUALISYS_TO_OPENCV @ M
        try:
            cameras.append(Camera(K=K, R=R, T=-R @ centre, D=D, width=width, height=height, name=name))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    return cameras


def write_qualisys(cameras: list[Camera], path: str | os.PathLike) -> Path:
    """Write cameras as a minimal Qualisys ``.qca.txt`` (inverse of :func:`read_qualisys`, fov from (0, 0))."""
    path = Path(path)
    root = ET.Element("calibration", source="neuralbody", type="regular")
    cameras_element = ET.SubElement(root, "cameras")
    units = QUALISYS_UNITS_PER_PIXEL
    for camera in cameras:
        element = ET.SubElement(cameras_element, "camera", active="1", serial=camera.name, model="none")
        bounds = {"left": "0", "top": "0", "right": str(camera.width - 1), "bottom": str(camera.height - 1)}
        for tag in ("fov_marker", "fov_marker_max", "fov_video", "fov_video_max"):
            ET.SubElement(element, tag, **bounds)
        M = _QUALISYS_TO_OPENCV @ camera.R
        centre_mm = camera.center * 1000.0
        attributes = {f"r{i + 1}{j + 1}": repr(float(M[i, j])) for i in range(3) for j in range(3)}
        attributes.update({axis: repr(float(v)) for axis, v in zip("xyz", centre_mm)})
        ET.SubElement(element, "transform", **attributes)
        k1, k2, p1, p2, k3 = (repr(float(v)) for v in camera.D)
        ET.SubElement(
            element,
            "intrinsic",
            focalLengthU=repr(float(camera.K[0, 0] * units)),
            focalLengthV=repr(float(camera.K[1, 1] * units)),
            centerPointU=repr(float(camera.K[0, 2] * units)),
            centerPointV=repr(float(camera.K[1, 2] * units)),
            skew=repr(float(camera.K[0, 1] * units)),
            radialDistortion1=k1,
            radialDistortion2=k2,
            radialDistortion3=k3,
            tangentalDistortion1=p1,
            tangentalDistortion2=p2,
            sensorMinU="0",
            sensorMinV="0",
            sensorMaxU=str(int((camera.width - 1) * units)),
            sensorMaxV=str(int((camera.height - 1) * units)),
        )
    ET.indent(root)
    buffer = io.BytesIO()
    ET.ElementTree(root).write(buffer, encoding="ASCII", xml_declaration=True)
    path.write_bytes(buffer.getvalue())
    return path


def read_annots_cameras(
    path: str | os.PathLike, *, image_sizes: dict[str, tuple[int, int]] | None = None
) -> list[Camera]:
    """Cameras from a ZJU-MoCap ``annots.npy`` (``cams`` K, R, T millimetres, D).

    Names are the image folders of frame 0 in ``ims`` (``Camera_B1``), or the ``cameras`` list of
    a ``neuralbody.json`` beside it. Sizes come from ``image_sizes`` when given for a name, else
    from the headers of frame 0's images beside the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "annots.npy"
    from neuralbody.data.capture import (  # the capture reader's checks
        _camera_arrays,
        _image_lists,
        _load_annots,
    )

    annots = _load_annots(path)
    arrays = _camera_arrays(annots, path)
    image_lists = _image_lists(annots, path, len(arrays))
    names = [os.path.dirname(p).replace("\\", "/") for p in image_lists[0]]
    meta_path = path.parent / "neuralbody.json"
    if meta_path.is_file():
        listed = json.loads(meta_path.read_text(encoding="utf-8")).get("cameras")
        if isinstance(listed, list) and len(listed) == len(arrays):
            names = [str(n) for n in listed]
    if any(not n for n in names) or len(set(names)) != len(names):
        names = [f"view_{index:02d}" for index in range(len(arrays))]
    image_sizes = image_sizes or {}
    cameras = []
    for index, (entry, name) in enumerate(zip(arrays, names, strict=True)):
        if name in image_sizes:
            width, height = image_sizes[name]
        else:
            first = path.parent / image_lists[0][index]
            if not first.is_file():
                raise ValueError(
                    f"{path}: camera {name!r} has no image size: {first} is missing; pass image_sizes"
                )
            width, height = image_size(first)
        cameras.append(
            Camera(K=entry["K"], R=entry["R"], T=entry["T"].reshape(3) / 1000.0, D=entry["D"], width=width,
                   height=height, name=name)
        )
    return cameras


def write_annots_cameras(cameras: list[Camera], path: str | os.PathLike, image_relpaths: list[list[str]]) -> Path:
    """Write a ZJU-MoCap ``annots.npy``: ``cams`` (T millimetres) and ``ims`` (one list of paths a frame)."""
    from neuralbody.data.writer import cameras_to_annots, save_annots

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    annots = {"cams": cameras_to_annots(cameras), "ims": [{"ims": list(paths)} for paths in image_relpaths]}
    return save_annots(path, annots)


def detect_format(path: str | os.PathLike) -> str:
    """``'qualisys'``, ``'easymocap'`` or ``'annots'`` for a calibration path; ValueError listing FORMATS otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"calibration not found: {path}")
    if path.is_dir():
        if (path / "intri.yml").is_file():
            return "easymocap"
        if (path / "annots.npy").is_file():
            return "annots"
        qca = sorted(path.glob("*.qca.txt"))
        if len(qca) == 1:
            return "qualisys"
    else:
        name = path.name.lower()
        if name.endswith(".npy"):
            return "annots"
        if name.endswith((".yml", ".yaml")):
            return "easymocap"
        with open(path, "rb") as handle:
            head = handle.read(4096).lstrip()
        if head.startswith(b"<?xml") or head.startswith(b"<calibration"):
            if b"<calibration" in head:
                return "qualisys"
        if head.startswith(b"%YAML"):
            return "easymocap"
    raise ValueError(f"{path}: unknown calibration format; supported: " + "; ".join(FORMATS))


def read_calibration(
    path: str | os.PathLike, *, image_sizes: dict[str, tuple[int, int]] | None = None
) -> list[Camera]:
    """Read any supported calibration (see :func:`detect_format`) as ``list[Camera]``.

    ``image_sizes`` (``{name: (width, height)}``) fills sizes the file does not hold.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "qualisys":
        if path.is_dir():
            path = sorted(path.glob("*.qca.txt"))[0]
        return read_qualisys(path)
    if kind == "easymocap":
        return read_easymocap(path, image_sizes=image_sizes)
    return read_annots_cameras(path, image_sizes=image_sizes)
