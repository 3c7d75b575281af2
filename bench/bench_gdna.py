"""gDNA on held-out people: generative metrics over Chamfer, scan fitting, generation time.

Usage::

    neuralbody synth-corpus CORPUS --subjects 40 --frames 2 --views 1 --res 16 --supersample 1 \
        --near-samples 200 --uniform-samples 100 --seed 7          # 32 train + 8 held-out people, ~2 min
    neuralbody train-gen CORPUS --out RUN --steps 8000 --points 1024
    python bench/bench_gdna.py --corpus CORPUS --run RUN [--n 8] [--seeds 3] [--points 2048] [--fit-scans 8]

1. **References.** The held-out people's clothed surfaces in their canonical (rest) pose, rebuilt
   with the corpus's own generator (each person's plan, wardrobe and union surface from the
   corpus's settings): what a perfect generator of *those* people would produce.
2. **Generative metrics** (:mod:`neuralbody.gdna.gen_metrics`): ``--n`` shapes each (as many as
   the references), ``--points`` surface points a shape, COV, MMD (Chamfer, mm^2) and 1-NNA for
   the full model (``--seeds`` draws of new people), the coarse stage alone and the body-model
   baseline (``--n`` random Anny phenotypes uniform in the corpus's ranges, no clothing). The
   detail network changes normals, not geometry, so the coarse stage's shapes are the full
   model's: the Chamfer metrics are the same by construction.
3. **Scan fitting** (:mod:`neuralbody.gdna.fitting`) of frame 0 of ``--fit-scans`` held-out people:
   Chamfer-L2, point-to-surface and normal consistency with the coarse surface's own normals
   and with the detail network's; beside it the unclothed body model in the scan's pose.
4. **Time** of ``generate`` of 8 people (canonical, and also posed in 3 frames of a walk).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_gdna")


def reference_surfaces(corpus: Path, body) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The held-out people's clothed rest-pose surfaces (vertices (V, 3) metres, faces (F, 3))."""
    from neuralbody.synth import motion as motion_lib
    from neuralbody.synth.corpus import CorpusConfig, plan_subject
    from neuralbody.synth.garments import RestBody, build_wardrobe, dress, union_surface
    from neuralbody.synth.texture import vertex_regions

    index = json.loads((corpus / "corpus.json").read_text())
    settings = index["config"]
    config = CorpusConfig(subjects=settings["subjects"], frames=settings["frames"],
                          heldout_pose_frames=settings["heldout_pose_frames"],
                          heldout_people=settings["heldout_people"], seed=settings["seed"])
    surfaces = []
    for entry in index["subjects"]:
        if entry["split"] != "heldout_people":
            continue
        plan = plan_subject(config, int(entry["id"][1:]))
        with torch.no_grad():
            out = body(torch.zeros(1, body.pose_dim), torch.tensor(plan.shapes, dtype=torch.float32)[None])
        names = motion_lib.joint_names_of(body)
        regions = vertex_regions(rest_vertices=out.rest_vertices[0], skinning_weights=out.skinning_weights,
                                 joint_names=names, rest_joints=out.rest_joints[0])
        rest = RestBody(vertices=out.rest_vertices[0].float(), faces=out.faces.long(), joints=out.rest_joints[0].float(),
                        joint_names=names, dominant=out.skinning_weights.argmax(dim=1), regions=regions)
        wardrobe = build_wardrobe(rest, plan.outfit, seed=plan.texture_seed)
        surfaces.append(union_surface(dress(wardrobe, rest.vertices, rest.faces, rest.regions, None)))
    return surfaces


def points_of(vertices, faces, count: int, seed: int) -> torch.Tensor:
    from neuralbody.geometry.surface_sampling import sample_surface

    return sample_surface(torch.as_tensor(np.asarray(vertices), dtype=torch.float32), torch.as_tensor(np.asarray(faces)),
                          count, seed).points.double()


def body_baseline(body, count: int, points: int, seed: int) -> list[torch.Tensor]:
    """Random Anny phenotypes (uniform in the corpus's ranges), no clothing, rest pose."""
    from neuralbody.synth.corpus import PHENOTYPE_RANGES

    rng = np.random.default_rng([seed, 77])
    shapes = torch.tensor([[rng.uniform(lo, hi) for lo, hi in PHENOTYPE_RANGES.values()] for _ in range(count)],
                          dtype=torch.float32)
    with torch.no_grad():
        out = body(torch.zeros(count, body.pose_dim), shapes)
    return [points_of(out.rest_vertices[i], out.faces, points, seed + i) for i in range(count)]


def generated(loaded, count: int, points: int, seed: int, voxel: float) -> list[torch.Tensor]:
    from neuralbody.gdna.generate import person_mesh, sample_people

    sets = []
    for i, person in enumerate(sample_people(loaded, count, seed)):
        mesh, _ = person_mesh(loaded, person, voxel)
        sets.append(points_of(mesh.vertices, mesh.faces, points, 1000 + i))
    return sets


