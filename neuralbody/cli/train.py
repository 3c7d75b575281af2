"""``neuralbody train DATA --out RUN``: fit Neural Body (or the baseline) to a capture.

Data-parallel on several processes: ``torchrun --nproc_per_node N -m neuralbody.cli.main train
DATA --out RUN ...`` (one rank per GPU, or gloo on the CPU; see
:mod:`neuralbody.training.distributed`). Large captures stream their training images through
a bounded cache automatically (``--stream`` / ``--preload`` force either).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from neuralbody.cli.arguments import parse_index_list, parse_options

HELP = "train Neural Body on a capture (checkpoints, validation renders, --resume, time budget)"

log = logging.getLogger("neuralbody.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="capture folder (ZJU-MoCap layout)")
    parser.add_argument("--out", required=True, help="run folder to write (config.json, checkpoint.pt, log.csv, val/)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default 20000)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock training budget in minutes")
    parser.add_argument("--config", choices=("fast", "faithful"), default="fast", help="preset (default fast)")
    parser.add_argument("--model", choices=("neuralbody", "frame_nerf", "avatar"), default="neuralbody",
                        help="model kind: neuralbody, frame_nerf (baseline) or avatar (animatable, canonical space)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="model option override, e.g. --option voxel_size=0.008 (repeatable)")
    parser.add_argument("--scale", type=float, default=None, help="image scale (0.5 = half resolution)")
    parser.add_argument("--views", default=None, help="training cameras, e.g. 0,2,4 (default: the capture's split)")
    parser.add_argument("--frames", default=None, help="training frames, e.g. 0:20 or 0,5,10 (default: the capture's split)")
    parser.add_argument("--val-view", type=int, default=None, help="held-out camera for validation renders")
    parser.add_argument("--rays", type=int, default=None, help="rays per step")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate")
    parser.add_argument("--code-lr-scale", type=float, default=None, help="learning-rate multiplier of the latent codes")
    parser.add_argument("--samples", type=int, default=None, help="samples per ray")
    parser.add_argument("--border-px", type=int, default=None,
                        help="exclude training rays within this many pixels of the mask border (default: 0 for "
                             "captures whose masks are exact, such as synthetic ones; else the masks are judged "
                             "against the posed bodies: colour untrusted near the outline, opacity supervised everywhere)")
    parser.add_argument("--acc-loss-weight", type=float, default=None,
                        help="weight of the opacity-vs-mask loss (default 0.1)")
    parser.add_argument("--distortion-loss-weight", type=float, default=None,
                        help="weight of the distortion loss that sharpens the surface (1/metres; default 0: off)")
    parser.add_argument("--val-every", type=int, default=None, help="validation render interval, steps")
    parser.add_argument("--ckpt-every", type=int, default=None, help="checkpoint interval, steps")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: all cores but one, or $NEURALBODY_THREADS)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stream", dest="image_source", action="store_const", const="stream",
                        help="stream training images through a bounded cache (default: only when they do not fit)")
    source.add_argument("--preload", dest="image_source", action="store_const", const="preload",
                        help="decode every training image up front (default: when they fit --preload-budget-gb)")
    parser.add_argument("--preload-budget-gb", type=float, default=None,
                        help="preload when the decoded training images are below this size (default 1.5)")
    parser.add_argument("--cache-gb", type=float, default=None, help="streaming image cache size, GB (default 1.0)")


def build_config(args: argparse.Namespace):
    """The run's TrainConfig: the saved one on --resume (budget flags override), else from flags.

    Arguments are checked before anything is read (``--out`` must be a folder path; numbers
    in range), the config before anything is trained (:meth:`TrainConfig.validate`).
    """
    from neuralbody.data.capture import read_capture
    from neuralbody.io.paths import require_folder_path
    from neuralbody.training.checkpoint import CONFIG_NAME
    from neuralbody.training.config import TrainConfig

    run_dir = require_folder_path(args.out, "--out")
    for flag in ("border_px", "acc_loss_weight", "distortion_loss_weight"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.resume and (run_dir / CONFIG_NAME).is_file():
        config = TrainConfig.from_json(run_dir / CONFIG_NAME)
        config.out = str(run_dir)  # the folder given, also when the run was moved since it was saved
        if args.steps is not None:
            config.steps = args.steps
        if args.minutes is not None:
            config.minutes = args.minutes
        if args.device != "auto":
            config.device = args.device
        _apply_image_flags(config, args)
        return config.validate(), None
    scale = args.scale if args.scale is not None else 1.0
    capture = read_capture(args.data, scale=scale)
    fields = {
        "data": str(Path(args.data).resolve()),
        "out": str(run_dir),
        "model_kind": args.model,
        "model_options": parse_options(args.option),
        "scale": scale,
        "device": args.device,
        "minutes": args.minutes,
    }
    for flag, name in (("steps", "steps"), ("rays", "rays_per_step"), ("lr", "lr"), ("samples", "num_samples"),
                       ("val_every", "val_every"), ("ckpt_every", "ckpt_every"), ("seed", "seed"), ("code_lr_scale", "code_lr_scale"),
                       ("val_view", "val_view"), ("border_px", "border_px"), ("acc_loss_weight", "acc_loss_weight"),
                       ("distortion_loss_weight", "distortion_loss_weight")):
        value = getattr(args, flag)
        if value is not None:
            fields[name] = value
    if args.minutes is not None and args.steps is None:
        fields["steps"] = 10**9
    frames = parse_index_list(args.frames, limit=capture.num_frames, what="frames")
    views = parse_index_list(args.views, limit=capture.num_views, what="views")
    _warn_unseen_pose_frames(capture, frames)
    if frames:
        fields["train_frames"] = frames
    if views:
        fields["train_views"] = views
    config = TrainConfig.from_preset(args.config, **fields)
    _apply_image_flags(config, args)
    return config.validate(), capture


def _warn_unseen_pose_frames(capture, frames: list[int] | None) -> None:
    """Say when --frames takes frames the capture keeps for the novel-pose evaluation (``frames.novel_pose``)."""
    ranges = (capture.meta or {}).get("frames")
    if not frames or not isinstance(ranges, dict) or not isinstance(ranges.get("novel_pose"), list):
        return
    start, end = (int(x) for x in ranges["novel_pose"][:2])
    taken = [f for f in frames if start <= f < end]
    if taken:
        log.warning("--frames includes frames %s that the capture keeps for novel-pose evaluation (%d..%d); "
                    "`neuralbody eval` will not score them as unseen poses", taken[:8], start, end - 1)  # fmt: skip


def _apply_image_flags(config, args: argparse.Namespace) -> None:
    if getattr(args, "image_source", None):
        config.image_source = args.image_source
    if getattr(args, "preload_budget_gb", None) is not None:
        config.preload_budget_gb = args.preload_budget_gb
    if getattr(args, "cache_gb", None) is not None:
        config.cache_gb = args.cache_gb


def run(args: argparse.Namespace) -> int:
    from neuralbody.training.distributed import init_distributed, shutdown_distributed
    from neuralbody.training.trainer import train

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    context = init_distributed(args.device)
    try:
        return _train(args, context, train)
    finally:
        shutdown_distributed()


def _train(args: argparse.Namespace, context, train) -> int:
    config, capture = build_config(args)
    log.info(
        "training %s (%s) on %s: frames %s, views %s, %s",
        config.model_kind, config.preset, config.data,
        f"{config.train_frames[0]}..{config.train_frames[-1]}" if config.train_frames else "default",
        config.train_views or "default",
        f"{config.minutes} min" if config.minutes else f"{config.steps} steps",
    )
    if context.enabled:
        log.info("data-parallel run: rank %d of %d", context.rank, context.world_size)
    result = train(config, resume=args.resume, progress=not args.no_progress, capture=capture, distributed=context)
    if not context.is_main:
        return 0
    if result.new_steps == 0:
        print(f"nothing trained: {result.run_dir} is already at step {result.step} ({result.elapsed_s / 60:.1f} min); "
              "pass a larger --steps or --minutes to train on")  # fmt: skip
        return 0
    val = f", held-out box PSNR {result.val_psnr:.2f} dB" if result.val_psnr is not None else ""
    print(
        f"trained {result.step} steps in {result.elapsed_s / 60:.1f} min: loss {result.last_loss:.4f}, "
        f"train PSNR {result.last_psnr:.2f} dB{val} -> {result.run_dir}"
    )
    return 0
