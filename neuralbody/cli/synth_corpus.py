"""``neuralbody synth-corpus OUT --subjects N``: many clothed people, each a small multi-view capture, with splits."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

HELP = "render a multi-person training corpus (clothed people, calibrated views, clothed surfaces, occupancy samples)"

log = logging.getLogger("neuralbody.synth_corpus")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="corpus folder (created; complete people already there are kept)")
    parser.add_argument("--subjects", type=int, default=32, help="number of people (default 32)")
    parser.add_argument("--frames", type=int, default=3, help="frames per person (default 3)")
    parser.add_argument("--heldout-pose-frames", type=int, default=1,
                        help="frames per person in a second, held-out motion (default 1)")
    parser.add_argument("--heldout-people", type=float, default=0.2,
                        help="fraction of the people held out whole (default 0.2)")
    parser.add_argument("--views", type=int, default=8, help="cameras on each person's ring (default 8)")
    parser.add_argument("--res", type=int, default=256, help="square image side in pixels (default 256)")
    parser.add_argument("--supersample", type=int, default=2, help="s x s rays a pixel (default 2)")
    parser.add_argument("--near-samples", type=int, default=12000, help="occupancy samples near the surface per frame")
    parser.add_argument("--uniform-samples", type=int, default=4000, help="occupancy samples uniform in the box per frame")
    parser.add_argument("--seed", type=int, default=0, help="seeds people, clothes, poses and cameras (default 0)")
    parser.add_argument("--body", default="anny", help="body model (default anny)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.synth.corpus import CorpusConfig, generate_corpus
    from neuralbody.synth.generate import load_body
    from neuralbody.synth.occupancy import OccupancySampling

    config = CorpusConfig(
        subjects=args.subjects,
        frames=args.frames,
        heldout_pose_frames=args.heldout_pose_frames,
        heldout_people=args.heldout_people,
        views=args.views,
        resolution=args.res,
        supersample=args.supersample,
        sampling=OccupancySampling(near=args.near_samples, uniform=args.uniform_samples),
        seed=args.seed,
        body=args.body,
    )
    started = time.perf_counter()
    body = load_body(config.body)
    root = generate_corpus(args.out, config, body=body, progress=not args.no_progress)
    held = config.num_heldout_people()
    print(f"synth-corpus: {config.subjects} people ({config.subjects - held} train, {held} held out) x "
          f"{config.frames} frames ({config.heldout_pose_frames} in a held-out motion) x {config.views} views "
          f"{config.resolution}x{config.resolution} in {time.perf_counter() - started:.1f} s -> {root}")
    return 0
