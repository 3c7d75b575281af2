"""``neuralbody track-head VIDEO_OR_FOLDER --out HEAD_CAPTURE``: a real face video as a head capture for ``train-head``.

Needs the optional extra ``pip install 'neuralbody[detect]'`` (MediaPipe 0.10.14: its face detector, face mesh
and selfie segmentation weights ship inside the wheel); videos are decoded by imageio-ffmpeg
(:mod:`neuralbody.capture_import.video`). MediaPipe's 478 face landmarks per frame are fitted by Anny's head (head pose, jaw,
52 facial actions; one focal length for the video, estimated unless ``--focal`` is given;
principal point at the image centre), and the capture is written in the layout
``train-head`` reads (:mod:`neuralbody.head.track_capture`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "track a face video (MediaPipe face mesh, CPU) with Anny's head: a head capture for train-head"

log = logging.getLogger("neuralbody.track_head")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="a video file, or a folder of PNG/JPEG frames (sorted by name)")
    parser.add_argument("--out", type=Path, required=True, help="the head capture to write (a new or empty folder)")
    parser.add_argument("--focal", type=float, default=None, metavar="PX",
                        help="focal length of the video in pixels, if known (default: estimated)")
    parser.add_argument("--frames", default=None, metavar="A:B:S", help="video frames to use (default all)")
    parser.add_argument("--res", type=int, default=256, help="square side of the capture's images (default 256)")
    parser.add_argument("--steps", type=int, default=400, help="joint fitting steps (default 400)")
    parser.add_argument("--smooth", type=float, default=1.0,
                        help="temporal smoothness weight (default 1; 0 for unrelated images)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.head.face_mesh import require_face_mesh
    from neuralbody.head.rig import build_head_rig
    from neuralbody.head.track_fit import FitSettings
    from neuralbody.head.tracking import track_video
    from neuralbody.capture_import.video import open_source
    from neuralbody.io.errors import InputError
    from neuralbody.cli.fit import parse_frames

    try:
        require_face_mesh()
    except ImportError as error:
        log.error("error: %s", error)
        return 2
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise InputError(args.out, "exists and is not an empty folder", "give a new --out")
    if args.focal is not None and not args.focal > 0:
        raise InputError("--focal", f"must be a positive number of pixels, got {args.focal}", "e.g. --focal 1000")
    if not 16 <= args.res <= 2048:
        raise InputError("--res", f"must be in [16, 2048], got {args.res}", "e.g. --res 256")
    frames = parse_frames(args.frames, open_source(args.video).num_frames)
    settings = FitSettings(steps=args.steps, smooth=args.smooth)
    tracked = track_video(args.video, args.out, build_head_rig(), frames=frames, focal=args.focal, resolution=args.res,
                          settings=settings, progress=not args.no_progress)
    print(f"track-head: {len(frames)} frames, focal {tracked.focal:.1f} px "
          f"({'given' if args.focal else 'estimated'}) -> {args.out} (train with: neuralbody train-head {args.out} ...)")
    return 0
