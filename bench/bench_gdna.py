"""gDNA on held-out people: generative metrics over Chamfer, scan fitting, generation time.

Usage::

    neuralbody synth-corpus CORPUS --subjects 40 --frames 2 --views 1 --res 16 --supersample 1 \
        --near-samples 200 --uniform-samples 100 --seed 7          # 32 train + 8 held-out people, ~2 min
    neuralbody train-gen CORPUS --out RUN --steps 8000 --points 1024
    python bench/bench_gdna.py --corpus CORPUS --run RUN [--n 8] [--draws 10] [--points 2048] [--fit-scans 8] \
        [--finetune-steps 300] [--fit-start best|mean] [--screening-lengths 0.05] [--references heldout|all] \
        [--no-generative] [--figure fits.png]

1. **References.** The held-out people's clothed surfaces in their canonical (rest) pose, rebuilt
   with the corpus's own generator (each person's plan, wardrobe and union surface from the
   corpus's settings): what a perfect generator of *those* people would produce. With
   ``--references all`` every person of the corpus is a reference: a development corpus the run
   never saw (another seed), for choices that must not look at the report corpus's held-out people.
2. **Generative metrics** (:mod:`neuralbody.gdna.gen_metrics`): ``--n`` shapes each (as many as
   the references), ``--points`` surface points a shape, COV, MMD (Chamfer, mm^2) and 1-NNA for
   the full model (the coarse surface refined by the detail normals,
   :mod:`neuralbody.gdna.detail_surface`, one row per ``--screening-lengths`` value), the coarse
   stage alone (the same people's coarse surface) and the body-model baseline (``--n`` random
   Anny phenotypes uniform in the corpus's ranges, no clothing), over ``--draws`` draws of new
   people: mean, standard deviation over the draws, and the paired difference full - coarse
   (same people in each draw) with its standard deviation.
3. **Time** of ``generate`` of 8 people (canonical with and without the detail geometry, and also
   posed in 3 frames of a walk; ``--no-timing`` skips it) (2 and 3 skipped with ``--no-generative``).
4. **Scan fitting** (:mod:`neuralbody.gdna.fitting`) of frame 0 of ``--fit-scans`` held-out people,
   codes only and codes plus a per-scan fine-tune of the networks (``--finetune-steps``; two
   separate fits; each code starts from the lowest-loss one of the mean and the training codes,
   ``--fit-start mean``: the mean): Chamfer-L2, point-to-surface and normal consistency with the coarse surface's
   own normals and with the detail network's, without and with the detail geometry (the fitted
   surface refined by the detail normals in canonical space, then posed, :mod:`neuralbody.gdna.fit_detail`;
   the first ``--screening-lengths`` value); beside it the unclothed body model in the scan's pose.
5. **Colour** of those fits (a run with colour, a corpus with colours): the mean absolute RGB error
   (0-255) at the fitted vertices against the scan's colour at the closest surface point, and the
   PSNR of an unshaded front render against the scan's where both silhouettes cover, beside two baselines
   on the same fitted geometry: the mean colour of the training scans, and the colour network with
   the mean colour code (not fitted).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_gdna")


def reference_surfaces(corpus: Path, body, everyone: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The held-out people's (``everyone``: all people's) clothed rest-pose surfaces (vertices (V, 3) metres,
    faces (F, 3))."""
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
        if entry["split"] != "heldout_people" and not everyone:
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


def generated(loaded, count: int, points: int, seed: int, voxel: float, lengths: list[float]) -> dict[str, list]:
    """Point sets of ``count`` new people: their coarse surfaces ("coarse") and those refined by the detail normals
    with each screening length ("full@<l>"); the same people and the same sampling seeds in each."""
    from neuralbody.gdna.detail_surface import RefineOptions, refine_normal_mesh
    from neuralbody.gdna.generate import person_mesh, sample_people

    sets: dict[str, list] = {"coarse": [], **{f"full@{length:g}": [] for length in lengths}}
    for i, person in enumerate(sample_people(loaded, count, seed)):
        mesh, _ = person_mesh(loaded, person, voxel, detail_geometry=None)
        sets["coarse"].append(points_of(mesh.vertices, mesh.faces, points, 1000 + i))
        for length in lengths:
            refined = refine_normal_mesh(mesh, RefineOptions(length))
            sets[f"full@{length:g}"].append(points_of(refined.vertices, refined.faces, points, 1000 + i))
    return sets


