"""``neuralbody snarf DATA --out RUN``: learn a canonical occupancy and skinning weights from posed meshes."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from neuralbody.cli.arguments import parse_index_list

HELP = "learn an animatable occupancy (SNARF: forward skinning; or the backward baseline) from posed meshes"

log = logging.getLogger("neuralbody.snarf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="folder of posed meshes: gt_meshes/<n>.npz + params/<n>.npy "
                        "(what `neuralbody synth` writes; see docs/snarf.md)")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (checkpoint.pt)")
    parser.add_argument("--model", choices=("forward", "backward"), default="forward",
                        help="forward: SNARF (canonical weights, default); backward: posed-space weights conditioned "
                             "on the pose (the baseline)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget in minutes (default 5)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what the budget counts: elapsed time (default) or this process's CPU time")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps in all (default: budget only)")
    parser.add_argument("--frames", default=None,
                        help="training frame indices, e.g. 0:27 or 0:40:2 (default: the data's train split, else all)")
    parser.add_argument("--points", type=int, default=4096, help="labelled points per step (default 4096)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--body", default=None, help="body model of the poses (default: the data's, else anny)")
    parser.add_argument("--body-model-path", default=None, help="the SMPL model file, for --body smpl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (budget flags apply)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.io.paths import require_folder_path
    from neuralbody.snarf.posed_meshes import read_posed_meshes
    from neuralbody.snarf.run_files import train_run
    from neuralbody.snarf.training import TrainSettings

    require_folder_path(args.out, "--out")
    if not args.minutes > 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    if args.steps is not None and args.steps < 0 or args.points < 1:
        raise ValueError(f"--steps must be >= 0 and --points >= 1, got {args.steps}, {args.points}")
    data = read_posed_meshes(args.data)
    frames = parse_index_list(args.frames, limit=data.num_frames, what="frames")
    settings = TrainSettings(budget_s=60.0 * args.minutes, clock=args.clock, max_steps=args.steps,
                             points_per_step=args.points, seed=args.seed)
    result = train_run(args.data, args.out, kind=args.model, settings=settings, frames=frames, body_model=args.body,
                       body_model_path=args.body_model_path, resume=args.resume, progress=not args.no_progress)
    state = result.state
    print(f"snarf: {result.kind} model, {state.step} steps ({result.new_steps} now) in {state.spent_s / 60:.1f} min "
          f"({args.clock} clock), last loss {state.last_loss:.4f} -> {result.run_dir}")
    return 0
