"""``neuralbody train-recon CORPUS --model pifu|mvms --out RUN``: train one reconstruction model for everyone in a corpus.

Data-parallel on several processes: ``torchrun --nproc_per_node N -m neuralbody.cli.main train-recon
CORPUS --out RUN ...`` (one rank per GPU, or gloo on the CPU; see :mod:`neuralbody.training.distributed`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from neuralbody.cli.arguments import TIMED_STEPS_CAP, parse_options, resume_budget, steps_for_budget

HELP = "train PIFu or the multi-view multi-scale implicit function on a corpus (checkpoints, --resume, time budget)"

log = logging.getLogger("neuralbody.train_recon")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralbody.recon.model import PRESETS

    parser.add_argument("corpus", type=Path, help="corpus folder (neuralbody synth-corpus)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (config.json, checkpoint.pt, log.csv, val.csv)")
    parser.add_argument("--model", choices=tuple(PRESETS), default="mvms",
                        help="pifu (one view, one scale), mvms (several views and scales; default), mvms-1scale, "
                             "mvms-body (mvms reading the posed body's signed distance too: PaMIR's prior)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimisation steps (default 3000; unlimited with --minutes or --cpu-minutes alone)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock training budget in minutes")
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="budget of the training process's CPU time in minutes (all its threads; on a shared "
                             "machine, the work a run gets whatever the load)")
    parser.add_argument("--batch", type=int, default=None, help="frames per step (default 4)")
    parser.add_argument("--points", type=int, default=None, help="occupancy samples per frame (default 2048)")
    parser.add_argument("--views", default=None, metavar="K[,K...]",
                        help="view counts a step draws from, e.g. 1,2,3,4 (default: 1 for pifu; 1-4, mostly 4, for mvms)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="model option override, e.g. --option channels=32 or --option 'scales=[\"s4\"]' (repeatable)")
    parser.add_argument("--val-every", type=int, default=None, help="validation interval, steps (default 200)")
    parser.add_argument("--ckpt-every", type=int, default=None, help="checkpoint interval, steps (default 200)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores but one)")


def build_config(args: argparse.Namespace):
    """The run's ReconTrainConfig: the saved one on --resume (budget flags override), else from the flags."""
    from neuralbody.recon.train import CONFIG_NAME, ReconTrainConfig

    if args.resume and (args.out / CONFIG_NAME).is_file():
        config = ReconTrainConfig.from_json(args.out / CONFIG_NAME)
        config.corpus, config.out = str(args.corpus.resolve()), str(args.out)  # the folders as given now (moved runs)
        resume_budget(config, args)
        if args.device != "auto":
            config.device = args.device
        return config
    fields = {"corpus": str(args.corpus.resolve()), "out": str(args.out), "model": args.model,
              "model_options": parse_options(args.option, example="channels=32"), "minutes": args.minutes, "cpu_minutes": args.cpu_minutes,
              "device": args.device}  # fmt: skip
    if steps_for_budget(args) is not None:
        fields["steps"] = steps_for_budget(args)
    for flag in ("batch", "points", "lr", "val_every", "ckpt_every", "seed"):
        if getattr(args, flag) is not None:
            fields[flag] = getattr(args, flag)
    if args.views:
        try:
            fields["view_counts"] = tuple(int(v) for v in args.views.split(","))
        except ValueError:
            raise ValueError(f"--views {args.views!r}: expected view counts like 1,2,4") from None
    config = ReconTrainConfig(**fields)
    config.model_config()  # unknown or bad options fail here, before any work
    return config


def budget_text(config) -> str:
    """The run's budgets in words, e.g. "30.0 CPU min" or "3000 steps, 10.0 min"."""
    parts = [f"{config.steps} steps"] if config.steps < TIMED_STEPS_CAP else []
    parts += [f"{config.minutes} min"] if config.minutes else []
    parts += [f"{config.cpu_minutes} CPU min"] if config.cpu_minutes else []
    return ", ".join(parts) or f"{config.steps} steps"


def run(args: argparse.Namespace) -> int:
    import torch

    from neuralbody.recon.train import ReconTrainer
    from neuralbody.training.distributed import init_distributed, shutdown_distributed

    if args.threads:
        torch.set_num_threads(args.threads)
    context = init_distributed(args.device)
    try:
        config = build_config(args)
        log.info("training %s on %s (%s)%s", config.model, config.corpus,
                 budget_text(config),
                 f", rank {context.rank} of {context.world_size}" if context.enabled else "")  # fmt: skip
        result = ReconTrainer(config, resume=args.resume, progress=not args.no_progress, distributed=context).run()
    finally:
        shutdown_distributed()
    if context.is_main:
        val = f", held-out occupancy IoU {result.val_iou:.4f}" if result.val_iou is not None else ""
        print(f"trained {config.model} {result.step} steps in {result.elapsed_s / 60:.1f} min "
              f"({result.cpu_s / 60:.1f} CPU min): loss "
              f"{result.last_loss:.4f}{val} -> {result.run_dir}")
    return 0
