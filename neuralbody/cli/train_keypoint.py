"""``neuralbody train-keypoint CORPUS --out RUN [--encoding relative|global]``: train one KeypointNeRF for everyone in a corpus.

Data-parallel on several processes: ``torchrun --nproc_per_node N -m neuralbody.cli.main train-keypoint
CORPUS --out RUN ...`` (one rank per GPU, or gloo on the CPU; see :mod:`neuralbody.training.distributed`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "train KeypointNeRF (a renderer of unseen people from 3 views) on a corpus (checkpoints, --resume)"

log = logging.getLogger("neuralbody.train_keypoint")

FLAGS = ("encoding", "steps", "batch", "rays", "samples", "inputs", "lr", "ckpt_every", "seed", "minutes", "cpu_minutes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", type=Path, help="corpus folder (neuralbody synth-corpus)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (config.json, checkpoint.pt, log.csv)")
    parser.add_argument("--encoding", choices=("relative", "global"), default=None,
                        help="spatial encoding: relative to the keypoints (KeypointNeRF; default) or global (pixelNeRF)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default 2000)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock training budget, minutes")
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="budget of the training process's CPU time, minutes (the one to use on a shared machine)")
    parser.add_argument("--batch", type=int, default=None, help="frames per step (default 1)")
    parser.add_argument("--rays", type=int, default=None, help="target rays per frame (default 1024)")
    parser.add_argument("--samples", type=int, default=None, help="samples per ray inside the box (default 48)")
    parser.add_argument("--inputs", type=int, default=None, help="input views per frame (default 3)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="model option override, e.g. --option channels=16 or --option 'view_mlp=[64]' (repeatable)")
    parser.add_argument("--ckpt-every", type=int, default=None, help="checkpoint interval, steps (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")


def build_config(args: argparse.Namespace):
    """The run's KeypointTrainConfig: the saved one on --resume (--steps, --minutes, --cpu-minutes override), else
    from the flags (a time budget alone lifts the step limit)."""
    from neuralbody.cli.arguments import resume_budget
    from neuralbody.keypoint_nerf.train import CONFIG_NAME, KeypointTrainConfig

    if not (args.corpus / "corpus.json").is_file():
        raise FileNotFoundError(f"{args.corpus}: not a corpus folder (no corpus.json); make one with neuralbody synth-corpus")
    if args.resume and (args.out / CONFIG_NAME).is_file():
        config = KeypointTrainConfig.from_json(args.out / CONFIG_NAME)
        config.corpus, config.out = str(args.corpus.resolve()), str(args.out)
        resume_budget(config, args)
        if args.device != "auto":
            config.device = args.device
        return config
    from neuralbody.cli.arguments import parse_options, steps_for_budget

    fields = {"corpus": str(args.corpus.resolve()), "out": str(args.out), "device": args.device,
              "model_options": parse_options(args.option, example="channels=16")}
    for flag in FLAGS:
        if getattr(args, flag) is not None:
            fields["num_inputs" if flag == "inputs" else flag] = getattr(args, flag)
    if steps_for_budget(args) is not None:
        fields["steps"] = steps_for_budget(args)
    return KeypointTrainConfig(**fields)


def run(args: argparse.Namespace) -> int:
    from neuralbody.keypoint_nerf.train import KeypointTrainer
    from neuralbody.training.distributed import init_distributed, shutdown_distributed

    context = init_distributed(args.device)
    try:
        config = build_config(args)
        log.info("training KeypointNeRF (%s encoding) on %s, %d steps%s", config.encoding, config.corpus, config.steps,
                 f", rank {context.rank} of {context.world_size}" if context.enabled else "")  # fmt: skip
        trainer = KeypointTrainer(config, resume=args.resume, progress=not args.no_progress, distributed=context)
        step = trainer.run()
    finally:
        shutdown_distributed()
    if context.is_main:
        print(f"trained KeypointNeRF ({config.encoding}) {step} steps in {trainer.elapsed_s / 60:.1f} min -> {config.out}")
    return 0
