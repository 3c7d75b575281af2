"""The canonical avatar against Neural Body: new views, unseen poses, a different motion; animation speed.

Captures (made with ``neuralbody synth`` when absent): the demo's (``WORK/capture``: sway, 30
frames, 8 views, 256², seed 0: frames 0-19 train, 20-29 are unseen poses, cameras 0, 2, 4, 6
train) and the same person (same seed) in motions far outside it (``WORK/capture_<motion>``,
30 frames each). Both models train on the demo capture for the same budget with
``neuralbody train --minutes M --threads T`` (one after the other, validation renders off),
then are scored with the ZJU box protocol (:mod:`neuralbody.evaluation.protocol`) on:

* ``new view``: the training frames from the held-out cameras;
* ``unseen pose``: frames 20-29 from the held-out cameras;
* ``<motion>``: the other motion's frames from its capture's held-out cameras (Neural Body
  with its last training frame's appearance code, as for unseen poses).

``--eval-frames`` frames of each (spread evenly) are rendered from every held-out camera.
Animation speed: ``neuralbody animate``'s per-frame work (compile the frame, build its density
occupancy, render one 256² view) on a procedural motion, median over ``--animate-frames``
frames, wall and CPU seconds, for 1 and 2 render threads. Load averages are printed: the
machine may be shared.

Usage::

    PYTHONPATH=$PWD python bench/bench_avatar.py --work /tmp/avatar_bench --minutes 4 --threads 1
    # --ood squat,arms_overhead  --eval-frames 3  --animate-frames 8  --json results.json  --skip-train
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("bench_avatar")

KINDS = ("avatar", "neuralbody")


def _neuralbody(*argv: str) -> None:
    """Run a ``neuralbody`` command in its own process (fails loudly)."""
    subprocess.run([sys.executable, "-m", "neuralbody.cli.main", *argv], check=True)


def ensure_capture(folder: Path, motion: str) -> Path:
    """The synthetic capture of ``motion`` (seed 0, 30 frames, 8 views, 256²) in ``folder``, made when absent."""
    if not (folder / "annots.npy").is_file():
        log.info("making the %s capture in %s", motion, folder)
        _neuralbody("synth", str(folder), "--frames", "30", "--views", "8", "--res", "256", "--seed", "0",
                    "--motion", motion, "--no-progress")
    return folder


def train(work: Path, kind: str, minutes: float, threads: int) -> dict:
    """Train one model on the demo capture; returns steps, seconds and the load averages around it."""
    run = work / "runs" / kind
    if run.exists():
        import shutil

        shutil.rmtree(run)
    load_before = os.getloadavg()
    started, cpu = time.perf_counter(), os.times()
    _neuralbody("train", str(work / "capture"), "--out", str(run), "--model", kind, "--minutes", str(minutes),
                "--threads", str(threads), "--val-every", "1000000", "--no-progress")
    after = os.times()
    return {"wall_s": round(time.perf_counter() - started, 1),
            "child_cpu_s": round(after.children_user + after.children_system - cpu.children_user - cpu.children_system, 1),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}


class LastCode:
    """A model whose frames all take its last appearance code (Neural Body's rule for unseen poses)."""

    def __init__(self, model) -> None:
        self.model = model
        self.num_vertices = getattr(model, "num_vertices", None)

    def eval(self):
        self.model.eval()
        return self

    def compile_frame(self, frame_index, body):
        return self.model.compile_frame(getattr(self.model, "num_frames", 1) + frame_index, body)


def evaluate(run_dir: Path, work: Path, motions: list[str], eval_frames: int) -> dict:
    """Box PSNR / SSIM of a run on its new views, unseen poses and each other motion."""
    import torch

    from neuralbody.data.capture import read_capture
    from neuralbody.evaluation.protocol import EvalOptions, evaluate_run
    from neuralbody.training.checkpoint import load_run

    torch.set_num_threads(1)
    run = load_run(run_dir)
    options = EvalOptions(max_frames=eval_frames, use_lpips=False, progress=False)
    scores = {}
    for split in ("novel_view", "novel_pose"):
        scores[split] = evaluate_run(run, split=split, options=options).means
    for motion in motions:
        capture = read_capture(work / f"capture_{motion}", scale=run.config.scale)
        other = dataclasses.replace(run, capture=capture, train_frames=list(range(capture.num_frames)),
                                    train_views=list(capture.meta["train_cameras"]), model=LastCode(run.model))
        scores[motion] = evaluate_run(other, split="novel_view", options=options).means
    return {key: {k: (None if v is None else round(v, 3)) for k, v in means.items()} for key, means in scores.items()}


def animate_speed(run_dir: Path, frames: int, kind: str) -> dict:
    """Median wall and CPU seconds of one animated 256² frame (compile, occupancy, render), 1 and 2 threads."""
    import torch

    from neuralbody.animation.sources import place_at, posed_bodies, procedural_source
    from neuralbody.body import load_body_model
    from neuralbody.rendering.render import frame_occupancy, render_view
    from neuralbody.training.checkpoint import load_run

    torch.set_num_threads(1)
    run = load_run(run_dir)
    reference = run.capture.load_body(run.train_frames[0])
    body_model = load_body_model(reference.pose.model)
    source = place_at(procedural_source("squat", body_model, reference.pose.shapes, num_frames=frames, seed=0),
                      reference.Th)
    bodies = posed_bodies(source, body_model=body_model, shapes=reference.pose.shapes, needs_pose=kind == "avatar")
    camera = run.capture.cameras[1]
    result = {}
    for workers in (1, 2):
        settings = run.render_settings(workers=workers)
        walls, cpus = [], []
        for index, body in enumerate(bodies):
            started, cpu = time.perf_counter(), time.process_time()
            with torch.no_grad():
                field = run.model.compile_frame(100 + index, body)
                render_view(field, camera, settings=settings, background=run.background,
                            occupancy=frame_occupancy(field, settings))
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        result[f"{workers}_threads"] = {"wall_s": round(statistics.median(walls), 3),
                                        "cpu_s": round(statistics.median(cpus), 3),
                                        "load": [round(x, 2) for x in os.getloadavg()]}
    return result


def format_table(results: dict, motions: list[str]) -> str:
    """Box PSNR (dB) / SSIM per test and model, then the animation speed."""
    tests = [("novel_view", "new view"), ("novel_pose", "unseen pose")] + [(m, m) for m in motions]
    head = f"{'model':<12}" + "".join(f"{label:>22}" for _, label in tests)
    lines = [head, "-" * len(head)]
    for kind, entry in results["runs"].items():
        cells = [f"{entry['scores'][key]['psnr_box']:.2f} dB / {entry['scores'][key]['ssim_box']:.3f}" for key, _ in tests]
        lines.append(f"{kind:<12}" + "".join(f"{cell:>22}" for cell in cells))
    lines.append("box PSNR / SSIM (ZJU protocol); training: " + ", ".join(
        f"{kind} {entry['train']['steps']} steps" for kind, entry in results["runs"].items()))
    for kind, entry in results["runs"].items():
        speed = entry.get("animate")
        if speed:
            lines.append(f"animate 256² ({kind}): " + ", ".join(
                f"{name.replace('_', ' ')} {value['wall_s']:.2f} s wall / {value['cpu_s']:.2f} s cpu"
                for name, value in speed.items()))
    return "\n".join(lines)


def _steps(run_dir: Path) -> int:
    import csv

    with (run_dir / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return int(rows[-1]["step"]) if rows else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the captures and the runs")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per model (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1)")
    parser.add_argument("--ood", default="squat,arms_overhead", help="other motions of the same person")
    parser.add_argument("--eval-frames", type=int, default=3, help="frames per test, spread evenly (default 3)")
    parser.add_argument("--animate-frames", type=int, default=8, help="frames timed for animation (default 8)")
    parser.add_argument("--models", default=",".join(KINDS), help="comma-separated model kinds")
    parser.add_argument("--skip-train", action="store_true", help="evaluate the runs already in WORK/runs")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    motions = [m for m in args.ood.split(",") if m]
    ensure_capture(args.work / "capture", "sway")
    for motion in motions:
        ensure_capture(args.work / f"capture_{motion}", motion)
    results = {"minutes": args.minutes, "threads": args.threads, "runs": {}}
    for kind in args.models.split(","):
        run_dir = args.work / "runs" / kind
        entry = {"train": {} if args.skip_train else train(args.work, kind, args.minutes, args.threads)}
        entry["train"]["steps"] = _steps(run_dir)
        entry["scores"] = evaluate(run_dir, args.work, motions, args.eval_frames)
        entry["animate"] = animate_speed(run_dir, args.animate_frames, kind) if args.animate_frames else None
        results["runs"][kind] = entry
        log.info("%s: %s", kind, json.dumps(entry))
    table = format_table(results, motions)
    print(table)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
