"""``neuralbody train-head DATA --out RUN``: train a head avatar (IMAvatar or nerf-expr) from a head video."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a head avatar (IMAvatar, or the nerf-expr baseline) from a synth-head capture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralbody.head.avatar import MODELS

    parser.add_argument("data", type=Path, help="head capture folder (neuralbody synth-head)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (created)")
    parser.add_argument("--model", choices=MODELS, default="imavatar", help="avatar (default imavatar)")
    parser.add_argument("--steps", type=int, default=600, help="total optimisation steps (default 600)")
    parser.add_argument("--rays", type=int, default=512, help="rays per step (default 512)")
    parser.add_argument("--samples", type=int, default=32, help="samples per ray (default 32)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seeds ray sampling (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")


def run(args: argparse.Namespace) -> int:
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.training import CHECKPOINT, TrainSettings, train_head
    from neuralbody.io.errors import InputError

    if args.resume and not (args.out / CHECKPOINT).is_file():
        raise InputError(args.out, f"has no {CHECKPOINT} to resume", "drop --resume to start a new run")
    if not args.resume and (args.out / CHECKPOINT).is_file():
        raise InputError(args.out, "already holds a run", "add --resume to continue it, or give a new --out")
    capture = read_head_capture(args.data)
    settings = TrainSettings(model=args.model, steps=args.steps, rays=args.rays, samples=args.samples,
                             checkpoint_every=args.checkpoint_every, seed=args.seed)
    run_dir = train_head(capture, args.out, settings, resume=args.resume)
    print(f"train-head: {args.model} {args.steps} steps -> {run_dir}")
    return 0
