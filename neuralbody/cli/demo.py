"""``neuralbody demo``: the whole pipeline on a synthetic capture, ending in an HTML report.

Stages (each one is the public command of the same name, so the demo shows exactly what a
user would run; a stage whose output already exists is reused, so an interrupted demo
carries on where it stopped):

1. ``synth``   a small synthetic capture (ground truth included);
2. ``train``   Neural Body on the training cameras, within a time budget;
3. ``train``   the baseline without structured latent codes (a NeRF conditioned on the
               frame index) on the same budget;
4. ``eval``    both, on held-out cameras (training frames) and on unseen poses;
5. ``render``  an orbit around the person (GIF);
6. ``mesh``    marching cubes on Neural Body's density, compared with the true mesh;
7. report      ``OUT/report.html``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
import time
from pathlib import Path

HELP = "run the whole pipeline on a small synthetic capture and write an HTML report (about 15 min on a 2-core CPU)"

log = logging.getLogger("neuralbody.demo")

METHODS = (("neuralbody", "Neural Body (structured latent codes)"), ("frame_nerf", "NeRF + frame code (baseline)"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("neuralbody-demo"), help="output folder (default ./neuralbody-demo)")
    parser.add_argument("--minutes", type=float, default=4.0, help="training minutes for Neural Body (default 4)")
    parser.add_argument("--baseline-minutes", type=float, default=None,
                        help="training minutes for the baseline (default: the same as --minutes)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument("--res", type=int, default=256, help="image side of the synthetic capture, pixels (default 256)")
    parser.add_argument("--frames", type=int, default=30, help="frames (the first 2/3 train, the rest are unseen poses)")
    parser.add_argument("--views", type=int, default=8, help="cameras (4 train, the rest are held out)")
    parser.add_argument("--eval-frames", type=int, default=2, help="frames evaluated per split (default 2)")
    parser.add_argument("--orbit", type=int, default=16, help="orbit frames (0: none; default 16)")
    parser.add_argument("--seed", type=int, default=0, help="capture seed")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")


def _command(argv: list[str]) -> None:
    from neuralbody.cli.main import main

    log.info("$ neuralbody %s", " ".join(argv))
    code = main(argv)
    if code != 0:
        raise RuntimeError(f"`neuralbody {' '.join(argv)}` failed with exit code {code}")


def _read_curve(run: Path) -> tuple[list[float], list[float]]:
    path = run / "log.csv"
    if not path.is_file():
        return [], []
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return [float(r["elapsed_s"]) for r in rows], [float(r["psnr"]) for r in rows]


def _stage(name: str, timings: dict, started: float) -> None:
    timings[name] = round(time.perf_counter() - started, 1)


def run(args: argparse.Namespace) -> int:
    from neuralbody.body.anny import load_anny

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    capture = out / "capture"
    runs = {kind: out / "runs" / kind for kind, _ in METHODS}
    timings: dict[str, float] = {}
    progress = [] if not args.no_progress else ["--no-progress"]
    demo_started = time.perf_counter()

    started = time.perf_counter()
    load_anny()  # announces and builds the body model once if this machine has never done it
    _stage("body model", timings, started)

    started = time.perf_counter()
    if (capture / "annots.npy").is_file():
        log.info("reusing the capture in %s", capture)
    else:
        _command(["synth", str(capture), "--frames", str(args.frames), "--views", str(args.views),
                  "--res", str(args.res), "--seed", str(args.seed), *progress])
    _command(["info", str(capture), "--out", str(out / "contact_sheet.png"), *progress])
    _stage("synthetic capture", timings, started)

    kinds = [kind for kind, _ in METHODS if kind == "neuralbody" or not args.no_baseline]
    for kind in kinds:
        minutes = args.minutes if kind == "neuralbody" else (args.baseline_minutes or args.minutes)
        started = time.perf_counter()
        argv = ["train", str(capture), "--out", str(runs[kind]), "--model", kind, "--minutes", str(minutes),
                "--device", args.device, *progress]
        if (runs[kind] / "checkpoint.pt").is_file():
            argv.append("--resume")
        _command(argv)
        _stage(f"train {kind}", timings, started)

    for kind in kinds:
        started = time.perf_counter()
        _command(["eval", str(runs[kind]), "--max-frames", str(args.eval_frames), *progress])
        _stage(f"eval {kind}", timings, started)

    if args.orbit:
        started = time.perf_counter()
        _command(["render", str(runs["neuralbody"]), "--orbit", str(args.orbit), "--out", str(out / "orbit"), *progress])
        _stage("orbit", timings, started)

    started = time.perf_counter()
    _command(["mesh", str(runs["neuralbody"]), "--out", str(out / "mesh" / "neuralbody.ply"), *progress])
    _stage("mesh", timings, started)

    total = time.perf_counter() - demo_started
    report_path = _write_report(out, runs, kinds, timings, total)
    _print_summary(out, runs, kinds, report_path, total)
    return 0


def _load_metrics(run: Path) -> dict:
    path = run / "eval" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_report(out: Path, runs: dict, kinds: list[str], timings: dict, total: float) -> Path:
    from neuralbody.evaluation.report import Curve, Figure, MetricRow, Report, write_report

    labels = dict(METHODS)
    rows, curves, figures, summary = [], [], [], []
    for kind in kinds:
        metrics = _load_metrics(runs[kind])
        for split, split_label in (("novel_view", "novel view"), ("novel_pose", "unseen pose")):
            if split not in metrics:
                continue
            means = metrics[split]["means"]
            rows.append(MetricRow(labels[kind], split_label, means["psnr_box"], means["ssim_box"], means["psnr_full"],
                                  means["ssim_full"], means.get("lpips"), metrics[split]["images"]))
            strips = sorted(glob.glob(str(runs[kind] / "eval" / split / "*.png")))
            if strips:
                figures.append(Figure(strips[len(strips) // 2],
                                      f"{labels[kind]}, {split_label}: render | ground truth | error"))
        x, y = _read_curve(runs[kind])
        curves.append(Curve(labels[kind], x, y))
    by_key = {(r.method, r.split): r for r in rows}
    nb_view = by_key.get((labels["neuralbody"], "novel view"))
    nb_pose = by_key.get((labels["neuralbody"], "unseen pose"))
    if nb_view:
        summary.append(f"Neural Body on held-out cameras: {nb_view.psnr_box:.2f} dB box PSNR (target 27), "
                       f"SSIM {nb_view.ssim_box:.3f}.")
    if nb_pose:
        summary.append(f"Neural Body on unseen poses: {nb_pose.psnr_box:.2f} dB box PSNR (target 23).")
    base_view = by_key.get((labels.get("frame_nerf", ""), "novel view"))
    if nb_view and base_view:
        summary.append(f"The structured latent codes buy {nb_view.psnr_box - base_view.psnr_box:+.2f} dB on novel views "
                       f"over the frame-conditioned NeRF trained on the same budget.")
    summary.append(f"Whole demo: {total / 60:.1f} minutes.")
    for gif in sorted(glob.glob(str(out / "orbit" / "*.gif")))[:1]:
        figures.append(Figure(gif, "orbit around the person (Neural Body, free viewpoint)"))
    if (out / "contact_sheet.png").is_file():
        figures.append(Figure(str(out / "contact_sheet.png"), "the synthetic capture: every camera, masks outlined"))
    mesh_json = out / "mesh" / "neuralbody.json"
    facts = {stage: f"{seconds:.0f} s" for stage, seconds in timings.items()}
    if mesh_json.is_file():
        mesh = json.loads(mesh_json.read_text())
        facts["mesh"] = (f"{mesh['mesh']}: Chamfer-L2 {mesh['chamfer_l2'] * 1e4:.2f} cm², P2S "
                         f"{mesh['point_to_surface'] * 100:.2f} cm, IoU {mesh['volumetric_iou']:.3f}, normal consistency "
                         f"{mesh['normal_consistency']:.3f}")
    report = Report(title="neuralbody demo", summary_lines=summary, metrics=rows, figures=figures, curves=curves,
                    facts=facts)
    return write_report(report, out / "report.html")


def _print_summary(out: Path, runs: dict, kinds: list[str], report_path: Path, total: float) -> None:
    print()
    print(f"neuralbody demo finished in {total / 60:.1f} min")
    for kind in kinds:
        metrics = _load_metrics(runs[kind])
        for split in ("novel_view", "novel_pose"):
            if split in metrics:
                means = metrics[split]["means"]
                print(f"  {dict(METHODS)[kind]:<40} {split:<11} box PSNR {means['psnr_box']:6.2f} dB  "
                      f"SSIM {means['ssim_box']:.3f}")
    print(f"  report:  {report_path}")
    print(f"  capture: {out / 'capture'}")
    print(f"  runs:    {out / 'runs'}")
    print(f"  orbit:   {out / 'orbit'}")
    print(f"  mesh:    {out / 'mesh' / 'neuralbody.ply'}")
