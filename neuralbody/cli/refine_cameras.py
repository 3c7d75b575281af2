"""``neuralbody refine-cameras DATA``: make the cameras agree with each other about the person.

Bundle adjustment of every camera's rotation and translation (intrinsics kept) from the 2D
keypoints of ``neuralbody detect`` (``DATA/keypoints2d/{frame}.npy``), see
:mod:`neuralbody.fitting.camera_refinement`. Prints, per camera, how far it moved, its median
reprojection error before and after, and its leave-one-out bias (the mean offset between where
the other cameras put a keypoint and where this camera saw it) before and after. Then writes the
refined cameras into ``DATA/annots.npy`` (the first original is kept as ``annots_unrefined.npy``;
``--restore`` puts it back) and a ``refine_cameras.json`` report. Run it after ``detect`` and
before ``fit``: fits made with the old cameras no longer match them.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np

HELP = "refine the cameras' extrinsics from the detected keypoints (bundle adjustment) before fitting"

log = logging.getLogger("neuralbody.refine_cameras")
BACKUP_NAME = "annots_unrefined.npy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder (ZJU-MoCap layout) with keypoints2d/ from neuralbody detect")
    parser.add_argument("--keypoints", type=Path, default=None, help="folder of {frame}.npy (views, 17, 3) keypoints "
                        "(default DATA/keypoints2d)")  # fmt: skip
    parser.add_argument("--frames", default=None, metavar="A:B", help="frame indices (a Python slice; default all)")
    parser.add_argument("--prior-rotation-deg", type=float, default=1.0, help="scale of the prior on each camera's rotation change")
    parser.add_argument("--prior-translation-m", type=float, default=0.05,
                        help="scale of the prior on each camera's translation change, metres")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="report only; do not change annots.npy")
    parser.add_argument("--restore", action="store_true", help=f"put {BACKUP_NAME} back as annots.npy and stop")


def load_keypoint_sequence(capture, folder: Path, frames: list[int]) -> np.ndarray:
    """(F, C, K, 3) keypoints of ``frames`` from ``folder/{frame id}.npy``; missing files are skipped."""
    arrays = []
    for frame in frames:
        path = folder / f"{capture.frame_ids[frame]}.npy"
        if not path.is_file():
            continue
        array = np.load(path, allow_pickle=False)
        if array.ndim != 3 or array.shape[0] != capture.num_views or array.shape[2] != 3:
            raise ValueError(f"{path}: expected shape ({capture.num_views}, K, 3) = (views, keypoints, (u, v, confidence)), "
                             f"got {array.shape}")  # fmt: skip
        arrays.append(array)
    if not arrays:
        raise FileNotFoundError(f"no keypoints in {folder} for the selected frames: run neuralbody detect {capture.root} first")
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"keypoint files in {folder} disagree in shape: {sorted({a.shape for a in arrays})}")
    return np.stack(arrays)


def format_table(names, result, bias_before, bias_after) -> str:
    lines = [f"{'camera':<10} {'keypoints':>9} {'rot deg':>8} {'move cm':>8} {'median px':>15} {'bias px (l-o-o)':>17}"]
    for c, name in enumerate(names):
        before, after = np.linalg.norm(bias_before[c]), np.linalg.norm(bias_after[c])
        lines.append(f"{name:<10} {result.observations[c]:>9d} {result.rotation_deg[c]:>8.2f} "
                     f"{100 * result.centre_shift_m[c]:>8.1f} {result.residual_before_px[c]:>6.2f} -> {result.residual_after_px[c]:<5.2f} "
                     f"{before:>7.2f} -> {after:<6.2f}")  # fmt: skip
    return "\n".join(lines)


def _write_annots(root: Path, cameras) -> None:
    from neuralbody.data.writer import cameras_to_annots, save_annots
    from neuralbody.io.safe_load import load_npy_object

    path = root / "annots.npy"
    annots = load_npy_object(path)  # pickled dict: numpy arrays and plain values only
    annots["cams"] = cameras_to_annots(cameras)
    backup = root / BACKUP_NAME
    if not backup.exists():
        shutil.copy2(path, backup)
    save_annots(path, annots)


def run(args: argparse.Namespace) -> int:
    from neuralbody.cli.fit import parse_frames
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.camera_refinement import refine_extrinsics, signed_bias

    root = args.data
    if args.restore:
        backup = root / BACKUP_NAME
        if not backup.is_file():
            raise FileNotFoundError(f"nothing to restore: {backup} not found (the cameras were never refined here)")
        shutil.copy2(backup, root / "annots.npy")
        print(f"restored {root / 'annots.npy'} from {backup}; re-run neuralbody fit {root}")
        return 0
    capture = read_capture(root)
    frames = parse_frames(args.frames, capture.num_frames)
    keypoints = load_keypoint_sequence(capture, args.keypoints or root / "keypoints2d", frames)
    log.info("refining %d cameras from %d frames of keypoints", capture.num_views, keypoints.shape[0])
    result = refine_extrinsics(capture.cameras, keypoints, prior_rotation_deg=args.prior_rotation_deg,
                               prior_translation_m=args.prior_translation_m)  # fmt: skip
    names = [camera.name or str(c) for c, camera in enumerate(capture.cameras)]
    can_bias = capture.num_views >= 3
    bias_before = signed_bias(capture.cameras, keypoints) if can_bias else np.full((capture.num_views, 2), np.nan)
    bias_after = signed_bias(result.cameras, keypoints) if can_bias else np.full((capture.num_views, 2), np.nan)
    print(format_table(names, result, bias_before, bias_after))
    report = {
        "frames": keypoints.shape[0], "points": result.points,
        "cameras": {
            name: {
                "keypoints": int(result.observations[c]), "rotation_deg": float(result.rotation_deg[c]),
                "centre_shift_m": float(result.centre_shift_m[c]),
                "median_residual_px": [float(result.residual_before_px[c]), float(result.residual_after_px[c])],
                "leave_one_out_bias_px": [bias_before[c].tolist(), bias_after[c].tolist()],
            }
            for c, name in enumerate(names)
        },
    }  # fmt: skip
    if args.dry_run:
        print("dry run: annots.npy unchanged")
        return 0
    _write_annots(root, result.cameras)
    (root / "refine_cameras.json").write_text(json.dumps(report, indent=2))
    print(f"wrote the refined cameras to {root / 'annots.npy'} (original kept as {root / BACKUP_NAME})")
    if (root / "params").is_dir() or (root / "vertices").is_dir():
        print(f"the body fits in {root} were made with the old cameras: re-run neuralbody fit {root}")
    return 0