def row(name, metrics) -> str:
    return (f"| {name} | {100 * metrics.coverage:.0f} % | {1e6 * metrics.mmd:.0f} | {100 * metrics.one_nna:.1f} % |")


def fit_rows(loaded, corpus: Path, count: int, samples: int) -> list[dict]:
    from neuralbody.evaluation.geometry_metrics import chamfer_l2, point_to_surface
    from neuralbody.gdna.fitting import FitSettings, fit_scan
    from neuralbody.gdna.scans import corpus_scans, load_scan

    subjects = list(dict.fromkeys(ref.subject for ref in corpus_scans(corpus, "heldout_people")))[:count]
    rows = []
    for subject in subjects:
        scan = load_scan(corpus / subject, 0)
        result = fit_scan(loaded, scan, FitSettings(metric_samples=samples), progress=False)
        with torch.no_grad():
            out = loaded.body(scan.poses[None], scan.shapes[None])
        naked = (out.vertices[0].float(), out.faces)
        gt = (scan.vertices, scan.faces)
        rows.append({"subject": subject, "chamfer_mm2": 1e6 * result.chamfer_l2, "p2s_mm": 1e3 * result.point_to_surface,
                     "nc_coarse": result.normal_consistency_coarse, "nc_detail": result.normal_consistency_detail,
                     "body_chamfer_mm2": 1e6 * chamfer_l2(naked, gt, num_samples=samples),
                     "body_p2s_mm": 1e3 * point_to_surface(naked, gt, num_samples=samples), "seconds": result.seconds})
        log.info("fit %s: %s", subject, {k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--n", type=int, default=None, help="shapes a set (default: as many as held-out people)")
    parser.add_argument("--seeds", type=int, default=3, help="draws of new people (default 3)")
    parser.add_argument("--points", type=int, default=2048, help="surface points a shape (default 2048)")
    parser.add_argument("--voxel", type=float, default=0.02, help="marching cubes of generated people, metres")
    parser.add_argument("--fit-scans", type=int, default=8, help="held-out people fitted (default 8)")
    parser.add_argument("--fit-samples", type=int, default=20000, help="surface samples of the fit metrics")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    from neuralbody.gdna.gen_metrics import generative_metrics
    from neuralbody.gdna.generate import GenerateSettings, generate
    from neuralbody.gdna.run_files import load_run

    loaded = load_run(args.run)
    references = [points_of(v, f, args.points, i) for i, (v, f) in enumerate(reference_surfaces(args.corpus, loaded.body))]
    count = args.n or len(references)
    results = {"full": [], "body": []}
    for seed in range(args.seeds):
        results["full"].append(generative_metrics(generated(loaded, count, args.points, seed, args.voxel), references))
        results["body"].append(generative_metrics(body_baseline(loaded.body, count, args.points, seed), references))
        log.info("seed %d: full %s, body %s", seed, results["full"][-1], results["body"][-1])
    print(f"\n{len(references)} held-out people, {count} shapes a set, {args.points} points a shape, "
          f"{args.seeds} draws (mean)\n")
    print("| model | COV | MMD (Chamfer, mm²) | 1-NNA |\n|---|---|---|---|")
    mean = {k: type(v[0])(*[float(np.mean([getattr(m, f) for m in v])) for f in ("coverage", "mmd", "one_nna")],
                          count, len(references)) for k, v in results.items()}
    for name, key in (("gDNA, full model", "full"), ("gDNA, coarse stage alone (same geometry)", "full"),
                      ("body model (random Anny phenotypes, no clothing)", "body")):
        print(row(name, mean[key]))
    fits = fit_rows(loaded, args.corpus, args.fit_scans, args.fit_samples)
    average = {k: float(np.mean([f[k] for f in fits])) for k in fits[0] if k != "subject"}
    print(f"\nscan fitting, {len(fits)} held-out people (frame 0), mean\n")
    print("| surface | Chamfer-L2 mm² | P2S mm | normal consistency |\n|---|---|---|---|")
    print(f"| gDNA fit, coarse normals | {average['chamfer_mm2']:.0f} | {average['p2s_mm']:.1f} | {average['nc_coarse']:.3f} |")
    print(f"| gDNA fit, detail normals | {average['chamfer_mm2']:.0f} | {average['p2s_mm']:.1f} | {average['nc_detail']:.3f} |")
    print(f"| unclothed body model, same pose | {average['body_chamfer_mm2']:.0f} | {average['body_p2s_mm']:.1f} | - |")
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        for motion in (None, "walk"):
            started = time.perf_counter()
            generate(loaded, GenerateSettings(count=8, motion=motion), Path(tmp) / str(motion), progress=False)
            timings[str(motion)] = time.perf_counter() - started
    print(f"\ngenerate --n 8: {timings['None']:.1f} s canonical only; {timings['walk']:.1f} s with --motion walk "
          f"(3 frames) and the interpolation; fitting took {average['seconds']:.1f} s a scan")
    if args.json:
        args.json.write_text(json.dumps({"generative": {k: [vars(m) for m in v] for k, v in results.items()},
                                         "fits": fits, "generate_seconds": timings}, indent=1))


if __name__ == "__main__":
    main()
