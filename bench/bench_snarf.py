"""SNARF against backward skinning: occupancy learned from posed meshes, scored in and out of distribution.

Usage::

    python bench/bench_snarf.py [--work DIR] [--train-motion walk] [--ood squat,arms_overhead] [--seed 1]
                                [--frames 40] [--minutes 4] [--clock cpu] [--eval-frames 5] [--samples 100000]

1. **Data.** ``neuralbody synth``'s generator renders the training motion and each
   out-of-distribution motion of the same person (the same ``--seed``), ``--frames`` frames
   each, one 32 x 32 view (only ``gt_meshes/`` and ``params/`` are used). The training
   motion's first two thirds train; its last third is held out (in distribution).
2. **Training.** The forward model (SNARF: canonical weight grid from the body model, Broyden
   correspondences, implicit gradients) and the backward model (posed-space weights
   conditioned on the pose, inverse LBS) train with the same canonical occupancy network,
   data, points per step and budget: ``--minutes`` of ``--clock`` ("cpu": this process's CPU
   time, fair on a shared machine), 1 torch thread.
3. **Scores** (:mod:`neuralbody.snarf.metrics`) on ``--eval-frames`` frames evenly spread over
   the held-out frames and over each out-of-distribution motion: volumetric IoU, near-surface
   IoU (within 1 cm) and Chamfer-L2 (marching cubes at 1.5 cm), means over the frames, and
   the worst frame's IoU.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

log = logging.getLogger("bench_snarf")


def make_data(work: Path, motions: list[str], frames: int, seed: int) -> dict[str, Path]:
    """Posed-mesh folders of each motion (rendered once; an existing folder is reused)."""
    from neuralbody.synth.generate import SynthConfig, generate_capture, load_body

    body, folders = None, {}
    for motion in motions:
        folder = work / f"{motion}_seed{seed}_{frames}"
        if not (folder / "neuralbody.json").is_file():
            body = body or load_body("anny")
            config = SynthConfig(frames=frames, views=1, resolution=32, motion=motion, seed=seed, supersample=1,
                                 train_views=1)
            generate_capture(folder, config, body=body, progress=False)
        folders[motion] = folder
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_snarf")
    parser.add_argument("--train-motion", default="walk")
    parser.add_argument("--ood", default="squat,arms_overhead", help="comma-separated out-of-distribution motions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per model")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--points", type=int, default=4096, help="labelled points per step")
    parser.add_argument("--eval-frames", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100_000, help="points for each IoU")
    parser.add_argument("--models", default="forward,backward")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("anny", "warp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from neuralbody.io.progress import progress_setting
    from neuralbody.snarf.evaluation import evaluate_run
    from neuralbody.snarf.metrics import EvalSettings
    from neuralbody.snarf.run_files import CHECKPOINT_NAME, load_run, train_run
    from neuralbody.snarf.training import TrainSettings

    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    ood = [m for m in args.ood.split(",") if m]
    folders = make_data(args.work, [args.train_motion, *ood], args.frames, args.seed)
    sets = [(f"{args.train_motion} held out", folders[args.train_motion])] + [(f"{m} (OOD)", folders[m]) for m in ood]
    settings = TrainSettings(budget_s=60.0 * args.minutes, clock=args.clock, points_per_step=args.points,
                             seed=args.seed)
    evaluation = EvalSettings(volume_samples=args.samples, surface_samples=args.samples)
    rows = []
    log.info("load average before: %s (2 cores, shared)", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    for kind in args.models.split(","):
        run_dir = args.work / f"run_{kind}_{args.train_motion}_{args.minutes:g}min_{args.clock}"
        started = time.perf_counter()
        with progress_setting(False):
            trained = train_run(folders[args.train_motion], run_dir, kind=kind, settings=settings,
                                resume=(run_dir / CHECKPOINT_NAME).is_file())
        log.info("%s: %d steps, %.0f s %s clock (%.0f s wall this session)", kind, trained.state.step,
                 trained.state.spent_s, args.clock, time.perf_counter() - started)
        run = load_run(run_dir)
        for name, folder in sets:
            started = time.perf_counter()
            result = evaluate_run(run, folder, settings=evaluation, max_frames=args.eval_frames, progress=False)
            worst = min(f.iou for f in result.frames)
            rows.append((kind, name, trained.state.step, result.mean("iou"), worst, result.mean("near_surface_iou"),
                         result.mean("chamfer_l2") * 1e6))
            log.info("scored %s on %s (frames %s) in %.0f s", kind, name, [f.number for f in result.frames],
                     time.perf_counter() - started)
    log.info("load average after: %s", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"\n{args.train_motion} (seed {args.seed}), {args.minutes:g} min {args.clock} per model, "
          f"{args.eval_frames} frames per set")
    print(f"{'model':9s} {'test set':22s} {'steps':>6s} {'IoU':>7s} {'worst':>7s} {'NS-IoU':>7s} {'CD-L2 mm2':>10s}")
    for kind, name, steps, iou, worst, near, chamfer in rows:
        print(f"{kind:9s} {name:22s} {steps:6d} {iou:7.4f} {worst:7.4f} {near:7.4f} {chamfer:10.2f}")


if __name__ == "__main__":
    main()
