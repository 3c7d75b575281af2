"""``neuralbody detect DATA``: person masks and COCO-17 keypoints for every image, checked across views.

Needs the optional extra ``pip install 'neuralbody[detect]'`` (MediaPipe 0.10.14, CPU; its pose
and segmentation models ship inside the wheel). Writes ``mask/``, ``keypoints2d/`` and
``detect.json`` into the capture in one transaction (a kill or an error leaves the capture as it
was; see :mod:`neuralbody.capture_import.detect`) and prints a
per-camera table: frames with a person found, frames where the whole-image detection was
another person or nobody and the person was found inside its projected box instead
("re-detected"), frames where the person is lost (confidence 0, empty mask), median reprojection
error, a synchronisation check and a calibration check (the leave-one-out keypoint bias of
:func:`neuralbody.fitting.camera_refinement.signed_bias`; above 1.5 px it suggests
``neuralbody refine-cameras``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

HELP = "person masks and 2D keypoints per view (MediaPipe, CPU), bystanders rejected by multi-view consistency"

log = logging.getLogger("neuralbody.detect")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder (ZJU-MoCap layout, e.g. from neuralbody import)")
    parser.add_argument("--frames", default=None, metavar="A:B", help="frame indices (a Python slice; default all)")
    parser.add_argument("--model", type=int, choices=(0, 1), default=1, help="BlazePose model: 0 lite, 1 full (default)")
    parser.add_argument("--tol", type=float, default=0.03,
                        help="agreement tolerance, fraction of the image height (default 0.03)")
    parser.add_argument("--mask-dir", choices=("mask", "mask_cihp"), default="mask", help="mask folder (default mask)")
    parser.add_argument("--black-background", action="store_true",
                        help="rewrite the images with black outside the mask (originals kept in DATA/original/), "
                        "as Neural Body trains on")  # fmt: skip
    parser.add_argument("--no-offset-check", action="store_true", help="skip the synchronisation check")


def format_table(result) -> str:
    """The per-camera summary table of a :class:`~neuralbody.capture_import.detect.DetectResult`."""
    lines = [f"{'camera':<10} {'frames':>6} {'found':>6} {'agreed':>6} {'flip':>5} {'re-det':>6} {'lost':>5} {'unver':>5} "
             f"{'resid px':>8} {'mask %':>6} {'cut':>4}"]  # fmt: skip
    for view in result.views:
        fraction = 100 * sum(view.mask_fraction) / max(1, len(view.mask_fraction))
        lines.append(f"{view.name:<10} {view.frames:>6} {view.found:>6} {view.agreed:>6} {view.flipped:>5} {view.redetected:>6} "
                     f"{view.lost:>5} {view.unverified:>5} {view.median_residual_px():>8.1f} {fraction:>6.1f} {view.mask_removed:>4}")  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from neuralbody.capture_import.detect import DetectConfig, detect_capture
    from neuralbody.capture_import.person_detector import PersonDetector
    from neuralbody.cli.fit import parse_frames
    from neuralbody.data.capture import read_capture

    capture = read_capture(args.data)
    frames = parse_frames(args.frames, capture.num_frames)
    config = DetectConfig(tol_fraction=args.tol, mask_dir=args.mask_dir, black_background=args.black_background,
                          max_offset=0 if args.no_offset_check else DetectConfig.max_offset)  # fmt: skip
    try:
        detector = PersonDetector(model_complexity=args.model)
    except ImportError as error:
        log.error("error: %s", error)
        return 2
    with detector:
        result = detect_capture(args.data, detector, config, frames=frames)
    print(format_table(result))
    print("found: person detected in the whole image; agreed: it was the person all views agree on; "
          "flip: it had left/right swapped (fixed); re-det: found inside the person's projected box instead "
          "(bystander or miss); lost: written with confidence 0 and an empty mask; unver: no multi-view "
          "consensus to check against; cut: frames whose mask lost pieces outside the person's box or away "
          "from their keypoints (bystanders, clutter)")  # fmt: skip
    for view in result.views:
        if view.lost_frames:
            print(f"  {view.name}: person lost in frames {view.lost_frames}")
    if result.no_consensus:
        print(f"no two views agreed in frames {result.no_consensus} (guided by the previous frame where possible)")
    if result.offsets:
        for name, shifts in result.offsets.items():
            row = "  ".join(f"{s:+d}:{v:.1f}" for s, v in shifts.items())
            print(f"  sync check {name}: median px by frame shift  {row}")
    if result.suggested_offsets:
        hint = ",".join(f"{name}={shift}" for name, shift in result.suggested_offsets.items())
        print(f"some cameras fit better shifted: re-import with --offsets {hint}")
    next_step = f"neuralbody fit {result.root}"
    try:
        bias = calibration_bias(capture, frames)
    except (ValueError, FileNotFoundError) as error:  # a check only: detection is written already
        log.warning("calibration check skipped: %s", error)
        bias = None
    if bias is not None and bias.max() > BIAS_HINT_PX:
        worst = int(bias.argmax())
        print(f"the cameras disagree about the person: a keypoint triangulated from the other cameras lands "
              f"{bias[worst]:.1f} px from where {capture.cameras[worst].name or worst} saw it, on average "
              f"(leave-one-out bias; > {BIAS_HINT_PX} px): refine the calibration first")  # fmt: skip
        next_step = f"neuralbody refine-cameras {result.root}, then {next_step}"
    print(f"wrote mask/ keypoints2d/ detect.json in {result.root} ({result.seconds:.0f} s); next: {next_step}")
    return 0


BIAS_HINT_PX = 1.5  # leave-one-out bias above which detect suggests refine-cameras


def calibration_bias(capture, frames: list[int]):
    """(C,) length of each camera's leave-one-out keypoint bias in pixels
    (:func:`neuralbody.fitting.camera_refinement.signed_bias`), or None with fewer than three cameras."""
    from neuralbody.cli.refine_cameras import load_keypoint_sequence
    from neuralbody.fitting.camera_refinement import signed_bias

    if capture.num_views < 3:
        return None
    keypoints = load_keypoint_sequence(capture, capture.root / "keypoints2d", frames)
    return np.nan_to_num(np.linalg.norm(signed_bias(capture.cameras, keypoints), axis=1))
