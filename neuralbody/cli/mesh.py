"""``neuralbody mesh RUN --frame I``: a mesh of the person (world metres) and, with ground truth, its errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path


HELP = "extract a mesh (PLY/OBJ, world coordinates in metres) from a trained run; scored against ground truth when present"

log = logging.getLogger("neuralbody.mesh")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody train`")
    parser.add_argument("--frame", type=int, default=None, help="frame index (default: the middle training frame)")
    parser.add_argument("--voxel", type=float, default=0.01, help="grid spacing in metres (default 0.01; the original uses 0.005)")
    parser.add_argument("--threshold", type=float, default=5.0, help="density level of the surface, 1/m (default 5, as for ZJU-MoCap)")
    parser.add_argument("--no-carve", action="store_true", help="do not carve the grid with the training views' masks")
    parser.add_argument("--all-components", action="store_true", help="keep every connected component (default: the largest)")
    parser.add_argument("--out", type=Path, default=None,
                        help="mesh file, .ply or .obj (default RUN/mesh/frameIIII.ply plus the .obj beside it)")
    parser.add_argument("--metric-samples", type=int, default=100_000, help="surface samples for the ground-truth metrics")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: the run's)")


def ground_truth_mesh_path(capture, frame: int) -> Path | None:
    """``gt_meshes/{frame}.npz`` of a capture (ours: synthetic captures), or None when absent."""
    path = Path(capture.root) / "gt_meshes" / f"{frame}.npz"
    return path if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    from neuralbody.data.checks import validate_frames
    from neuralbody.data.meshes import read_mesh_npz
    from neuralbody.evaluation.mesh_extraction import MeshSettings, extract_mesh, write_mesh
    from neuralbody.io.atomic import atomic_write_text
    from neuralbody.io.paths import require_file_path, require_folder_path
    from neuralbody.training.checkpoint import load_run

    if args.out is not None:
        require_file_path(args.out, "--out")
    else:
        require_folder_path(args.run / "mesh", "mesh folder")
    for flag, value in (("--voxel", args.voxel), ("--metric-samples", args.metric_samples)):
        if not value > 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    loaded = load_run(args.run, device=args.device)
    capture = loaded.capture
    frame = args.frame if args.frame is not None else loaded.train_frames[len(loaded.train_frames) // 2]
    if not 0 <= frame < capture.num_frames:
        raise ValueError(f"--frame {frame}: the capture has frames 0..{capture.num_frames - 1}")
    validate_frames(capture, [frame], [], expected_count=loaded.model.num_vertices, masks=False)
    settings = MeshSettings(voxel_size=args.voxel, threshold=args.threshold, largest_component=not args.all_components)
    body = capture.load_body(frame)
    field = loaded.model.compile_frame(frame, body.to(loaded.device))
    cameras = masks = None
    if not args.no_carve:
        cameras = [capture.cameras[v] for v in loaded.train_views]
        try:
            masks = [capture.load_mask(frame, v) for v in loaded.train_views]
            log.info("carving with the masks of training cameras %s", loaded.train_views)
        except FileNotFoundError as error:
            log.warning("no mask carving (%s); pass --no-carve to silence this", error)
            cameras = masks = None
    mesh = extract_mesh(field, settings=settings, cameras=cameras, masks=masks)
    out = args.out or args.run / "mesh" / f"frame{frame:04d}.ply"
    written = [write_mesh(mesh, out)]
    if args.out is None:
        written.append(write_mesh(mesh, out.with_suffix(".obj")))
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    print(f"mesh of frame {frame}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, "
          f"world box ({lo[0]:.3f}, {lo[1]:.3f}, {lo[2]:.3f}) .. ({hi[0]:.3f}, {hi[1]:.3f}, {hi[2]:.3f}) m")
    for path in written:
        print(path)
    gt_path = ground_truth_mesh_path(capture, frame)
    if gt_path is None:
        log.info("no ground-truth mesh (gt_meshes/%d.npz) in %s: metrics skipped", frame, capture.root)
        return 0
    from neuralbody.evaluation.geometry_metrics import mesh_metrics

    gt_mesh = read_mesh_npz(gt_path, fix="regenerate the capture or delete the file")
    metrics = mesh_metrics((mesh.vertices, mesh.faces), gt_mesh, num_samples=args.metric_samples)
    values = dataclasses.asdict(metrics)
    document = {"frame": frame, "voxel_size_m": args.voxel, "threshold": args.threshold, "carved": not args.no_carve,
                "ground_truth": str(gt_path), "mesh": str(written[0]), **values}
    json_path = Path(out).with_suffix(".json")
    atomic_write_text(json_path, json.dumps(document, indent=2) + "\n")
    print(f"Chamfer-L2 {metrics.chamfer_l2 * 1e4:.3f} cm^2 | P2S {metrics.point_to_surface * 100:.3f} cm | "
          f"IoU {metrics.volumetric_iou:.4f} | normal consistency {metrics.normal_consistency:.4f}")
    print(json_path)
    return 0
