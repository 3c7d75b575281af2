"""gDNA with fixed against learned skinning: posed fit of training people in held-out poses, scan fitting.

Usage::

    neuralbody train-gen CORPUS --out RUN_FIXED --steps 2500 --points 1024 --skinning fixed
    neuralbody train-gen CORPUS --out RUN_LEARNED --steps 2500 --points 1024 --skinning learned
    python bench/bench_gdna_skinning.py --corpus CORPUS --run fixed=RUN_FIXED --run learned=RUN_LEARNED \
        [--split heldout_poses] [--max-scans N] [--fit-scans 8] [--figure skirts.png --figure-subjects s0002,s0004
        [--figure-motion walk] [--figure-only]]

For every run (``NAME=FOLDER``):

1. **Posed fit** of the training people in the frames of ``--split`` (``heldout_poses``: a pose
   of each training person that no run saw; ``train``: the training scans themselves): the
   person's own trained codes, their canonical surface (marching cubes at ``--voxel``) posed by
   the run's skinning (fixed or learned) into the frame, against the frame's scan: Chamfer-L2
   (mm²), point-to-surface (mm, fitted surface to scan); and the **posed occupancy IoU** over
   ``--iou-points`` labelled points of SNARF's training mix around the scan (80 % near the
   surface: a near-surface IoU), each point's occupancy the largest canonical occupancy over
   its candidates under the run's skinning.
2. **Scan fitting** of the first ``--fit-scans`` held-out people (frame 0), latents only
   (:func:`neuralbody.gdna.fitting.fit_scan`, the defaults of ``fit-scan``): Chamfer-L2, P2S,
   normal consistency (detail normals), seconds.
3. **Training time**: the run's wall seconds a step (``spent_s / step`` of its checkpoint).

``--figure``: normal renders of ``--figure-subjects`` (training people) in their ``--split``
frame: the scan, then each run's posed surface, one row each. With ``--figure-motion NAME``
instead: each run's surface of those people posed in the frame of the motion
(:mod:`neuralbody.synth.motion`, 12 frames) where the feet are farthest apart, seen from the
person's left (a stride shows there), one row a run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_gdna_skinning")


def person_of(loaded, subject: str):
    """The trained codes of ``subject`` (its first training scan) as a Person (no colour)."""
    from neuralbody.gdna.meshing import Person

    names = [str(s) for s, _ in loaded.payload["scans"]]
    i = names.index(subject)
    return Person(loaded.codes.shape[i], loaded.codes.detail[i], loaded.shapes[i], None)


def posed_surface(loaded, subject: str, scan, voxel: float):
    """The person's canonical surface posed into the scan's frame by the run's skinning, coarse normals."""
    from neuralbody.gdna.meshing import NormalMesh, canonical_mesh, pose_mesh, vertex_normals_of
    from neuralbody.gdna.shape_skinning import shape_skinning

    person = person_of(loaded, subject)
    skinning = shape_skinning(loaded.body, scan.shapes, correction=loaded.model.skinning)
    transforms = skinning.bone_transforms(scan.poses[None])[0]
    mesh = canonical_mesh(loaded.model, person, skinning, voxel)
    canonical = NormalMesh(mesh.vertices, mesh.faces, vertex_normals_of(loaded.model, person, mesh, detail=False))
    return pose_mesh(canonical, skinning, transforms), skinning, transforms, person


def posed_iou(loaded, person, skinning, transforms, scan, count: int, seed: int) -> float:
    """IoU of the posed occupancy (logit > 0) against the labels of ``count`` points of SNARF's training mix."""
    from neuralbody.gdna.correspondences import occupancy_targets
    from neuralbody.gdna.losses import posed_logits
    from neuralbody.snarf.metrics import label_iou

    targets = occupancy_targets(skinning, transforms, scan.vertices, scan.faces, count, seed)
    with torch.no_grad():
        logits = posed_logits(loaded.model.coarse, targets.candidates, targets.valid, person.shape_code, person.shapes)
    return label_iou(logits > 0, targets.inside > 0.5)


