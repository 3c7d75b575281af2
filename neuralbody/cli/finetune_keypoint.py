"""``neuralbody finetune-keypoint RUN DATA --out RUN2 --views 0,2,4,6 --frames 0:20 [--minutes M | --steps N]``:
fine-tune a generalisable KeypointNeRF (a ``train-keypoint`` run) on one capture's training cameras
(:mod:`neuralbody.keypoint_nerf.finetune`); ``render-keypoint RUN2 ...`` renders with the result."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "fine-tune a trained KeypointNeRF on one capture's training cameras (checkpoints, --resume, --minutes)"

log = logging.getLogger("neuralbody.finetune_keypoint")

DEFAULT_STEPS = 500
FLAGS = ("batch", "rays", "samples", "lr", "ckpt_every", "seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody train-keypoint` (the starting model)")
    parser.add_argument("data", type=Path, help="capture folder in ZJU-MoCap layout, with masks and posed body vertices")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (config.json, checkpoint.pt, log.csv)")
    parser.add_argument("--views", required=True, help="training cameras (inputs and targets), e.g. 0,2,4,6")
    parser.add_argument("--frames", required=True, help="training frames, e.g. 0:20 or 0:97:2")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimisation steps (default {DEFAULT_STEPS}; with --minutes or --cpu-minutes alone, unlimited)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock training budget in minutes")
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="budget of the training process's CPU time, minutes (the one to use on a shared machine)")
    parser.add_argument("--inputs", type=int, default=None,
                        help="input views per step, the target being another training view (default min(3, views - 1))")
    parser.add_argument("--batch", type=int, default=None, help="frames per step (default 1)")
    parser.add_argument("--rays", type=int, default=None, help="target rays per frame (default 1024)")
    parser.add_argument("--samples", type=int, default=None, help="samples per ray inside the box (default 48)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 5e-4, decayed to a tenth)")
    parser.add_argument("--ckpt-every", type=int, default=None, help="checkpoint interval, steps (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")


def build_config(args: argparse.Namespace):
    """The run's FinetuneConfig: the saved one on --resume (--steps, --minutes, --cpu-minutes override), else from the flags."""
    from neuralbody.cli.arguments import parse_index_list, resume_budget, steps_for_budget
    from neuralbody.data.capture import read_capture
    from neuralbody.keypoint_nerf.finetune import FINETUNE_LR, FinetuneConfig, init_model_fields
    from neuralbody.keypoint_nerf.train import CHECKPOINT_NAME, CONFIG_NAME

    if args.resume and (args.out / CONFIG_NAME).is_file():
        config = FinetuneConfig.from_json(args.out / CONFIG_NAME)
        resume_budget(config, args)
        return config
    if not (args.run / CHECKPOINT_NAME).is_file():
        raise FileNotFoundError(f"{args.run / CHECKPOINT_NAME} not found; train a model with neuralbody train-keypoint")
    capture = read_capture(args.data)
    views = parse_index_list(args.views, limit=capture.num_views, what="views")
    frames = parse_index_list(args.frames, limit=capture.num_frames, what="frames")
    steps = steps_for_budget(args, DEFAULT_STEPS)
    fields = {"corpus": str(args.data.resolve()), "out": str(args.out), "init": str(args.run.resolve()), "views": views,
              "frames": frames, "steps": steps, "minutes": args.minutes, "cpu_minutes": args.cpu_minutes, "device": args.device, "lr": FINETUNE_LR,
              "num_inputs": args.inputs if args.inputs is not None else max(1, min(3, len(views) - 1)),
              **init_model_fields(str(args.run))}  # fmt: skip
    for flag in FLAGS:
        if getattr(args, flag) is not None:
            fields[flag] = getattr(args, flag)
    return FinetuneConfig(**fields)


def run(args: argparse.Namespace) -> int:
    from neuralbody.keypoint_nerf.finetune import FinetuneTrainer

    config = build_config(args)
    budget = (f"{config.minutes:g} min" if config.minutes is not None
              else f"{config.cpu_minutes:g} CPU min" if config.cpu_minutes is not None else f"{config.steps} steps")
    log.info("fine-tuning %s on %s, views %s, %d frames, %s", config.init, config.corpus, config.views, len(config.frames), budget)
    trainer = FinetuneTrainer(config, resume=args.resume, progress=not args.no_progress)
    step = trainer.run()
    print(f"fine-tuned KeypointNeRF ({config.encoding}) to step {step} in {trainer.elapsed_s / 60:.1f} min -> {config.out}")
    return 0
