"""``neuralbody synth OUT``: render a synthetic multi-view capture in ZJU-MoCap layout."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

HELP = "render a synthetic multi-view capture of a moving, textured body (ZJU-MoCap layout)"

log = logging.getLogger("neuralbody.synth")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralbody.synth.motion import MOTIONS

    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--frames", type=int, default=30, help="number of frames (default 30)")
    parser.add_argument("--views", type=int, default=8, help="number of cameras on the ring (default 8)")
    parser.add_argument("--res", type=int, default=256, help="square image side in pixels (default 256)")
    parser.add_argument("--motion", choices=MOTIONS, default="sway", help="procedural motion (default sway)")
    parser.add_argument("--seed", type=int, default=0, help="seeds appearance, shape, motion, lens distortion")
    parser.add_argument("--distortion", action="store_true", help="render through small per-camera lens distortion")
    parser.add_argument("--body", default="anny", help="body model (default anny)")
    parser.add_argument("--supersample", type=int, default=2, help="s x s samples per pixel (default 2)")
    parser.add_argument("--train-views", type=int, default=4, help="training cameras, spread evenly (default 4)")


def run(args: argparse.Namespace) -> int:
    import warp as wp

    from neuralbody.synth import generate

    if not args.verbose:
        wp.config.quiet = True  # keep Warp's start-up banner off stdout

    config = generate.SynthConfig(
        frames=args.frames,
        views=args.views,
        resolution=args.res,
        motion=args.motion,
        seed=args.seed,
        distortion=args.distortion,
        body=args.body,
        supersample=args.supersample,
        train_views=args.train_views,
    )
    started = time.perf_counter()
    log.info("loading body model %r", config.body)
    body = generate.load_body(config.body)
    loaded = time.perf_counter()
    log.info(
        "rendering %d frames x %d views at %dx%d into %s",
        config.frames,
        config.views,
        config.resolution,
        config.resolution,
        args.out,
    )
    root = generate.generate_capture(args.out, config, body=body)
    done = time.perf_counter()
    meta = json.loads((root / "neuralbody.json").read_text())
    log.info("wrote %s", root.resolve())
    print(
        f"synth: {config.frames} frames x {config.views} views {config.resolution}x{config.resolution} "
        f"motion={config.motion} seed={config.seed} distortion={'on' if config.distortion else 'off'} "
        f"train cams {meta['train_cameras']} test cams {meta['test_cameras']} "
        f"in {done - loaded:.1f} s (+{loaded - started:.1f} s body model) -> {root}"
    )
    return 0