def posed_rows(loaded, corpus: Path, split: str, max_scans: int | None, voxel: float, iou_points: int,
               samples: int) -> list[dict]:
    from neuralbody.evaluation.geometry_metrics import chamfer_l2, point_to_surface
    from neuralbody.gdna.scans import corpus_scans, load_scan

    trained = {str(s) for s, _ in loaded.payload["scans"]}
    refs = [ref for ref in corpus_scans(corpus, split) if ref.subject in trained][:max_scans]
    rows = []
    for i, ref in enumerate(refs):
        scan = load_scan(corpus / ref.subject, ref.frame)
        mesh, skinning, transforms, person = posed_surface(loaded, ref.subject, scan, voxel)
        gt, pred = (scan.vertices, scan.faces), (torch.as_tensor(mesh.vertices).float(), torch.as_tensor(mesh.faces))
        rows.append({"subject": ref.subject, "frame": ref.frame,
                     "chamfer_mm2": 1e6 * chamfer_l2(pred, gt, num_samples=samples),
                     "p2s_mm": 1e3 * point_to_surface(pred, gt, num_samples=samples),
                     "iou": posed_iou(loaded, person, skinning, transforms, scan, iou_points, 1000 + i)})
        log.info("posed %s/%d: %s", ref.subject, ref.frame, rows[-1])
    return rows


def fit_rows(loaded, corpus: Path, count: int, samples: int) -> list[dict]:
    from neuralbody.gdna.fitting import FitSettings, fit_scan
    from neuralbody.gdna.scans import corpus_scans, load_scan

    subjects = list(dict.fromkeys(ref.subject for ref in corpus_scans(corpus, "heldout_people")))[:count]
    rows = []
    for subject in subjects:
        result = fit_scan(loaded, load_scan(corpus / subject, 0), FitSettings(metric_samples=samples, colour_steps=0),
                          progress=False)
        rows.append({"subject": subject, "chamfer_mm2": 1e6 * result.chamfer_l2,
                     "p2s_mm": 1e3 * result.point_to_surface, "nc_detail": result.normal_consistency_detail,
                     "seconds": result.seconds})
        log.info("fit %s: %s", subject, rows[-1])
    return rows


def cell(rows: list[dict], key: str, digits: int) -> str:
    values = [r[key] for r in rows]
    return f"{np.mean(values):.{digits}f} ({np.median(values):.{digits}f})" if values else "-"


def figure(runs: dict, corpus: Path, subjects: list[str], split: str, voxel: float, path: Path) -> None:
    """Normal renders: the scans of ``subjects`` in their ``split`` frame, then each run's posed surface."""
    from neuralbody.data.images import write_png
    from neuralbody.gdna.meshing import NormalMesh
    from neuralbody.gdna.normal_render import contact_sheet, render_normals
    from neuralbody.gdna.scans import corpus_scans, load_scan
    from neuralbody.geometry.normals import vertex_normals

    frames = {ref.subject: ref.frame for ref in corpus_scans(corpus, split)}
    images = {"scan": []} | {name: [] for name in runs}
    for subject in subjects:
        scan = load_scan(corpus / subject, frames[subject])
        vertices = scan.vertices.double().numpy()
        low, high = vertices.min(axis=0), vertices.max(axis=0)
        centre, half = 0.5 * (low + high), 0.55 * float((high - low)[[0, 2]].max())
        normals = vertex_normals(scan.vertices, scan.faces).double().numpy()
        images["scan"].append(render_normals(NormalMesh(vertices, scan.faces.numpy(), normals), 192, centre, half))
        for name, loaded in runs.items():
            mesh, *_ = posed_surface(loaded, subject, scan, voxel)
            images[name].append(render_normals(mesh, 192, centre, half))
    write_png(path, contact_sheet([im for row in images.values() for im in row], len(subjects)))


def side_view(mesh):
    """The mesh turned by -90 degrees about z (the person's left towards the viewer of render_normals)."""
    from neuralbody.gdna.meshing import NormalMesh

    turn = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return NormalMesh(mesh.vertices @ turn.T, mesh.faces, mesh.normals @ turn.T, mesh.colours)


def stride_frame(body, motion: str, shapes: torch.Tensor) -> torch.Tensor:
    """(P,) the pose of the motion's frame (of 12) where the feet are farthest apart."""
    from neuralbody.synth.motion import make_motion

    poses = make_motion(motion, body=body, num_frames=12, seed=0, shapes=shapes).poses.float()
    names = list(body.joint_names)
    with torch.no_grad():
        transforms = body(poses, shapes[None].expand(len(poses), -1)).bone_transforms
    feet = transforms[:, [names.index("foot.L"), names.index("foot.R")], :3, 3]
    return poses[int((feet[:, 0] - feet[:, 1]).norm(dim=1).argmax())]