def row(name, metrics) -> str:
    return (f"| {name} | {100 * metrics.coverage:.0f} % | {1e6 * metrics.mmd:.0f} | {100 * metrics.one_nna:.1f} % |")


def mean_training_colour(corpus: Path, points: int = 2000) -> torch.Tensor | None:
    """(3,) the mean colour of the training scans' surfaces (area-weighted): the colour baseline; None when the
    scans have no colours."""
    from neuralbody.gdna.scan_colours import surface_colours
    from neuralbody.gdna.scans import corpus_scans, load_scan

    means = []
    for i, ref in enumerate(corpus_scans(corpus, "train")):
        scan = load_scan(corpus / ref.subject, ref.frame)
        if scan.colours is None:
            log.info("%s has no colours: no colour figures (regenerate the corpus)", corpus / ref.subject)
            return None
        at = points_of(scan.vertices, scan.faces, points, i).float()
        means.append(surface_colours(scan.vertices, scan.faces, scan.colours, at).mean(dim=0))
    return torch.stack(means).mean(dim=0)


def render_psnr(vertices, faces, colours, scan, size: int = 128) -> float:
    """PSNR (dB) of the unshaded front render of a posed coloured mesh against the scan's, over the pixels both
    cover (the colour where the geometry agrees; silhouette errors are the geometry metrics' business)."""
    from neuralbody.gdna.meshing import NormalMesh
    from neuralbody.gdna.normal_render import BACKGROUND, render_colours
    from neuralbody.metrics import psnr

    gt_vertices = scan.vertices.double().numpy()
    low, high = gt_vertices.min(axis=0), gt_vertices.max(axis=0)
    centre, half = 0.5 * (low + high), 0.55 * float((high - low)[[0, 2]].max())
    gt = render_colours(NormalMesh(gt_vertices, scan.faces.numpy(), np.zeros_like(gt_vertices), scan.colours.numpy()),
                        size, centre, half, shade=False)
    pred = render_colours(NormalMesh(np.asarray(vertices), np.asarray(faces), np.zeros((len(vertices), 3)),
                                     np.asarray(colours)), size, centre, half, shade=False)
    mask = (gt != BACKGROUND).any(axis=2) & (pred != BACKGROUND).any(axis=2)
    return psnr(torch.as_tensor(pred), torch.as_tensor(gt), torch.as_tensor(mask))


def _colour_rows(loaded, result, scan, mean_colour: torch.Tensor) -> dict:
    """Colour error (0-255) and render PSNR of the fit and of two baselines on the fitted geometry."""
    from neuralbody.gdna.fitting import mean_person
    from neuralbody.gdna.meshing import Person, vertex_colours_of
    from neuralbody.gdna.scan_colours import colour_error, surface_colours

    vertices, faces = result.mesh.vertices, result.mesh.faces
    target = surface_colours(scan.vertices, scan.faces, scan.colours, torch.as_tensor(vertices).float())
    mean_code = mean_person(loaded, scan.shapes).colour_code
    unfitted = vertex_colours_of(loaded.model, Person(result.person.shape_code, result.person.detail_code, scan.shapes,
                                                      mean_code), result.canonical.vertices)
    constant = mean_colour.double().expand(len(vertices), 3).numpy()
    out = {}
    for name, colours in (("fit", result.mesh.colours), ("mean_code", unfitted), ("mean_colour", constant)):
        out[f"colour_{name}"] = colour_error(torch.as_tensor(colours), target)
        out[f"psnr_{name}"] = render_psnr(vertices, faces, colours, scan)
    return out


def colour_render(vertices, faces, colours, scan, size: int = 160) -> np.ndarray:
    """(size, size, 3) lit front colour render of a posed mesh, framed on the scan."""
    from neuralbody.gdna.meshing import NormalMesh
    from neuralbody.gdna.normal_render import render_colours
    from neuralbody.geometry.normals import vertex_normals

    vertices, faces = torch.as_tensor(np.asarray(vertices)).float(), torch.as_tensor(np.asarray(faces))
    mesh = NormalMesh(vertices.double().numpy(), faces.numpy(), vertex_normals(vertices, faces).double().numpy(),
                      np.asarray(colours))
    low, high = scan.vertices.double().numpy().min(axis=0), scan.vertices.double().numpy().max(axis=0)
    return render_colours(mesh, size, 0.5 * (low + high), 0.55 * float((high - low)[[0, 2]].max()))


