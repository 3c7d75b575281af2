"""``neuralbody eval RUN``: Neural Body's metrics on held-out cameras (training and unseen poses).

Before rendering anything, the vertices of every frame to evaluate are checked (present,
finite, the model's vertex count, in front of the evaluated cameras); the metrics JSON is
rewritten after each split, so a later failure keeps the finished splits' results.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from neuralbody.cli.arguments import parse_index_list

HELP = "evaluate a trained run on held-out cameras: PSNR/SSIM (box-mask and whole image), LPIPS where available"

log = logging.getLogger("neuralbody.eval")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralbody.evaluation.image_metrics import DEFAULT_PROTOCOL, PROTOCOLS

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
    parser.add_argument("--coverage", action="store_true",
                        help="split box PSNR by whether the body point each held-out pixel sees was seen by a training "
                             "camera in that frame (fitted body mesh, ray casting); table, JSON and *_coverage.png")
    parser.add_argument("--coverage-tolerance", type=float, default=None,
                        help="metres a training ray may stop short of the point and still see it (default 0.015)")
    parser.add_argument("--truth", type=Path, default=None,
                        help="score against this capture's images instead of the run's (same cameras, frames and "
                             "resolution; e.g. a synthetic capture rendered again without mask errors)")
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), default=DEFAULT_PROTOCOL,
                        help="zju (default): Neural Body's ZJU-MoCap evaluator, box padded 5 cm along z only, SSIM "
                             "7x7 uniform window, data range 2; nb-custom: its custom-data box, padded on every axis; "
                             "padded-box: this project's earlier figures (every axis, 11x11 Gaussian SSIM, range 1)")


def body_faces(capture, frame: int):
    """(F, 3) faces of the body model whose vertices the capture stores (``body_model`` in neuralbody.json, else Anny)."""
    from neuralbody.body import load_body_model

    name = (capture.meta or {}).get("body_model", "anny")
    try:
        body = load_body_model(name)
    except ValueError as error:
        raise ValueError(f"the faces of the capture's body model {name!r} are needed: {error}") from error
    vertices = capture.load_vertices(frame)
    if vertices.shape[0] != body.num_vertices:
        raise ValueError(
            f"{capture.root}: vertices/ hold {vertices.shape[0]} vertices but body model {name!r} has "
            f"{body.num_vertices}; set body_model in neuralbody.json to the model that was fitted"
        )
    return body.faces.cpu().numpy()


def _check_arguments(args: argparse.Namespace) -> None:
    from neuralbody.io.paths import require_file_path, require_folder_path

    for flag, value in (("--stride", args.stride), ("--max-frames", args.max_frames), ("--samples", args.samples)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if args.json is not None:
        require_file_path(args.json, "--json")
    require_folder_path(args.run / "eval", "eval folder")


def plan_splits(loaded, args: argparse.Namespace, views: list[int] | None) -> dict[str, list[int]]:
    """Frames of each split to evaluate, their vertices checked (InputError before anything is rendered)."""
    from neuralbody.data.checks import validate_frames
    from neuralbody.evaluation.protocol import evaluation_frames, held_out_views

    splits = ("novel_view", "novel_pose") if args.split == "both" else (args.split,)
    plans = {}
    for split in splits:
        try:
            plans[split] = evaluation_frames(loaded, split, frame_stride=args.stride, max_frames=args.max_frames)
        except ValueError as error:  # a split without frames
            if args.split != "both":
                raise
            log.warning("%s skipped: %s", split, error)
    if not plans:
        raise ValueError(f"{args.run}: nothing to evaluate")
    capture = loaded.capture
    if views is None:
        views = held_out_views(capture.meta or {}, capture.num_views, loaded.train_views)
    frames = sorted({frame for chosen in plans.values() for frame in chosen})
    validate_frames(capture, frames, views, expected_count=loaded.model.num_vertices, masks=False)
    return plans


def run(args: argparse.Namespace) -> int:
    from neuralbody.data.capture import read_capture
    from neuralbody.evaluation.protocol import EvalOptions, evaluate_run, format_table, write_eval_json
    from neuralbody.training.checkpoint import load_run

    _check_arguments(args)
    loaded = load_run(args.run, device=args.device)
    views = parse_index_list(args.views, limit=loaded.capture.num_views, what="views")
    overrides = {"num_samples": args.samples, "density_grid_samples": args.samples} if args.samples else {}
    settings = loaded.render_settings(**overrides)
    plans = plan_splits(loaded, args, views)
    faces = body_faces(loaded.capture, loaded.train_frames[0]) if args.coverage else None
    truth = read_capture(args.truth) if args.truth is not None else None
    path = args.json or args.run / "eval" / "metrics.json"
    extra = {"run": str(args.run), "step": loaded.step, "model": loaded.config.model_kind, "num_samples": settings.num_samples,
             "truth": str(args.truth) if args.truth is not None else None}
    results = []
    for split in plans:
        options = EvalOptions(
            frame_stride=args.stride, views=views, settings=settings, max_frames=args.max_frames,
            out_dir=None if args.no_images else args.run / "eval" / split, use_lpips=not args.no_lpips,
            progress=not args.no_progress, coverage_faces=faces, coverage_tolerance=args.coverage_tolerance,
            protocol=args.protocol, truth=truth,
        )
        result = evaluate_run(loaded, split=split, options=options)
        results.append(result)
        write_eval_json(results, path, extra=extra)  # each finished split is kept, whatever happens next
        log.info("%s: %d images in %.1f s -> %s", split, len(result.rows), result.seconds, path)
    print(f"{args.run} ({loaded.config.model_kind}, step {loaded.step})")
    print(format_table(results))
    if args.coverage:
        from neuralbody.evaluation.coverage import format_coverage_table

        for result in results:
            train = ",".join(str(v) for v in loaded.train_views)
            views = ",".join(str(v) for v in result.views)
            print()
            print(format_coverage_table(result.coverage, title=f"{result.split}: coverage of views {views} by training views {train}"))
    print(f"metrics: {path}")
    return 0
