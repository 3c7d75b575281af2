"""``neuralbody snarf-eval RUN [--data OTHER]``: IoU, near-surface IoU and Chamfer-L2 of a SNARF run on posed meshes."""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from neuralbody.cli.arguments import parse_index_list

HELP = "score a `neuralbody snarf` run on posed meshes (held-out frames, or another motion of the same person)"

log = logging.getLogger("neuralbody.snarf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody snarf`")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of posed meshes of the same person (default: the run's training data)")
    parser.add_argument("--frames", default=None, help="frame indices to score, e.g. 0:40:8 (default: --max-frames "
                        "spread over the held-out split of the training data, or over all frames of other data)")
    parser.add_argument("--max-frames", type=int, default=5, help="frames scored by default (default 5)")
    parser.add_argument("--samples", type=int, default=100_000,
                        help="points for each IoU, volumetric and near-surface (default 100000)")
    parser.add_argument("--band", type=float, default=0.01, help="near-surface band half-width, metres (default 0.01)")
    parser.add_argument("--voxel", type=float, default=0.015, help="marching-cubes spacing, metres (default 0.015)")
    parser.add_argument("--json", type=Path, default=None, help="also write the scores to this JSON file")


def _row(name: str, iou: float, near: float, chamfer: float) -> str:
    chamfer_text = f"{chamfer * 1e6:12.2f}" if math.isfinite(chamfer) else f"{'none':>12s}"
    return f"{name:>8s} {iou:8.4f} {near:10.4f} {chamfer_text}"


def run(args: argparse.Namespace) -> int:
    from neuralbody.io.atomic import atomic_write_text
    from neuralbody.io.paths import require_file_path
    from neuralbody.snarf.evaluation import evaluate_run
    from neuralbody.snarf.metrics import EvalSettings
    from neuralbody.snarf.posed_meshes import read_posed_meshes
    from neuralbody.snarf.run_files import load_run

    if args.json is not None:
        require_file_path(args.json, "--json")
    if args.max_frames < 1 or args.samples < 1 or not (args.band > 0 and args.voxel > 0):
        raise ValueError("--max-frames and --samples must be >= 1, --band and --voxel positive metres")
    loaded = load_run(args.run)
    data_root = args.data if args.data is not None else Path(loaded.payload["data"])
    if args.data is None and not data_root.is_dir():
        raise FileNotFoundError(f"{data_root}: the run's training data is not there any more; pass --data FOLDER")
    frames = parse_index_list(args.frames, limit=read_posed_meshes(data_root).num_frames, what="frames")
    settings = EvalSettings(volume_samples=args.samples, surface_samples=args.samples, band=args.band, voxel=args.voxel)
    result = evaluate_run(loaded, data_root, frames, settings=settings, max_frames=args.max_frames,
                          progress=not args.no_progress)
    print(f"snarf-eval: {loaded.spec.kind} model of {args.run} on {result.data}")
    print(f"{'frame':>8s} {'IoU':>8s} {'NS-IoU':>10s} {'CD-L2 mm2':>12s}")
    for scores in result.frames:
        print(_row(str(scores.number), scores.iou, scores.near_surface_iou, scores.chamfer_l2))
    print(_row("mean", result.mean("iou"), result.mean("near_surface_iou"), result.mean("chamfer_l2")))
    if args.json is not None:
        summary = {"run": str(args.run), "kind": loaded.spec.kind, **result.to_dict()}
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    return 0
