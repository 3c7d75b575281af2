"""``neuralbody import SRC --calib FILE --out DATA``: videos or image folders + a calibration -> ZJU-MoCap layout.

Written in one transaction (:func:`neuralbody.capture_import.importer.import_capture`): a killed or
failed import leaves DATA as it was; run it again to import.
"""

from __future__ import annotations

import argparse
import re
import logging
from pathlib import Path

HELP = "import synchronised videos (or per-camera image folders) and a calibration into a capture folder"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, help="folder of videos (cam01.mp4, ...) or of per-camera image folders")
    parser.add_argument(
        "--calib", type=Path, required=True,
        help="calibration: Qualisys .qca.txt, EasyMocap intri.yml/extri.yml (or their folder), ZJU annots.npy",
    )
    parser.add_argument("--out", type=Path, required=True, help="output capture folder (ZJU-MoCap layout)")
    parser.add_argument("--frames", default=None, help="source frame range a:b[:step] (default: all common frames)")
    parser.add_argument("--offsets", default="", help="per-camera frame offsets, e.g. cam03=1,cam04=2")
    parser.add_argument("--scale", type=float, default=1.0, help="image scale, e.g. 0.5 (default 1)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--undistort", dest="undistort", action="store_true", default=True,
                       help="resample images to the ideal pinhole camera and write D = 0 (default)")
    group.add_argument("--keep-distortion", dest="undistort", action="store_false",
                       help="keep the recorded images and write the distortion coefficients")
    parser.add_argument("--crop", action="append", default=[], metavar="CAM=X0,Y0,X1,Y1",
                        help="crop a camera's images (source pixels, end exclusive); repeat per camera")
    parser.add_argument("--image-format", choices=("jpg", "png"), default="jpg", help="image files (default jpg)")


def parse_frames(text: str) -> tuple[int, int | None, int]:
    """``"a:b[:step]"`` (either end may be empty) -> ``(start, stop or None, step)``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(re.fullmatch(r"-?\d*", p.strip()) for p in parts):
        raise ValueError(f"--frames {text!r}: expected a:b or a:b:step, e.g. 0:100 or 10::2")
    start = int(parts[0]) if parts[0].strip() else 0
    stop = int(parts[1]) if parts[1].strip() else None
    step = int(parts[2]) if len(parts) == 3 and parts[2].strip() else 1
    if start < 0 or step <= 0 or (stop is not None and stop <= start):
        raise ValueError(f"--frames {text!r}: need 0 <= start < stop and step >= 1")
    return start, stop, step


def parse_offsets(text: str) -> dict[str, int]:
    """``"cam03=1,cam04=2"`` -> ``{"cam03": 1, "cam04": 2}``."""
    offsets = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if not name or not re.fullmatch(r"-?\d+", value.strip()):
            raise ValueError(f"--offsets {text!r}: expected name=frames[,name=frames], e.g. cam03=1,cam04=2")
        offsets[name.strip()] = int(value)
    return offsets


def parse_crops(items: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """``["cam01=0,100,1080,1800", ...]`` -> ``{"cam01": (0, 100, 1080, 1800)}`` (source pixels, end exclusive)."""
    crops = {}
    for item in items:
        name, _, box = item.partition("=")
        values = box.split(",")
        if not name or len(values) != 4 or not all(re.fullmatch(r"\d+", v.strip()) for v in values):
            raise ValueError(f"--crop {item!r}: expected camera=x0,y0,x1,y1 in source pixels")
        x0, y0, x1, y1 = (int(v) for v in values)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"--crop {item!r}: need x0 < x1 and y0 < y1")
        crops[name.strip()] = (x0, y0, x1, y1)
    return crops


# cameras ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from neuralbody.capture_import.importer import ImportConfig, import_capture

    start, stop, step = parse_frames(args.frames) if args.frames else (0, None, 1)
    config = ImportConfig(
        start=start,
        stop=stop,
        step=step,
        offsets=parse_offsets(args.offsets),
        scale=args.scale,
        undistort=args.undistort,
        crops=parse_crops(args.crop),
        image_format=args.image_format,
    )
    result = import_capture(args.src, args.calib, args.out, config)
    print(f"imported {len(next(iter(result.source_frames.values())))} frames x {len(result.cameras)} cameras "
          f"into {result.root}")
    for camera in result.cameras:
        frames = result.source_frames[camera.name]
        print(f"  {camera.name:<12} {camera.width}x{camera.height}  source frames {frames[0]}..{frames[-1]}")
    print(f"next: neuralbody info {result.root}")
    return 0
