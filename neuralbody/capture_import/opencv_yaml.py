"""OpenCV FileStorage YAML (``%YAML:1.0``) and EasyMocap / ZJU-MoCap ``intri.yml`` + ``extri.yml``.

OpenCV writes YAML 1.0 with its own ``!!opencv-matrix`` tag, which generic YAML parsers
reject; this is a small parser for the subset calibration files use::

    %YAML:1.0
    ---
    names:
       - "01"
       - "02"
    K_01: !!opencv-matrix
       rows: 3
       cols: 3
       dt: d
       data: [ 1.0e+03, 0., 5.1e+02, 0., 1.0e+03,
           5.1e+02, 0., 0., 1. ]
    H_01: 1024

Supported values: numbers, (quoted) strings, block lists (``- item``), inline lists
(``[a, b]``) and ``!!opencv-matrix`` maps (returned as ``(rows, cols)`` float64 arrays).
Nested maps other than matrices are not supported (a ValueError names the line).

EasyMocap's layout, one entry per camera name ``<c>`` listed under ``names``:

* ``intri.yml``: ``K_<c>`` (3, 3) pixels, ``dist_<c>`` (1, 5) or (5, 1) OpenCV
  ``k1 k2 p1 p2 k3`` (``D_<c>`` accepted too), optionally ``H_<c>`` / ``W_<c>`` image size.
* ``extri.yml``: ``Rot_<c>`` (3, 3) world-to-camera rotation (or ``R_<c>`` (3, 1)
  Rodrigues axis-angle, radians), ``T_<c>`` (3, 1) world-to-camera translation, **metres**
  (``x_cam = R x_world + T``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from neuralbody.data.cameras import Camera

_KEY = re.compile(r"^([A-Za-z_][\w\-. ]*?)\s*:\s*(.*)$")


def _scalar(text: str):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _inline_list(text: str) -> list:
    inner = text.strip()[1:-1].strip()
    return [_scalar(item) for item in inner.split(",") if item.strip()] if inner else []


def parse_opencv_yaml(text: str, *, source: str = "<string>") -> dict:
    """Parse OpenCV FileStorage YAML text into a dict (matrices as float64 arrays).

    Args:
        text: the file contents.
        source: file name for error messages.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    result: dict = {}
    index = 0

    key_line = 0

    def fail(message: str, line: int | None = None) -> ValueError:
        number = (index if line is None else line) + 1
        return ValueError(f"{source}:{number}: {message} (OpenCV FileStorage YAML expected)")

    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("%") or stripped == "---":
            index += 1
            continue
        if line[0].isspace():
            raise fail(f"unexpected indented line {stripped!r}")
        match = _KEY.match(stripped)
        if match is None:
            raise fail(f"cannot parse {stripped!r}")
        key, rest = match.group(1), match.group(2).strip()
        key_line = index
        index += 1
        if rest.startswith("!!opencv-matrix"):
            fields: dict = {}
            while index < len(lines) and (not lines[index].strip() or lines[index][0].isspace()):
                inner = lines[index].strip()
                index += 1
                if not inner:
                    continue
                sub = _KEY.match(inner)
                if sub is None:
                    raise fail(f"cannot parse matrix field {inner!r} of {key!r}")
                name, value = sub.group(1), sub.group(2).strip()
                if name == "data":
                    while not value.endswith("]") and index < len(lines):
                        value += " " + lines[index].strip()
                        index += 1
                    fields["data"] = [float(v) for v in value.strip()[1:-1].replace(",", " ").split()]
                else:
                    fields[name] = _scalar(value)
            if any(name not in fields for name in ("rows", "cols", "data")):
                raise fail(f"matrix {key!r} needs rows, cols and data", key_line)
            rows, cols = int(fields["rows"]), int(fields["cols"])
            if len(fields["data"]) != rows * cols:
                raise fail(f"matrix {key!r} is {rows}x{cols} but holds {len(fields['data'])} values", key_line)
            result[key] = np.asarray(fields["data"], dtype=np.float64).reshape(rows, cols)
        elif rest.startswith("["):
            while not rest.endswith("]") and index < len(lines):
                rest += " " + lines[index].strip()
                index += 1
            result[key] = _inline_list(rest)
        elif rest == "":
            items = []
            while index < len(lines) and lines[index].strip().startswith("- "):
                items.append(_scalar(lines[index].strip()[2:]))
                index += 1
            if index < len(lines) and lines[index].strip() and lines[index][0].isspace():
                raise fail(f"nested maps are not supported (key {key!r})")
            result[key] = items
        else:
            result[key] = _scalar(rest)
    return result


