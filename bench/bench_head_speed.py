"""Seconds to animate one head-avatar frame: the slow render (the oracle) against the fast one.

Usage::

    python bench/bench_head_speed.py [--work DIR] [--res 256] [--frames 5] [--threads 1,2]

Needs ``bench/bench_head.py``'s work folder (``WORK/data`` and the trained ``WORK/run_imavatar``,
``WORK/run_nerf-expr``). For each model, on ``--frames`` held-out frames (the last frames of
the ``strong`` split, then of ``test``), seen by ``animate-head``'s default camera (frontal,
5 degrees up) at ``--res`` x ``--res``:

* ``slow``: :func:`neuralbody.head.evaluation.render_image` (what ``animate-head`` used
  before), torch's intra-op threads set to each entry of ``--threads``;
* ``fast``: :func:`neuralbody.head.fast_render.render_image_fast` with that many worker threads
  (one torch thread each);

and prints the median seconds a frame and the PSNR of the fast image against the slow image
(dB; ``exact`` when equal, bit for bit), the largest absolute pixel difference too. One
process; the occupancy build and everything of a frame is in its time.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_head_speed")


def _psnr_text(fast: list[np.ndarray], slow: list[np.ndarray]) -> tuple[str, float]:
    mse = float(np.mean([np.mean((f - s) ** 2) for f, s in zip(fast, slow)]))
    largest = float(max(np.abs(f - s).max() for f, s in zip(fast, slow)))
    return ("exact" if mse == 0.0 else f"{10.0 * math.log10(1.0 / mse):.1f}"), largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_head")
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default="imavatar,nerf-expr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from neuralbody.head.camera_path import orbit_camera
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.evaluation import render_image
    from neuralbody.head.fast_render import render_image_fast
    from neuralbody.head.frame import head_frame
    from neuralbody.head.training import load_run

    capture = read_head_capture(args.work / "data")
    indices = (capture.split("strong")[::-1] + capture.split("test")[::-1])[: args.frames]
    camera = orbit_camera(0.0, math.radians(5.0), args.res, name="animate")
    print(f"\nhead avatars, {args.res}x{args.res}, frames {indices}, median seconds a frame (shared 2-core machine)")
    print(f"{'model':10s} {'threads':>7s} {'slow s':>7s} {'fast s':>7s} {'speed-up':>8s} {'PSNR fast/slow':>14s} "
          f"{'max |diff|':>10s}")
    for model in args.models.split(","):
        avatar, rig, _, _ = load_run(args.work / f"run_{model}")
        frames = [head_frame(rig, capture.params(i)) for i in indices]
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            slow = [render_image(avatar, f, camera) for f in frames]
            torch.set_num_threads(1)
            fast = [render_image_fast(avatar, f, camera, workers=threads) for f in frames]
            slow_s = statistics.median(r.seconds for r in slow)
            fast_s = statistics.median(r.seconds for r in fast)
            quality, largest = _psnr_text([r.rgb for r in fast], [r.rgb for r in slow])
            print(f"{model:10s} {threads:7d} {slow_s:7.2f} {fast_s:7.2f} {slow_s / fast_s:7.2f}x {quality:>14s} "
                  f"{largest:10.2e}")


if __name__ == "__main__":
    main()
