"""``neuralbody synth-head OUT``: a synthetic monocular head video (Anny's head) with ground truth."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

HELP = "render a synthetic monocular video of Anny's head with facial actions, jaw and neck motion (IMAvatar data)"

log = logging.getLogger("neuralbody.synth_head")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--train-frames", type=int, default=48, help="frames of the training video (default 48)")
    parser.add_argument("--test-frames", type=int, default=6, help="held-out frames, training-like expressions (default 6)")
    parser.add_argument("--strong-frames", type=int, default=6,
                        help="held-out frames, stronger expressions and unseen combinations (default 6)")
    parser.add_argument("--res", type=int, default=128, help="square image side in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sequences and the skin (default 0)")
    parser.add_argument("--supersample", type=int, default=2, help="s x s rays per pixel (default 2)")


def run(args: argparse.Namespace) -> int:
    import warp as wp

    from neuralbody.head.synth import HeadSynthConfig, generate_head_capture

    if not args.verbose:
        wp.config.quiet = True
    config = HeadSynthConfig(train_frames=args.train_frames, test_frames=args.test_frames,
                             strong_frames=args.strong_frames, resolution=args.res, seed=args.seed,
                             supersample=args.supersample)
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"{args.out}: exists and is not a folder; give a new folder")
    started = time.perf_counter()
    root = generate_head_capture(args.out, config)
    print(f"synth-head: {config.train_frames} train + {config.test_frames} test + {config.strong_frames} strong "
          f"frames {config.resolution}x{config.resolution} seed={config.seed} in {time.perf_counter() - started:.1f} s "
          f"-> {root}")
    return 0
