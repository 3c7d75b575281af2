"""``neuralbody train-gen CORPUS --out RUN``: learn a generative model of clothed people (gDNA) from a corpus.

Data-parallel on several processes: ``torchrun --nproc_per_node N -m neuralbody.cli.main train-gen
CORPUS --out RUN`` (gloo on the CPU; every rank draws its own scans, gradients are averaged).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "learn a generative model of clothed, animatable people (gDNA) from the posed meshes of a corpus"

log = logging.getLogger("neuralbody.train_gen")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", type=Path, help="corpus folder (`neuralbody synth-corpus`); trains on its train split")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (checkpoint.pt)")
    parser.add_argument("--steps", type=int, default=3000, help="steps in all, both stages (default 3000)")
    parser.add_argument("--detail-fraction", type=float, default=0.3,
                        help="share of the steps in the detail (normal) stage (default 0.3)")
    parser.add_argument("--scans-per-step", type=int, default=4, help="scans a step (default 4)")
    parser.add_argument("--points", type=int, default=512, help="points a scan a step (default 512)")
    parser.add_argument("--max-scans", type=int, default=None, help="train on the first N scans only (default all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--skinning", choices=("fixed", "learned"), default="fixed",
                        help="fixed: the body model's weights of each shape; learned: a shape-conditioned correction "
                             "learned in the coarse stage (a new run's; a resumed run keeps its own; default fixed)")
    parser.add_argument("--research-every", type=int, default=10,
                        help="learned skinning: a cold correspondence search every N coarse steps, warm between "
                             "(default 10)")
    parser.add_argument("--targets", type=int, default=32768,
                        help="labelled points and canonical free-space points prepared per scan, surface points half as "
                        "many (default 32768; with few the coarse network memorises them; a resumed run keeps its own)")
    parser.add_argument("--adversarial", type=float, default=0.0, metavar="W",
                        help="weight of gDNA's adversarial loss on normal maps in the detail stage (a patch "
                             "discriminator on 96-pixel views of the scans; fixed skinning only; default 0: off)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (to --steps in all)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.gdna.run_files import train_run
    from neuralbody.gdna.training import TrainSettings
    from neuralbody.gdna.training_data import TargetSizes
    from neuralbody.io.paths import require_folder_path
    from neuralbody.training.distributed import init_distributed, shutdown_distributed

    require_folder_path(args.out, "--out")
    if args.steps < 0 or args.scans_per_step < 1 or args.points < 1 or (args.max_scans is not None and args.max_scans < 1):
        raise ValueError(f"--steps must be >= 0, --scans-per-step, --points and --max-scans >= 1; got {args.steps}, "
                         f"{args.scans_per_step}, {args.points}, {args.max_scans}")
    if args.targets < 2:
        raise ValueError(f"--targets must be >= 2, got {args.targets}")
    if args.research_every < 1:
        raise ValueError(f"--research-every must be >= 1, got {args.research_every}")
    if args.adversarial < 0:
        raise ValueError(f"--adversarial must be >= 0, got {args.adversarial}")
    if not 0.0 <= args.detail_fraction <= 1.0:
        raise ValueError(f"--detail-fraction must be in [0, 1], got {args.detail_fraction}")
    settings = TrainSettings(steps=args.steps, detail_fraction=args.detail_fraction,
                             scans_per_step=args.scans_per_step, points_per_scan=args.points, seed=args.seed,
                             research_every=args.research_every, adversarial_weight=args.adversarial)
    context = init_distributed("cpu")
    try:
        sizes = TargetSizes(occupancy=args.targets, surface=args.targets // 2, free=args.targets)
        result = train_run(args.corpus, args.out, settings, sizes=sizes, max_scans=args.max_scans, resume=args.resume,
                           context=context, progress=not args.no_progress, skinning=args.skinning)
    finally:
        shutdown_distributed()
    if context.is_main:
        state = result.state
        print(f"train-gen: {state.step} steps ({result.new_steps} now) in {state.spent_s / 60:.1f} min, "
              f"last loss {state.last_loss:.4f} -> {result.run_dir}")
    return 0