def format_opencv_yaml(entries: dict) -> str:
    """Write a dict as OpenCV FileStorage YAML: arrays as ``!!opencv-matrix``, lists as block lists.

    Numbers are written with 17 significant digits, so floats round-trip exactly.
    """
    out = ["%YAML:1.0", "---"]
    for key, value in entries.items():
        if isinstance(value, np.ndarray):
            matrix = np.atleast_2d(np.asarray(value, dtype=np.float64))
            data = ", ".join(repr(float(v)) for v in matrix.ravel())
            out += [
                f"{key}: !!opencv-matrix",
                f"   rows: {matrix.shape[0]}",
                f"   cols: {matrix.shape[1]}",
                "   dt: d",
                f"   data: [ {data} ]",
            ]
        elif isinstance(value, (list, tuple)):
            out.append(f"{key}:")
            out += [f'   - "{item}"' if isinstance(item, str) else f"   - {item}" for item in value]
        elif isinstance(value, str):
            out.append(f'{key}: "{value}"')
        else:
            out.append(f"{key}: {value}")
    return "\n".join(out) + "\n"


def read_opencv_yaml(path: str | os.PathLike) -> dict:
    """Parse an OpenCV FileStorage YAML file (see :func:`parse_opencv_yaml`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file not found: {path}")
    return parse_opencv_yaml(path.read_text(encoding="utf-8", errors="replace"), source=str(path))


@dataclasses.dataclass(frozen=True)
class EasyMocapFiles:
    """The two files of an EasyMocap calibration."""

    intri: Path
    extri: Path


def find_easymocap_files(path: str | os.PathLike) -> EasyMocapFiles:
    """``intri.yml`` / ``extri.yml`` from a folder holding both, or from either file (the other beside it)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    files = EasyMocapFiles(intri=folder / "intri.yml", extri=folder / "extri.yml")
    for name, file in (("intri.yml", files.intri), ("extri.yml", files.extri)):
        if not file.is_file():
            raise FileNotFoundError(f"{name} not found: {file} (EasyMocap calibrations are intri.yml + extri.yml)")
    return files


def read_easymocap(
    path: str | os.PathLike, *, image_sizes: dict[str, tuple[int, int]] | None = None
) -> list[Camera]:
    """Cameras from EasyMocap / ZJU-MoCap ``intri.yml`` + ``extri.yml`` (T in metres on disk).

    Args:
        path: the folder holding both files, or either file.
        image_sizes: ``{name: (width, height)}`` for cameras whose ``intri.yml`` has no
            ``H_<c>`` / ``W_<c>`` (the importer passes the video sizes).

    Returns:
        One :class:`Camera` per name in ``names``, in that order.
    """
    files = find_easymocap_files(path)
    intri, extri = read_opencv_yaml(files.intri), read_opencv_yaml(files.extri)
    names = [str(n) for n in intri.get("names", extri.get("names", []))]
    if not names:
        raise ValueError(f"{files.intri}: no 'names' list of cameras")
    image_sizes = image_sizes or {}
    cameras = []
    for name in names:
        def need(table: dict, file: Path, *keys: str) -> np.ndarray:
            for key in keys:
                if f"{key}_{name}" in table:
                    return np.asarray(table[f"{key}_{name}"], dtype=np.float64)
            raise ValueError(f"{file}: camera {name!r} has none of {[f'{k}_{name}' for k in keys]}")

        K = need(intri, files.intri, "K")
        D = need(intri, files.intri, "dist", "D").reshape(-1)
        if f"Rot_{name}" in extri:
            R = np.asarray(extri[f"Rot_{name}"], dtype=np.float64)
        else:
            R = Rotation.from_rotvec(need(extri, files.extri, "R").reshape(3)).as_matrix()
        T = need(extri, files.extri, "T").reshape(3)
        if f"W_{name}" in intri and f"H_{name}" in intri:
            width, height = int(intri[f"W_{name}"]), int(intri[f"H_{name}"])
        elif name in image_sizes:
            width, height = image_sizes[name]
        else:
            raise ValueError(
                f"{files.intri}: camera {name!r} has no image size (W_{name}, H_{name}); pass image_sizes "
                "or add the two entries"
            )
        try:
            cameras.append(Camera(K=K, R=R, T=T, D=D, width=width, height=height, name=name))
        except ValueError as error:
            raise ValueError(f"{files.intri} / {files.extri}: {error}") from error
    return cameras


def write_easymocap(cameras: list[Camera], folder: str | os.PathLike) -> EasyMocapFiles:
    """Write ``intri.yml`` (K, dist (1, 5), H, W) and ``extri.yml`` (R Rodrigues, Rot, T metres) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [camera.name for camera in cameras]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ValueError(f"write_easymocap: camera names must be unique and non-empty, got {names}")
    intri: dict = {"names": names}
    extri: dict = {"names": names}
    for camera in cameras:
        intri[f"K_{camera.name}"] = camera.K
        intri[f"dist_{camera.name}"] = camera.D.reshape(1, 5)
        intri[f"H_{camera.name}"] = camera.height
        intri[f"W_{camera.name}"] = camera.width
        extri[f"R_{camera.name}"] = Rotation.from_matrix(camera.R).as_rotvec().reshape(3, 1)
        extri[f"Rot_{camera.name}"] = camera.R
        extri[f"T_{camera.name}"] = camera.T.reshape(3, 1)
    files = EasyMocapFiles(intri=folder / "intri.yml", extri=folder / "extri.yml")
    files.intri.write_text(format_opencv_yaml(intri), encoding="utf-8")
    files.extri.write_text(format_opencv_yaml(extri), encoding="utf-8")
    return files
