"""``neuralbody fit-scan RUN SCAN --out OUT``: fit a gDNA run's latents to a posed scan; Chamfer, normal consistency
and, for a model with colour and a scan with colours, the colour error."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

HELP = ("fit a gDNA run's latent codes to a posed mesh with its body pose; report Chamfer-L2, normal consistency "
        "and colour error")

log = logging.getLogger("neuralbody.fit_scan")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder of `neuralbody train-gen`")
    parser.add_argument("scan", type=Path, help="folder of posed meshes with body poses (gt_meshes/<n>.npz, "
                        "params/<n>.npy; e.g. a corpus person's folder)")
    parser.add_argument("--frame", type=int, default=0, help="frame index in SCAN (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write: fitted.ply, metrics.json")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps on the shape code (default 300)")
    parser.add_argument("--detail-steps", type=int, default=150, help="Adam steps on the detail code (default 150)")
    parser.add_argument("--colour-steps", type=int, default=150,
                        help="Adam steps on the colour code, when the run and the scan have colour (default 150)")
    parser.add_argument("--finetune-steps", type=int, default=0,
                        help="then refine the networks on this scan for this many steps a stage (default 0: latents only)")
    parser.add_argument("--finetune-lr", type=float, default=2e-3, help="learning rate of that refinement (default 2e-3)")
    parser.add_argument("--targets", type=int, default=16384,
                        help="labelled points around the scan and canonical free-space points (default 16384)")
    parser.add_argument("--voxel", type=float, default=0.015, help="marching-cubes spacing, metres (default 0.015)")
    parser.add_argument("--start", choices=("best", "mean"), default="best",
                        help="where each code starts: 'best', the one with the lowest fitting loss among the mean and "
                        "the training scans' codes (default), or 'mean', the mean code")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--screening-length", type=float, default=None,
                        help="how far the detail normals are integrated into fitted_detail.ply, metres (default "
                             "RefineOptions: 0.05)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.gdna.detail_surface import RefineOptions
    from neuralbody.gdna.fit_detail import detail_fit
    from neuralbody.gdna.fitting import FitSettings, fit_scan
    from neuralbody.gdna.meshing import write_ply
    from neuralbody.gdna.run_files import load_run
    from neuralbody.gdna.scans import load_scan
    from neuralbody.io.atomic import atomic_write_text
    from neuralbody.io.errors import InputError
    from neuralbody.io.paths import require_folder_path

    require_folder_path(args.out, "--out")
    if min(args.steps, args.detail_steps, args.colour_steps, args.finetune_steps) < 0:
        raise ValueError(f"--steps, --detail-steps, --colour-steps, --finetune-steps must be >= 0; got {args.steps}, "
                         f"{args.detail_steps}, {args.colour_steps}, {args.finetune_steps}")
    if not args.voxel > 0 or not args.finetune_lr > 0 or args.targets < 2:
        raise ValueError(f"--voxel and --finetune-lr must be > 0, --targets >= 2; got {args.voxel}, {args.finetune_lr}, "
                         f"{args.targets}")
    if args.screening_length is not None and not args.screening_length > 0:
        raise ValueError(f"--screening-length must be positive metres, got {args.screening_length}")
    loaded = load_run(args.run)
    scan = load_scan(args.scan, args.frame)
    if scan.shapes.shape[0] != loaded.body.shape_dim or scan.poses.shape[0] != loaded.body.pose_dim:
        raise InputError(args.scan / "params", f"poses/shapes have {scan.poses.shape[0]}/{scan.shapes.shape[0]} values, "
                         f"the run's {loaded.body.name} takes {loaded.body.pose_dim}/{loaded.body.shape_dim}",
                         "give a scan posed with the run's body model")
    settings = FitSettings(shape_steps=args.steps, detail_steps=args.detail_steps, colour_steps=args.colour_steps,
                           finetune_steps=args.finetune_steps, finetune_lr=args.finetune_lr, targets=args.targets,
                           voxel=args.voxel, seed=args.seed, start=args.start)
    result = fit_scan(loaded, scan, settings, progress=not args.no_progress)
    refine = RefineOptions() if args.screening_length is None else RefineOptions(args.screening_length)
    detail = detail_fit(loaded, scan, result, refine, samples=settings.metric_samples, seed=settings.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_ply(args.out / "fitted.ply", result.mesh)
    write_ply(args.out / "fitted_detail.ply", detail.mesh)
    metrics = {"chamfer_l2_mm2": result.chamfer_l2 * 1e6, "point_to_surface_mm": result.point_to_surface * 1e3,
               "normal_consistency_coarse": result.normal_consistency_coarse,
               "normal_consistency_detail": result.normal_consistency_detail, "colour_error_rgb": result.colour_error,
               "finetune_steps": args.finetune_steps, "start": args.start, "seconds": result.seconds,
               "detail_geometry": {"chamfer_l2_mm2": detail.chamfer_l2 * 1e6,
                                   "point_to_surface_mm": detail.point_to_surface * 1e3,
                                   "normal_consistency_own": detail.normal_consistency_own,
                                   "normal_consistency_detail": detail.normal_consistency_detail,
                                   "screening_length_m": refine.screening_length}}
    colour = "" if result.colour_error is None else f", colour error {result.colour_error:.1f} / 255"
    atomic_write_text(args.out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    print(f"fit-scan: Chamfer-L2 {metrics['chamfer_l2_mm2']:.1f} mm^2, P2S {metrics['point_to_surface_mm']:.1f} mm, "
          f"normal consistency {result.normal_consistency_coarse:.3f} (coarse) / {result.normal_consistency_detail:.3f} "
          f"(detail){colour} in {result.seconds:.1f} s; with the detail geometry (fitted_detail.ply): Chamfer-L2 "
          f"{detail.chamfer_l2 * 1e6:.1f} mm^2, P2S {detail.point_to_surface * 1e3:.1f} mm, normal consistency "
          f"{detail.normal_consistency_own:.3f} (own) -> {args.out}")
    return 0