def motion_figure(runs: dict, corpus: Path, subjects: list[str], motion: str, voxel: float, path: Path) -> None:
    """Side normal renders of each run's surface of ``subjects`` in the widest stride of ``motion``."""
    from neuralbody.data.images import write_png
    from neuralbody.gdna.meshing import NormalMesh, canonical_mesh, pose_mesh, vertex_normals_of
    from neuralbody.gdna.normal_render import contact_sheet, render_normals
    from neuralbody.gdna.shape_skinning import shape_skinning

    images = []
    for name, loaded in runs.items():
        for subject in subjects:
            person = person_of(loaded, subject)
            skinning = shape_skinning(loaded.body, person.shapes, correction=loaded.model.skinning)
            mesh = canonical_mesh(loaded.model, person, skinning, voxel)
            canonical = NormalMesh(mesh.vertices, mesh.faces, vertex_normals_of(loaded.model, person, mesh, detail=False))
            pose = stride_frame(loaded.body, motion, person.shapes)
            posed = side_view(pose_mesh(canonical, skinning, skinning.bone_transforms(pose[None])[0]))
            low, high = posed.vertices.min(axis=0), posed.vertices.max(axis=0)
            images.append(render_normals(posed, 192, 0.5 * (low + high), 0.55 * float((high - low)[[0, 2]].max())))
        log.info("figure row: %s", name)
    write_png(path, contact_sheet(images, len(subjects)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN_FOLDER (repeat)")
    parser.add_argument("--split", default="heldout_poses", choices=("heldout_poses", "train"))
    parser.add_argument("--max-scans", type=int, default=None, help="posed fits of the first N scans (default all)")
    parser.add_argument("--voxel", type=float, default=0.02, help="marching cubes of the posed fits, metres")
    parser.add_argument("--iou-points", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=20000, help="surface samples of Chamfer-L2 and P2S")
    parser.add_argument("--fit-scans", type=int, default=8, help="held-out people fitted (0: none)")
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--figure-subjects", default="", help="comma-separated training people of the figure")
    parser.add_argument("--figure-motion", default=None, help="pose the figure's people in this motion instead")
    parser.add_argument("--figure-only", action="store_true", help="only the figure")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    from neuralbody.gdna.run_files import load_run

    runs = {name: load_run(folder) for name, folder in (item.split("=", 1) for item in args.run)}
    subjects = [s for s in args.figure_subjects.split(",") if s]
    if args.figure and args.figure_motion:
        motion_figure(runs, args.corpus, subjects, args.figure_motion, args.voxel, args.figure)
    elif args.figure:
        figure(runs, args.corpus, subjects, args.split, args.voxel, args.figure)
    if args.figure_only:
        return
    results = {}
    for name, loaded in runs.items():
        step = int(loaded.payload["step"])
        results[name] = {"posed": posed_rows(loaded, args.corpus, args.split, args.max_scans, args.voxel,
                                             args.iou_points, args.samples),
                         "fits": fit_rows(loaded, args.corpus, args.fit_scans, args.samples),
                         "steps": step, "seconds_per_step": float(loaded.payload["spent_s"]) / max(1, step)}
    print(f"\nposed fit of the training people, split {args.split}, mean (median)\n")
    print("| skinning | scans | posed IoU | Chamfer-L2 mm² | P2S mm | s a step |\n|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {len(r['posed'])} | {cell(r['posed'], 'iou', 3)} | {cell(r['posed'], 'chamfer_mm2', 0)} | "
              f"{cell(r['posed'], 'p2s_mm', 1)} | {r['seconds_per_step']:.2f} |")
    if args.fit_scans:
        print("\nscan fitting of held-out people (frame 0), latents only, mean (median)\n")
        print("| skinning | Chamfer-L2 mm² | P2S mm | NC (detail) | s a fit |\n|---|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {cell(r['fits'], 'chamfer_mm2', 0)} | {cell(r['fits'], 'p2s_mm', 1)} | "
                  f"{cell(r['fits'], 'nc_detail', 3)} | {cell(r['fits'], 'seconds', 0)} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
