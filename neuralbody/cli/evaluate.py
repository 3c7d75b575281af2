"""``neuralbody eval RUN``: Neural Body's metrics on held-out cameras (training and unseen poses)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "evaluate a trained run on held-out cameras: PSNR/SSIM (box-mask and whole image), LPIPS where available"

log = logging.getLogger("neuralbody.eval")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody train`")
    parser.add_argument("--split", choices=("novel_view", "novel_pose", "both"), default="both",
                        help="novel_view: training frames, held-out cameras; novel_pose: later frames (default both)")
    parser.add_argument("--stride", type=int, default=30, help="evaluate every n-th frame (ZJU: 30; capped for short captures)")
    parser.add_argument("--max-frames", type=int, default=None, help="at most this many frames per split, spread evenly")
    parser.add_argument("--views", default=None, help="cameras to evaluate, e.g. 1,3,5 (default: the held-out ones)")
    parser.add_argument("--samples", type=int, default=None, help="samples per ray (default: as in training)")
    parser.add_argument("--json", type=Path, default=None, help="metrics JSON (default RUN/eval/metrics.json)")
    parser.add_argument("--no-images", action="store_true", help="do not write render | truth | error strips")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS even where available")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: the run's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from neuralbody.evaluation.protocol import evaluate_run, format_table, write_eval_json
    from neuralbody.training.checkpoint import load_run
    from neuralbody.training.trainer import parse_index_list

    loaded = load_run(args.run, device=args.device)
    views = parse_index_list(args.views, limit=loaded.capture.num_views, what="views")
    overrides = {"num_samples": args.samples, "density_grid_samples": args.samples} if args.samples else {}
    settings = loaded.render_settings(**overrides)
    splits = ("novel_view", "novel_pose") if args.split == "both" else (args.split,)
    results = []
    for split in splits:
        try:
            result = evaluate_run(
                loaded, split=split, frame_stride=args.stride, views=views, settings=settings,
                max_frames=args.max_frames, out_dir=None if args.no_images else args.run / "eval" / split,
                use_lpips=not args.no_lpips, progress=not args.no_progress,
            )
        except ValueError as error:
            if args.split != "both":
                raise
            log.warning("%s skipped: %s", split, error)
            continue
        results.append(result)
        log.info("%s: %d images in %.1f s", split, len(result.rows), result.seconds)
    if not results:
        raise ValueError(f"{args.run}: nothing to evaluate")
    path = args.json or args.run / "eval" / "metrics.json"
    extra = {"run": str(args.run), "step": loaded.step, "model": loaded.config.model_kind, "num_samples": settings.num_samples}
    write_eval_json(results, path, extra=extra)
    print(f"{args.run} ({loaded.config.model_kind}, step {loaded.step})")
    print(format_table(results))
    print(f"metrics: {path}")
    return 0