def fit_rows(loaded, corpus: Path, count: int, samples: int, finetune_steps: int, mean_colour,
             renders: dict | None = None, start: str = "best", lengths: tuple[float, ...] = (),
             everyone: bool = False) -> list[dict]:
    """The fitting figures of the first ``count`` held-out people (``everyone``: people, training ones first),
    also with the detail geometry of each screening length in ``lengths``; ``renders`` (when given) collects
    colour renders of each scan and fit by name ("scan", "latents", "finetune")."""
    from neuralbody.gdna.detail_surface import RefineOptions
    from neuralbody.gdna.fit_detail import detail_fit
    from neuralbody.evaluation.geometry_metrics import chamfer_l2, point_to_surface
    from neuralbody.gdna.fitting import FitSettings, fit_scan
    from neuralbody.gdna.scans import corpus_scans, load_scan

    refs = corpus_scans(corpus, "heldout_people") if not everyone else \
        corpus_scans(corpus, "train") + corpus_scans(corpus, "heldout_people")
    subjects = list(dict.fromkeys(ref.subject for ref in refs))[:count]
    rows = []
    for subject in subjects:
        scan = load_scan(corpus / subject, 0)
        row = {"subject": subject}
        if renders is not None and scan.colours is not None:
            renders.setdefault("scan", []).append(colour_render(scan.vertices, scan.faces, scan.colours, scan))
        for name, steps in (("latents", 0), ("finetune", finetune_steps)):
            if name == "finetune" and not steps:
                continue
            settings = FitSettings(metric_samples=samples, finetune_steps=steps, start=start)
            result = fit_scan(loaded, scan, settings, progress=False)
            row.update({f"{name}_chamfer_mm2": 1e6 * result.chamfer_l2, f"{name}_p2s_mm": 1e3 * result.point_to_surface,
                        f"{name}_nc_coarse": result.normal_consistency_coarse,
                        f"{name}_nc_detail": result.normal_consistency_detail, f"{name}_seconds": result.seconds})
            for length in lengths:
                detail = detail_fit(loaded, scan, result, RefineOptions(length), samples=samples)
                row.update({f"{name}_l{length:g}_chamfer_mm2": 1e6 * detail.chamfer_l2,
                            f"{name}_l{length:g}_p2s_mm": 1e3 * detail.point_to_surface,
                            f"{name}_l{length:g}_nc_own": detail.normal_consistency_own,
                            f"{name}_l{length:g}_nc_detail": detail.normal_consistency_detail})
            if result.colour_error is not None and mean_colour is not None:
                colours = _colour_rows(loaded, result, scan, mean_colour)
                row.update({(f"{name}_{k}" if k.endswith("_fit") else k): v for k, v in colours.items()})
                if renders is not None:
                    renders.setdefault(name, []).append(colour_render(result.mesh.vertices, result.mesh.faces,
                                                                      result.mesh.colours, scan))
        with torch.no_grad():
            out = loaded.body(scan.poses[None], scan.shapes[None])
        naked = (out.vertices[0].float(), out.faces)
        gt = (scan.vertices, scan.faces)
        row.update({"body_chamfer_mm2": 1e6 * chamfer_l2(naked, gt, num_samples=samples),
                    "body_p2s_mm": 1e3 * point_to_surface(naked, gt, num_samples=samples)})
        rows.append(row)
        log.info("fit %s: %s", subject, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    return rows


def print_fits(fits: list[dict], lengths: tuple[float, ...] = ()) -> None:
    """The scan-fitting tables (mean, median in brackets)."""
    def cell(key, digits):
        values = [f[key] for f in fits]
        return f"{np.mean(values):.{digits}f} ({np.median(values):.{digits}f})"

    print(f"\nscan fitting, {len(fits)} held-out people (frame 0), mean (median)\n")
    print("| surface | Chamfer-L2 mm² | P2S mm | normal consistency |\n|---|---|---|---|")
    names = [("latents", "gDNA fit, latents only")] + ([("finetune", "gDNA fit, latents + per-scan fine-tune")]
                                                      if "finetune_p2s_mm" in fits[0] else [])
    for key, name in names:
        print(f"| {name}, coarse normals | {cell(key + '_chamfer_mm2', 0)} | {cell(key + '_p2s_mm', 1)} | "
              f"{cell(key + '_nc_coarse', 3)} |")
        print(f"| {name}, detail normals | {cell(key + '_chamfer_mm2', 0)} | {cell(key + '_p2s_mm', 1)} | "
              f"{cell(key + '_nc_detail', 3)} |")
        for length in lengths:
            at = f"{key}_l{length:g}"
            print(f"| {name}, detail geometry (l = {length:g} m), own normals | {cell(at + '_chamfer_mm2', 0)} | "
                  f"{cell(at + '_p2s_mm', 1)} | {cell(at + '_nc_own', 3)} |")
            print(f"| {name}, detail geometry (l = {length:g} m), detail normals | {cell(at + '_chamfer_mm2', 0)} | "
                  f"{cell(at + '_p2s_mm', 1)} | {cell(at + '_nc_detail', 3)} |")
    print(f"| unclothed body model, same pose | {cell('body_chamfer_mm2', 0)} | {cell('body_p2s_mm', 1)} | - |")
    if "colour_mean_colour" not in fits[0]:
        return
    print("\ncolour of the fitted surface against the scan's nearest colour (0-255), front render PSNR (unshaded, "
          "where both silhouettes cover)\n")
    print("| colour | mean abs. RGB error | PSNR dB |\n|---|---|---|")
    rows = [("mean colour of the training scans", "colour_mean_colour", "psnr_mean_colour"),
            ("gDNA, mean colour code (not fitted)", "colour_mean_code", "psnr_mean_code"),
            ("gDNA fit, latents only", "latents_colour_fit", "latents_psnr_fit")]
    if "finetune_colour_fit" in fits[0]:
        rows.append(("gDNA fit, latents + per-scan fine-tune", "finetune_colour_fit", "finetune_psnr_fit"))
    for name, error, psnr in rows:
        print(f"| {name} | {cell(error, 1)} | {cell(psnr, 2)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--n", type=int, default=None, help="shapes a set (default: as many as held-out people)")
    parser.add_argument("--draws", "--seeds", dest="draws", type=int, default=10,
                        help="draws of new people (default 10)")
    parser.add_argument("--screening-lengths", type=lambda text: [float(v) for v in text.split(",")], default=None,
                        help="comma-separated screening lengths (metres) of the detail geometry, a full-model row each "
                             "(default: RefineOptions's; the fit table uses the first)")
    parser.add_argument("--references", choices=("heldout", "all"), default="heldout",
                        help="reference people: the corpus's held-out people, or all (a development corpus)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing of generate")
    parser.add_argument("--points", type=int, default=2048, help="surface points a shape (default 2048)")
    parser.add_argument("--voxel", type=float, default=0.02, help="marching cubes of generated people, metres")
    parser.add_argument("--fit-scans", type=int, default=8, help="held-out people fitted (default 8; 0: none)")
    parser.add_argument("--fit-samples", type=int, default=20000, help="surface samples of the fit metrics")
    parser.add_argument("--finetune-steps", type=int, default=300,
                        help="steps of the per-scan fine-tune row (default 300; 0: latents only)")
    parser.add_argument("--fit-start", choices=("best", "mean"), default="best",
                        help="where fitting starts (fit-scan --start; default best)")
    parser.add_argument("--no-generative", action="store_true", help="skip the generative metrics and timings")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write a PNG of the fitted people in colour: scans, latents-only fits, fine-tuned fits")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.screening_lengths is None:
        from neuralbody.gdna.detail_surface import RefineOptions

        args.screening_lengths = [RefineOptions().screening_length]
    if args.draws < 1 or min(args.screening_lengths) <= 0:
        parser.error("--draws must be >= 1 and every screening length > 0")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    from neuralbody.gdna.run_files import load_run

    loaded = load_run(args.run)
    if not args.no_generative:
        generative_section(loaded, args)
    coloured = loaded.model.colour is not None and args.fit_scans > 0
    mean_colour = mean_training_colour(args.corpus) if coloured else None
    renders = {} if args.figure else None
    fits = fit_rows(loaded, args.corpus, args.fit_scans, args.fit_samples, args.finetune_steps, mean_colour, renders,
                    start=args.fit_start, lengths=tuple(args.screening_lengths), everyone=args.references == "all")
    if fits:
        print_fits(fits, tuple(args.screening_lengths))
    if renders:
        from neuralbody.data.images import write_png
        from neuralbody.gdna.normal_render import contact_sheet

        write_png(args.figure, contact_sheet([im for name in ("scan", "latents", "finetune") for im in renders.get(name, [])],
                                             len(renders["scan"])))
    if args.json:
        args.json.write_text(json.dumps({"fits": fits}, indent=1))


def _spread(values: list[float], scale: float, digits: int) -> str:
    return f"{scale * np.mean(values):.{digits}f} ± {scale * np.std(values):.{digits}f}"


def print_generative(results: dict[str, list], lengths: list[float], references: int, count: int, args) -> None:
    """The generation table: mean ± standard deviation over the draws, each draw's 1-NNA, paired differences."""
    print(f"\n{references} reference people, {count} shapes a set, {args.points} points a shape, {args.draws} draws: "
          f"mean ± standard deviation over the draws (1-NNA of each draw in brackets)\n")
    print("| model | COV | MMD (Chamfer, mm²) | 1-NNA | abs(1-NNA - 50 %) |\n|---|---|---|---|---|")
    names = [(f"gDNA, full model (detail geometry, l = {length:g} m)", f"full@{length:g}") for length in lengths]
    names += [("gDNA, coarse stage alone", "coarse"), ("body model (random Anny phenotypes, no clothing)", "body")]
    for name, key in names:
        runs = results[key]
        draws = ", ".join(f"{100 * m.one_nna:.1f}" for m in runs)
        print(f"| {name} | {_spread([m.coverage for m in runs], 100, 0)} % | "
              f"{_spread([m.mmd for m in runs], 1e6, 0)} | "
              f"{_spread([m.one_nna for m in runs], 100, 1)} % ({draws}) | "
              f"{_spread([abs(m.one_nna - 0.5) for m in runs], 100, 1)} |")
    print("\npaired over the draws (same people), full - coarse: mean ± standard deviation of the difference\n")
    print("| screening length | Δ 1-NNA (points) | Δ abs(1-NNA - 50 %) (points) | Δ MMD (mm²) | Δ COV (points) |\n"
          "|---|---|---|---|---|")
    coarse = results["coarse"]
    for length in lengths:
        full = results[f"full@{length:g}"]
        nna = [f.one_nna - c.one_nna for f, c in zip(full, coarse)]
        gap = [abs(f.one_nna - 0.5) - abs(c.one_nna - 0.5) for f, c in zip(full, coarse)]
        mmd = [f.mmd - c.mmd for f, c in zip(full, coarse)]
        cov = [f.coverage - c.coverage for f, c in zip(full, coarse)]
        print(f"| {length:g} m | {_spread(nna, 100, 1)} | {_spread(gap, 100, 1)} | {_spread(mmd, 1e6, 0)} | "
              f"{_spread(cov, 100, 1)} |")


def generative_section(loaded, args) -> None:
    """COV, MMD, 1-NNA against the reference people, and the time of ``generate``."""
    from neuralbody.gdna.gen_metrics import generative_metrics
    from neuralbody.gdna.generate import GenerateSettings, generate

    references = [points_of(v, f, args.points, i)
                  for i, (v, f) in enumerate(reference_surfaces(args.corpus, loaded.body, args.references == "all"))]
    count = args.n or len(references)
    results: dict[str, list] = {}
    for seed in range(args.draws):
        sets = generated(loaded, count, args.points, seed, args.voxel, args.screening_lengths)
        sets["body"] = body_baseline(loaded.body, count, args.points, seed)
        for key, shapes in sets.items():
            results.setdefault(key, []).append(generative_metrics(shapes, references))
        log.info("draw %d: %s", seed, {k: round(v[-1].one_nna, 3) for k, v in results.items()})
    print_generative(results, args.screening_lengths, len(references), count, args)
    timings = {}
    if not args.no_timing:
        with tempfile.TemporaryDirectory() as tmp:
            for name, motion, refine in (("coarse", None, False), ("None", None, True), ("walk", "walk", True)):
                settings = GenerateSettings(count=8, motion=motion)
                settings = settings if refine else dataclasses.replace(settings, detail_geometry=None)
                started = time.perf_counter()
                generate(loaded, settings, Path(tmp) / name, progress=False)
                timings[name] = time.perf_counter() - started
        print(f"\ngenerate --n 8: {timings['None']:.1f} s canonical only ({timings['coarse']:.1f} s with "
              f"--coarse-surface); {timings['walk']:.1f} s with --motion walk (3 frames) and the interpolation")
    if args.json:
        args.json.with_suffix(".generative.json").write_text(json.dumps(
            {"generative": {k: [vars(m) for m in v] for k, v in results.items()}, "generate_seconds": timings}, indent=1))

if __name__ == "__main__":
    main()
