"""IMAvatar against the expression-conditioned NeRF on a synthetic monocular head video.

Usage::

    python bench/bench_head.py [--work DIR] [--seed 1] [--steps 600] [--eval-frames 4] [--res 128]

1. **Data.** ``neuralbody synth-head``'s generator renders Anny's head (seed ``--seed``; 60
   training frames from one moving camera, 6 held-out frames with training-like expressions,
   6 with stronger expressions and unseen combinations, the held-out ones from the moving
   camera and two fixed evaluation cameras) into ``WORK/data`` (reused when present).
2. **Training.** IMAvatar and nerf-expr each train ``--steps`` steps (512 rays of one frame a
   step, 32 samples a ray), one torch thread; IMAvatar first fits its deformation fields to
   the face-model prior (300 cheap steps, no rendering). Wall times are printed (the machine
   may be shared: compare steps, not seconds).
3. **Scores** (:mod:`neuralbody.head.evaluation`) on the first ``--eval-frames`` frames of
   each held-out split, all three cameras: PSNR (whole image), SSIM (the head's bounding
   rectangle), depth error (mm, where both see the head: of the surface depth, where the
   opacity reaches 1/2, and of volume rendering's expected depth) and the share of the head
   covered; and the time to render (animate) one frame of the resolution. Finished runs in
   WORK are evaluated again, not retrained (``train s``: their training-loop time from log.json).

The table is printed and written to ``WORK/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

import torch

log = logging.getLogger("bench_head")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_head")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-frames", type=int, default=4)
    parser.add_argument("--res", type=int, default=128)
    parser.add_argument("--models", default="imavatar,nerf-expr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))

    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.evaluation import evaluate_split, mean_scores
    from neuralbody.head.synth import HeadSynthConfig, generate_head_capture
    from neuralbody.head.training import TrainSettings, load_run, train_head

    data = args.work / "data"
    if not (data / "head.json").is_file():
        generate_head_capture(data, HeadSynthConfig(train_frames=60, resolution=args.res, seed=args.seed), progress=False)
    capture = read_head_capture(data)
    results = {}
    for model in args.models.split(","):
        run = args.work / f"run_{model}"
        resume = (run / "checkpoint.pt").is_file()  # a finished run is only evaluated again
        train_head(capture, run, TrainSettings(model=model, steps=args.steps), resume=resume, progress=False)
        avatar, _, _, checkpoint = load_run(run)
        history = json.loads((run / "log.json").read_text())
        row = {"steps": int(checkpoint["step"]), "train_s": history[-1]["seconds"]}
        renders = []
        for split in ("test", "strong"):
            frames = capture.split(split)[: args.eval_frames]
            keep: dict = {}
            row[split] = mean_scores(evaluate_split(avatar, capture, split, frames=frames, keep=keep))
            renders += [r.seconds for r in keep.values()]
        row["render_s"] = sum(renders) / len(renders)
        results[model] = row
        log.info("%s: %s", model, row)
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nhead seed {args.seed}, {args.res}x{args.res}, {args.steps} steps per model (train wall time on a shared "
          f"2-core machine, 1 thread)")
    print(f"{'model':10s} {'split':7s} {'PSNR':>6s} {'SSIM':>6s} {'depth mm':>9s} {'mean d mm':>9s} {'covered':>8s} "
          f"{'train s':>8s} {'s/frame':>8s}")
    for model, row in results.items():
        for split in ("test", "strong"):
            s = row[split]
            print(f"{model:10s} {split:7s} {s['psnr']:6.2f} {s['ssim']:6.3f} {s['depth_mm']:9.2f} "
                  f"{s['mean_depth_mm']:9.2f} {s['depth_coverage']:8.3f} {row['train_s']:8.0f} {row['render_s']:8.2f}")


if __name__ == "__main__":
    main()
