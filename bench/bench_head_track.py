"""Tracking a synthetic head video with ground truth: MediaPipe + the fit, and the fit alone.

Usage::

    python bench/bench_head_track.py [--work DIR] [--seed 5] [--frames 48] [--res 256] [--noise 1.0]

1. **Data.** ``synth-head``'s generator renders Anny's head (seed ``--seed``, the skin and the
   sequences; ``--frames`` training frames from the moving camera, ``--res`` pixels) into
   ``WORK/data`` (reused when present).
2. **The full tracker** (``neuralbody track-head``: MediaPipe's face mesh on every frame, the
   fit, the capture; focal length estimated) on the training frames of ``cam00``, into
   ``WORK/track``; and the fit again on the same landmarks with the true focal length given
   (the seconds of that row are the fit's alone). Needs MediaPipe (the detect extra); skipped
   without it.
3. **The fit alone**: the landmarks of the true head (the landmark map's points on the truly
   posed mesh) projected by the true camera, Gaussian noise of ``--noise`` pixels added, fitted
   the same way (focal estimated).
4. Scores (:mod:`neuralbody.head.track_eval`): detection rate, landmark and truth reprojection
   errors (px), head rotation (deg), jaw opening (deg), facial actions (MAE, on the used
   actions, correlation), focal length (%). Printed and written to ``WORK/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_head_track")


def _truth(capture, frames):
    from neuralbody.head.track_eval import TrackingTruth

    params = [capture.params(f) for f in frames]
    return TrackingTruth(expression=torch.tensor(np.stack([p.expression for p in params]), dtype=torch.float64),
                         pose=torch.tensor(np.stack([p.pose for p in params]), dtype=torch.float64),
                         K=torch.tensor(capture.K[frames[0], 0]), R=torch.tensor(capture.R[frames, 0]),
                         T=torch.tensor(capture.T[frames, 0]))


def _row(name: str, detection: float, seconds: float, scores) -> dict:
    return {"run": name, "detected": detection, "seconds": seconds, **dataclasses.asdict(scores)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_head_track")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--noise", type=float, default=1.0, help="landmark noise of the fit-only run, pixels")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.landmark_map import default_landmark_map
    from neuralbody.head.rig import build_head_rig
    from neuralbody.head.synth import HeadSynthConfig, generate_head_capture
    from neuralbody.head.track_eval import score_tracking, true_landmarks
    from neuralbody.head.track_fit import LandmarkHead, fit_landmarks

    rig, landmarks = build_head_rig(), default_landmark_map()
    head = LandmarkHead(rig, landmarks)
    data = args.work / "data"
    if not (data / "head.json").is_file():
        generate_head_capture(data, HeadSynthConfig(train_frames=args.frames, test_frames=1, strong_frames=1,
                                                    resolution=args.res, seed=args.seed), rig=rig)
    capture = read_head_capture(data)
    frames = capture.split("train")
    truth = _truth(capture, frames)
    rows = []
    try:
        from neuralbody.head.face_mesh import require_face_mesh
        from neuralbody.head.tracking import track_video

        require_face_mesh()
        shutil.rmtree(args.work / "track", ignore_errors=True)
        started = time.perf_counter()
        tracked = track_video(data / "images" / "cam00", args.work / "track", rig, frames=frames, resolution=args.res,
                              progress=False)
        with np.load(args.work / "track" / "tracking.npz") as saved:
            found, detected = saved["found"], saved["landmarks"]
        rows.append(_row("MediaPipe + fit", float(found.mean()), time.perf_counter() - started,
                         score_tracking(rig, head, landmarks, tracked, truth, args.res, args.res)))
        started = time.perf_counter()
        tracked = fit_landmarks(head, torch.from_numpy(detected), torch.from_numpy(found), args.res, args.res,
                                focal=float(truth.K[0, 0]), progress=False)
        rows.append(_row("MediaPipe + fit, true focal given", float(found.mean()), time.perf_counter() - started,
                         score_tracking(rig, head, landmarks, tracked, truth, args.res, args.res)))
    except ImportError as error:
        log.warning("full tracker skipped: %s", error)
    generator = torch.Generator().manual_seed(args.seed)
    true_uv, _ = true_landmarks(rig, landmarks, truth)
    for noise in (0.0, args.noise):
        observed = true_uv + noise * torch.randn(true_uv.shape, generator=generator, dtype=torch.float64)
        started = time.perf_counter()
        tracked = fit_landmarks(head, observed, torch.ones(len(frames), dtype=torch.bool), args.res, args.res,
                                progress=False)
        rows.append(_row(f"fit only, true landmarks + {noise:g} px noise", 1.0, time.perf_counter() - started,
                         score_tracking(rig, head, landmarks, tracked, truth, args.res, args.res)))
    header = ("run", "detected", "landmark_px", "truth_px", "rotation_deg", "jaw_deg", "action_mae", "active_mae",
              "action_r", "focal_pct", "seconds")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row[k] if isinstance(row[k], str) else f"{row[k]:.3g}" for k in header) + " |")
    (args.work / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
