"""``neuralbody calibrate-colour DATA``: make the cameras agree about the person's colours.

One RGB gain per camera from the skin and clothes that two cameras see at once, through each
frame's fitted body (``DATA/vertices/``, from ``neuralbody fit``); see
:mod:`neuralbody.fitting.colour_calibration`. Prints each camera's gain and, per camera pair,
the shared samples, the measured colour ratio and what is left after the gains. Writes the
gains into ``DATA/annots.npy`` (``annots['cams']['colour_gain']``, read as
:attr:`~neuralbody.data.cameras.Camera.colour_gain`; other ZJU-MoCap readers ignore it) and a
``colour_calibration.json`` report. ``--reset`` removes them. Train after it: the model then
learns one set of colours and renders each capture camera in its own response.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

HELP = "match the cameras' colour responses (one RGB gain per camera) from the fitted body, before training"

log = logging.getLogger("neuralbody.calibrate_colour")
REPORT_NAME = "colour_calibration.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder (ZJU-MoCap layout) with masks and vertices/ from neuralbody fit")
    parser.add_argument("--frames", default=None, metavar="A:B", help="frame indices (a Python slice; default all fitted)")
    parser.add_argument("--min-points", type=int, default=100, help="camera pairs sharing fewer body samples are not used")
    parser.add_argument("--dry-run", action="store_true", help="report only; do not change annots.npy")
    parser.add_argument("--reset", action="store_true", help="remove the gains from annots.npy (all cameras 1) and stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def format_table(names: list[str], calibration) -> str:
    """Per camera its gain; per measured pair the shared samples, measured ratio and residual (percent)."""
    lines = [f"{'camera':<10} {'gain R':>7} {'gain G':>7} {'gain B':>7}"]
    for c, name in enumerate(names):
        note = "" if calibration.connected[c] else "  (too few shared samples: left at 1)"
        lines.append(f"{name:<10} " + " ".join(f"{g:>7.3f}" for g in calibration.gains[c]) + note)
    lines.append("")
    lines.append(f"{'pair':<17} {'samples':>8} {'measured ratio R/G/B':>22} {'left after gains':>18}")
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            points = int(calibration.pair_points[a, b])
            pair = f"{names[b]}/{names[a]}"
            if np.isnan(calibration.pair_log_ratio[a, b]).any():
                lines.append(f"{pair:<17} {points:>8} {'(not used)':>22}")
                continue
            ratio = np.exp(calibration.pair_log_ratio[a, b])
            left = 100 * (np.exp(calibration.pair_residual[a, b]) - 1)
            lines.append(f"{pair:<17} {points:>8} {' '.join(f'{r:.3f}' for r in ratio):>22} "
                         f"{' '.join(f'{x:+.0f}%' for x in left):>18}")  # fmt: skip
    return "\n".join(lines)


def _write_gains(root: Path, gains: np.ndarray | None) -> None:
    from neuralbody.data.writer import save_annots
    from neuralbody.io.safe_load import load_npy_object

    path = root / "annots.npy"
    annots = load_npy_object(path)  # pickled dict: numpy arrays and plain values only
    if gains is None:
        annots["cams"].pop("colour_gain", None)
    else:
        annots["cams"]["colour_gain"] = [np.asarray(g, dtype=np.float64) for g in gains]
    save_annots(path, annots)


def run(args: argparse.Namespace) -> int:
    from neuralbody.cli.evaluate import body_faces
    from neuralbody.cli.fit import parse_frames
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.colour_calibration import calibrate_colours

    root = args.data
    if args.reset:
        read_capture(root)  # a readable capture, or a clear error
        _write_gains(root, None)
        print(f"removed the colour gains from {root / 'annots.npy'}; re-train to use the images as recorded")
        return 0
    capture = read_capture(root)
    if capture.num_views < 2:
        raise ValueError(f"{root}: colour calibration compares cameras; this capture has {capture.num_views}")
    frames = parse_frames(args.frames, capture.num_frames)
    fitted = [frame for frame in frames if capture.vertices_path(frame).is_file()]
    if not fitted:
        raise FileNotFoundError(f"{root / 'vertices'}: none of the selected frames is fitted; run neuralbody fit {root} first")
    if capture.mask_path(fitted[0], 0) is None:
        raise FileNotFoundError(f"{root}: no person masks (colours are read inside them); run neuralbody detect {root} first")
    faces = body_faces(capture, fitted[0])
    log.info("sampling the fitted body's colours in %d cameras over %d frames", capture.num_views, len(fitted))
    calibration = calibrate_colours(capture, fitted, faces, min_points=args.min_points, progress=not args.no_progress)
    names = [camera.name or str(c) for c, camera in enumerate(capture.cameras)]
    print(format_table(names, calibration))
    if args.dry_run:
        print("dry run: annots.npy unchanged")
        return 0
    _write_gains(root, calibration.gains)
    report = {
        "frames": len(fitted), "min_points": args.min_points,
        "gains": {name: calibration.gains[c].tolist() for c, name in enumerate(names)},
        "connected": {name: bool(calibration.connected[c]) for c, name in enumerate(names)},
        "pair_points": calibration.pair_points.tolist(),
        "pair_log_ratio": np.where(np.isnan(calibration.pair_log_ratio), None, calibration.pair_log_ratio).tolist(),
    }  # fmt: skip
    (root / REPORT_NAME).write_text(json.dumps(report, indent=2))
    print(f"wrote the gains to {root / 'annots.npy'} (report {root / REPORT_NAME}); train now: "
          "images are divided by their camera's gain, renders for a capture camera multiplied by it")  # fmt: skip
    return 0
