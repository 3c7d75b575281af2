"""``neuralbody reconstruct DATA --frame I --model RUN --out MESH.ply``: a clothed person's surface from a few views."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from neuralbody.cli.arguments import parse_index_list

HELP = "reconstruct one frame's surface (PLY/OBJ, world metres) with a train-recon model; scored against ground truth when present"

log = logging.getLogger("neuralbody.reconstruct")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder (ZJU-MoCap layout, with masks)")
    parser.add_argument("--frame", type=int, required=True, help="frame index")
    parser.add_argument("--model", type=Path, required=True, help="run folder written by `neuralbody train-recon`")
    parser.add_argument("--out", type=Path, required=True, help="mesh file, .ply or .obj (metrics go to the .json beside it)")
    parser.add_argument("--views", default=None,
                        help="cameras the model reads, e.g. 0,2,4,6 (default: camera 0 for pifu, else up to 4 spread evenly)")
    parser.add_argument("--locate-views", default=None,
                        help="cameras whose masks place the person (default: all; one camera needs vertices/)")
    parser.add_argument("--voxel", type=float, default=0.01, help="fine grid spacing in metres (default 0.01)")
    parser.add_argument("--levels", type=int, default=3, help="coarse-to-fine refinements (default 3; 0: dense grid)")
    parser.add_argument("--no-carve", action="store_true", help="do not empty the points outside the views' masks")
    parser.add_argument("--all-components", action="store_true", help="keep every connected component")
    parser.add_argument("--metric-samples", type=int, default=100_000, help="surface samples for the ground-truth metrics")
    parser.add_argument("--body", type=Path, default=None,
                        help="for a body-prior model (mvms-body): the frame's fitted Anny vertices, (V, 3) .npy in world metres "
                             "(default: the capture's vertices/ of the frame, which `neuralbody fit` writes; on a corpus "
                             "those are the true body)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")


def default_views(kind: str, num_views: int) -> list[int]:
    from neuralbody.recon.dataset import spread_views

    return [0] if kind == "pifu" else spread_views(num_views, min(4, num_views))


def posed_body(args: argparse.Namespace, capture):
    """The body a body-prior model reads: ``--body`` or the capture's ``vertices/`` of the frame."""
    from neuralbody.io.errors import InputError
    from neuralbody.io.safe_load import load_npy
    from neuralbody.recon.body_prior import PosedBody, body_model_faces

    if args.body is None:
        if not capture.has_vertices:
            raise InputError(capture.root / "vertices", "a body-prior model needs the frame's fitted body",
                             "run `neuralbody fit` on the capture first, or pass --body VERTICES.npy")  # fmt: skip
        vertices = capture.load_vertices(args.frame)
        log.info("body prior: %s", capture.vertices_path(args.frame))
    else:
        vertices = load_npy(args.body)
        if vertices.ndim != 2 or vertices.shape[-1] != 3 or vertices.dtype.kind not in "fiu":
            raise InputError(args.body, f"expected (V, 3) vertices in metres, got {vertices.dtype} {vertices.shape}",
                             "pass the vertices/{frame}.npy that `neuralbody fit` writes")  # fmt: skip
    faces = body_model_faces()
    if int(faces.max()) + 1 != len(vertices):
        raise InputError(args.body or capture.vertices_path(args.frame), f"{len(vertices)} vertices, not Anny's",
                         "fit the body with Anny (`neuralbody fit --body anny`)")  # fmt: skip
    return PosedBody(np.asarray(vertices, dtype=np.float64), faces)


def run(args: argparse.Namespace) -> int:
    from neuralbody.cli.mesh import ground_truth_mesh_path
    from neuralbody.data.capture import read_capture
    from neuralbody.evaluation.mesh_extraction import write_mesh
    from neuralbody.io.atomic import atomic_write_text
    from neuralbody.recon.reconstruct import ReconstructSettings, chamfer_l2_seed, reconstruct_frame
    from neuralbody.recon.train import load_model

    started = time.perf_counter()
    capture = read_capture(args.data)
    model, meta = load_model(args.model, device=args.device)
    views = parse_index_list(args.views, limit=capture.num_views, what="views")
    views = views or default_views(model.config.kind, capture.num_views)
    locate = parse_index_list(args.locate_views, limit=capture.num_views, what="locate-views")
    settings = ReconstructSettings(voxel=args.voxel, levels=args.levels, carve=not args.no_carve,
                                   largest_component=not args.all_components)  # fmt: skip
    body = posed_body(args, capture) if model.uses_body else None
    result = reconstruct_frame(model, capture, args.frame, views, settings=settings, locate_views=locate, body=body)
    write_mesh(result.mesh, args.out)
    total = time.perf_counter() - started
    lo, hi = result.mesh.vertices.min(axis=0), result.mesh.vertices.max(axis=0)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print(f"{model.config.kind} ({meta['step']} steps) on views {views}, frame {args.frame}: {len(result.mesh.vertices)} "
          f"vertices, {len(result.mesh.faces)} faces, world box ({lo[0]:.3f}, {lo[1]:.3f}, {lo[2]:.3f}) .. "
          f"({hi[0]:.3f}, {hi[1]:.3f}, {hi[2]:.3f}) m; {result.evaluated} of {result.dense_points} grid points "
          f"evaluated; {total:.1f} s ({stages})")  # fmt: skip
    print(args.out)
    document = {"frame": args.frame, "views": views, "model": str(args.model), "model_kind": model.config.kind,
                "voxel_size_m": args.voxel, "levels": args.levels, "carved": not args.no_carve, "seconds": round(total, 2),
                "evaluated_points": result.evaluated, "dense_points": result.dense_points, "mesh": str(args.out)}  # fmt: skip
    gt_path = ground_truth_mesh_path(capture, args.frame)
    if gt_path is not None:
        from neuralbody.evaluation.geometry_metrics import mesh_metrics

        with np.load(gt_path, allow_pickle=False) as gt:
            gt_mesh = (gt["vertices"].astype(np.float64), gt["faces"].astype(np.int64))
        metrics = mesh_metrics((result.mesh.vertices, result.mesh.faces), gt_mesh, num_samples=args.metric_samples)
        document.update(ground_truth=str(gt_path), chamfer_l2_seed=chamfer_l2_seed(metrics), **dataclasses.asdict(metrics))
        print(f"P2S {metrics.point_to_surface * 100:.3f} cm | Chamfer-L2 (seed) {chamfer_l2_seed(metrics) * 1e4:.3f} cm^2 | "
              f"IoU {metrics.volumetric_iou:.4f} | normal consistency {metrics.normal_consistency:.4f}")
    else:
        log.info("no ground-truth mesh (gt_meshes/%d.npz) in %s: metrics skipped", args.frame, capture.root)
    json_path = args.out.with_suffix(".json")
    atomic_write_text(json_path, json.dumps(document, indent=2) + "\n")
    print(json_path)
    return 0
