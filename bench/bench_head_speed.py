"""Seconds to animate one head-avatar frame: slow and fast volume renders, and IMAvatar's surface render.

Usage::

    python bench/bench_head_speed.py [--work DIR] [--res 256] [--frames 5] [--threads 1,2]
                                     [--renderers slow,fast,surface] [--models imavatar,nerf-expr]

Needs ``bench/bench_head.py``'s work folder (``WORK/data`` and the trained ``WORK/run_imavatar``,
``WORK/run_nerf-expr``). For each model, on ``--frames`` held-out frames (the last frames of
the ``strong`` split, then of ``test``), seen by ``animate-head``'s default camera (frontal,
5 degrees up) at ``--res`` x ``--res``, for each entry of ``--threads``:

* ``slow``: :func:`neuralbody.head.evaluation.render_image` (what ``animate-head`` used
  first), torch's intra-op threads set to the entry;
* ``fast``: :func:`neuralbody.head.fast_render.render_image_fast` (``animate-head --renderer
  volume``) with that many worker threads (one torch thread each);
* ``surface`` (IMAvatar only): :func:`neuralbody.head.surface_render.render_surface`
  (``animate-head``'s default for IMAvatar) with that many worker threads; its one-off cost
  (the level's choice and the extraction, :mod:`neuralbody.head.surface_level`) is printed once.

It prints, per renderer, the median wall seconds a frame, the median CPU seconds a frame (all
threads of the process; on a shared machine the wall time can exceed it), and the PSNR of the
images against the first renderer listed (dB; ``exact`` when equal, bit for bit) with the largest
absolute pixel difference. One process; everything of a frame (the occupancy build, the fold,
the posed mesh) is in its time.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_head_speed")


def _psnr_text(fast: list[np.ndarray], slow: list[np.ndarray]) -> tuple[str, float]:
    mse = float(np.mean([np.mean((f - s) ** 2) for f, s in zip(fast, slow)]))
    largest = float(max(np.abs(f - s).max() for f, s in zip(fast, slow)))
    return ("exact" if mse == 0.0 else f"{10.0 * math.log10(1.0 / mse):.1f}"), largest


def _timed(render, frames: list) -> tuple[list, float, float]:
    """Images of every frame, median wall and median CPU seconds a frame."""
    images, wall, cpu = [], [], []
    for frame in frames:
        start = time.process_time()
        rendered = render(frame)
        cpu.append(time.process_time() - start)
        wall.append(rendered.seconds)
        images.append(rendered.rgb)
    return images, statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_head")
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--renderers", default="slow,fast,surface")
    parser.add_argument("--models", default="imavatar,nerf-expr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from neuralbody.head.avatar import ImAvatar
    from neuralbody.head.camera_path import orbit_camera
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.evaluation import render_image
    from neuralbody.head.fast_render import render_image_fast
    from neuralbody.head.frame import head_frame
    from neuralbody.head.surface_level import choose_level
    from neuralbody.head.surface_render import render_surface
    from neuralbody.head.training import load_run

    capture = read_head_capture(args.work / "data")
    indices = (capture.split("strong")[::-1] + capture.split("test")[::-1])[: args.frames]
    camera = orbit_camera(0.0, math.radians(5.0), args.res, name="animate")
    renderers = args.renderers.split(",")
    print(f"\nhead avatars, {args.res}x{args.res}, frames {indices}, median seconds a frame (shared 2-core machine)")
    against = "PSNR vs " + renderers[0]
    print(f"{'model':10s} {'threads':>7s} {'renderer':>8s} {'wall s':>7s} {'CPU s':>7s} {against:>14s} "
          f"{'max |diff|':>10s}")
    for model in args.models.split(","):
        avatar, rig, _, _ = load_run(args.work / f"run_{model}")
        frames = [head_frame(rig, capture.params(i)) for i in indices]
        surface = None
        if "surface" in renderers and isinstance(avatar, ImAvatar):
            torch.set_num_threads(1)
            start = time.process_time()
            choice = choose_level(avatar, rig, workers=1)
            surface = choice.surface
            print(f"{model}: surface at {surface.level:g}/m ({len(surface.vertices)} vertices): level choice "
                  f"{choice.seconds:.2f} s wall, {time.process_time() - start:.2f} s CPU, of which extraction "
                  f"{surface.seconds:.3f} s (one thread, once a run)")
        for threads in (int(t) for t in args.threads.split(",")):
            draw = {"slow": lambda f: render_image(avatar, f, camera),
                    "fast": lambda f: render_image_fast(avatar, f, camera, workers=threads),
                    "surface": lambda f: render_surface(avatar, surface, f, camera, workers=threads)}
            reference = None
            for name in renderers:
                if name == "surface" and surface is None:
                    continue
                torch.set_num_threads(threads if name == "slow" else 1)
                images, wall, cpu = _timed(draw[name], frames)
                torch.set_num_threads(1)
                reference = images if reference is None else reference
                quality, largest = _psnr_text(images, reference)
                print(f"{model:10s} {threads:7d} {name:>8s} {wall:7.2f} {cpu:7.2f} {quality:>14s} {largest:10.2e}")


if __name__ == "__main__":
    main()
