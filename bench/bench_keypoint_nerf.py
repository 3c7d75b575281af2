"""KeypointNeRF (seed 003) on people it never saw: the relative keypoint encoding against the global
(pixelNeRF-style) one, same features, same step budget; and the time of a 256 x 256 render.

On a corpus (``neuralbody synth-corpus WORK/corpus --subjects 24 --near-samples 200 --uniform-samples 200``,
made here when absent: 24 people, the last 5 held out, 3 frames each, 8 cameras at 256 px), each
encoding trains ``--steps`` steps in its own process (``neuralbody train-keypoint --resume``: a run
already at that step is kept). Then every frame of the held-out people is rendered from
``--inputs`` cameras spread around the ring (3: cameras 0, 3, 5) at each of ``--targets`` other cameras,
with no training on those people, and scored under the ZJU protocol (box PSNR and SSIM, as
``neuralbody eval`` scores Neural Body). Rows:

* ``relative``: KeypointNeRF's relative keypoint encoding;
* ``global``: the same model with pixelNeRF's global (camera-frame coordinate) encoding;
* ``untrained``: the relative model at initialisation (the views' visual hull with colours blended
  at random weights): what the box protocol gives for silhouettes and input colours alone.

With ``--capture DIR`` (a capture in ZJU-MoCap layout with masks and fitted Anny vertices, e.g. the
real Pose2Sim capture after ``neuralbody import``, ``detect`` and ``fit``), both trained runs also
render ``--capture-camera`` from ``--capture-inputs`` on ``--capture-frames`` frames spread over those
with vertices, with no training on that capture, scored the same way.

With ``--finetune DIR`` (a capture in ZJU-MoCap layout with masks and Anny vertices), the fine-tuning
comparison instead, at equal wall-clock: Neural Body from scratch (``neuralbody train DIR --views V
--frames F --minutes M``) against the generalisable relative run (``--finetune-init``, default the
corpus's) fine-tuned on the same views and frames for the same M minutes (``neuralbody
finetune-keypoint``), and the generalisable run as it is; Neural Body scored by ``neuralbody eval
RUN --split novel_view --views H --max-frames N`` (ZJU protocol), KeypointNeRF rendered from the
training views V at the same frames and held-out cameras H and scored the same way. Runs already
there are kept (delete ``WORK/finetune/NAME`` to redo).

Usage::

    NEURALBODY_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_keypoint_nerf.py --work work/kpnerf --steps 1000
    python bench/bench_keypoint_nerf.py --work work/kpnerf --steps 1000 --json kp.json --figure docs/keypoint_nerf_heldout.png
    python bench/bench_keypoint_nerf.py --work work/kpnerf --capture p2s --capture-inputs 0,1,2 --capture-camera 3
    python bench/bench_keypoint_nerf.py --work work/kpnerf --finetune demo --finetune-views 0,2,4,6 --finetune-frames 0:20 \
        --finetune-heldout 1,3,5,7 --minutes 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralbody.data.corpus import read_corpus  # noqa: E402
from neuralbody.data.images import write_png  # noqa: E402
from neuralbody.keypoint_nerf.model import KeypointNeRF, preset  # noqa: E402
from neuralbody.keypoint_nerf.scoring import render_and_score  # noqa: E402
from neuralbody.keypoint_nerf.train import TrainedRun, fit_corpus_regressor, load_trained  # noqa: E402
from neuralbody.recon.dataset import spread_views  # noqa: E402

CORPUS_ARGS = ["--subjects", "24", "--frames", "3", "--near-samples", "200", "--uniform-samples", "200"]


def _cli(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-m", "neuralbody.cli.main", *args, "--no-progress"], check=True, env=env)


def train(work: Path, corpus: Path, encoding: str, steps: int) -> TrainedRun:
    """The trained run of ``encoding`` (trained here to ``steps`` when short of them)."""
    run = work / "runs" / encoding
    if not (run / "checkpoint.pt").is_file() or load_trained(run).step < steps:
        _cli("train-keypoint", str(corpus), "--out", str(run), "--encoding", encoding, "--steps", str(steps), "--resume")
    return load_trained(run)


def evaluate(run: TrainedRun, corpus, inputs: list[int], targets: int, samples: int) -> dict:
    """Box PSNR / SSIM (means over the held-out people's frames and target cameras) and seconds a render."""
    rows = []
    for sample in corpus.samples("heldout_people"):
        capture = corpus.capture(sample.subject)
        others = [v for v in range(capture.num_views) if v not in inputs]
        chosen = [others[i] for i in np.unique(np.linspace(0, len(others) - 1, targets).round().astype(int))]
        for camera in chosen:
            score = render_and_score(run, capture, sample.frame, inputs, camera, num_samples=samples)
            rows.append((score.psnr_box, score.ssim_box, score.seconds, score.cpu_seconds))
    values = np.asarray(rows)
    return {"psnr_box": float(values[:, 0].mean()), "ssim_box": float(values[:, 1].mean()),
            "seconds_per_render": float(values[:, 2].mean()), "cpu_seconds_per_render": float(values[:, 3].mean()),
            "images": len(rows)}  # fmt: skip


def evaluate_capture(runs: dict[str, TrainedRun], capture_dir: Path, inputs: list[int], camera: int, frames: int,
                     samples: int) -> dict:  # fmt: skip
    """Box PSNR / SSIM of ``camera`` rendered from ``inputs`` on ``frames`` frames (those with vertices, spread)."""
    from neuralbody.data.capture import read_capture

    capture = read_capture(capture_dir)
    with_vertices = [f for f in range(capture.num_frames) if capture.vertices_path(f).is_file()]
    chosen = [with_vertices[i] for i in np.unique(np.linspace(0, len(with_vertices) - 1, frames).round().astype(int))]
    results = {}
    for name, run in runs.items():
        scores = [render_and_score(run, capture, f, inputs, camera, num_samples=samples) for f in chosen]
        results[name] = {"psnr_box": float(np.mean([s.psnr_box for s in scores])),
                         "ssim_box": float(np.mean([s.ssim_box for s in scores])), "frames": chosen}  # fmt: skip
        print(f"capture {capture_dir.name}: {name} camera {camera} from {inputs}, {len(chosen)} frames: "
              f"PSNR {results[name]['psnr_box']:.2f} dB, SSIM {results[name]['ssim_box']:.4f}")
    return results


def figure(path: Path, runs: dict[str, TrainedRun], corpus, inputs: list[int], samples: int) -> None:
    """Held-out person, first frame: the inputs, then each run's render and the truth at two other cameras."""
    sample = corpus.samples("heldout_people")[0]
    capture = corpus.capture(sample.subject)
    others = [v for v in range(capture.num_views) if v not in inputs]
    rows = [np.concatenate([capture.load_image(sample.frame, v) for v in inputs], axis=1)]
    for camera in (others[0], others[len(others) // 2]):
        tiles = [render_and_score(run, capture, sample.frame, inputs, camera, num_samples=samples).image for run in runs.values()]
        rows.append(np.concatenate([*tiles, capture.load_image(sample.frame, camera)], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    write_png(path, np.concatenate(rows, axis=0))


def finetune_comparison(args: argparse.Namespace) -> dict:
    """Neural Body from scratch, KeypointNeRF fine-tuned and KeypointNeRF as it is, on ``args.finetune``'s held-out cameras."""
    from neuralbody.cli.arguments import parse_index_list
    from neuralbody.data.capture import read_capture

    folder = args.work / "finetune" / (args.finetune_name or args.finetune.name)
    nb_run, kp_run = folder / "neuralbody", folder / "keypoint"
    common = ["--views", args.finetune_views, "--frames", args.finetune_frames, "--minutes", str(args.minutes)]
    if not (nb_run / "checkpoint.pt").is_file():
        _cli("train", str(args.finetune), "--out", str(nb_run), *common)
    nb_json = folder / "neuralbody_novel_view.json"
    if not nb_json.is_file():
        _cli("eval", str(nb_run), "--split", "novel_view", "--views", args.finetune_heldout, "--max-frames",
             str(args.eval_frames), "--json", str(nb_json), "--no-images", "--no-lpips")  # fmt: skip
    if not (kp_run / "checkpoint.pt").is_file():
        _cli("finetune-keypoint", str(args.finetune_init), str(args.finetune), "--out", str(kp_run), *common)
    scored = json.loads(nb_json.read_text())
    frames, cameras = scored["novel_view"]["frames"], scored["novel_view"]["views"]
    capture = read_capture(args.finetune)
    inputs = parse_index_list(args.finetune_views, limit=capture.num_views, what="finetune-views")
    rows = {"neuralbody": {"psnr_box": scored["novel_view"]["means"]["psnr_box"],
                           "ssim_box": scored["novel_view"]["means"]["ssim_box"], "steps": scored["step"]}}  # fmt: skip
    for name, run in (("keypoint_finetuned", load_trained(kp_run)), ("keypoint_generalisable", load_trained(args.finetune_init))):
        scores = [render_and_score(run, capture, f, inputs, c, num_samples=args.samples) for f in frames for c in cameras]
        rows[name] = {"psnr_box": float(np.mean([s.psnr_box for s in scores])),
                      "ssim_box": float(np.mean([s.ssim_box for s in scores])), "steps": run.step}  # fmt: skip
    print(f"{args.finetune}: training views {args.finetune_views}, frames {args.finetune_frames}, {args.minutes:g} min each; "
          f"scored at held-out cameras {cameras}, frames {frames} (ZJU box protocol)")
    print(f"{'model':<24} {'steps':>7} {'PSNR dB':>8} {'SSIM':>7}")
    for name, row in rows.items():
        print(f"{name:<24} {row['steps']:>7} {row['psnr_box']:>8.2f} {row['ssim_box']:>7.4f}")
    return {"capture": str(args.finetune), "views": args.finetune_views, "frames": args.finetune_frames, "minutes": args.minutes,
            "eval_frames": frames, "eval_cameras": cameras, "rows": rows}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (corpus/, runs/)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each encoding (default 1000)")
    parser.add_argument("--inputs", type=int, default=3, help="input views, spread around the ring (default 3)")
    parser.add_argument("--targets", type=int, default=2, help="held-out cameras scored per frame (default 2)")
    parser.add_argument("--samples", type=int, default=48, help="samples per ray (default 48)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--figure", type=Path, default=None, help="write a picture of a held-out person here")
    parser.add_argument("--capture", type=Path, default=None, help="also render this capture (fitted Anny vertices) untrained")
    parser.add_argument("--capture-inputs", default="0,1,2", help="its input cameras (default 0,1,2)")
    parser.add_argument("--capture-camera", type=int, default=3, help="its camera to render and score (default 3)")
    parser.add_argument("--capture-frames", type=int, default=8, help="its frames scored, spread (default 8)")
    parser.add_argument("--skip-corpus", action="store_true", help="only the --capture part (the runs must exist)")
    parser.add_argument("--finetune", type=Path, default=None, help="the fine-tuning comparison on this capture (only)")
    parser.add_argument("--finetune-init", type=Path, default=None, help="the generalisable run (default WORK/runs/relative)")
    parser.add_argument("--finetune-views", default="0,2,4,6", help="training cameras (default 0,2,4,6)")
    parser.add_argument("--finetune-frames", default="0:20", help="training frames (default 0:20)")
    parser.add_argument("--finetune-heldout", default="1,3,5,7", help="held-out cameras scored (default 1,3,5,7)")
    parser.add_argument("--finetune-name", default=None, help="subfolder of WORK/finetune (default the capture's name)")
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes of each model (default 3)")
    parser.add_argument("--eval-frames", type=int, default=4, help="frames scored, as eval --max-frames (default 4)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    if args.finetune:
        args.finetune_init = args.finetune_init or args.work / "runs" / "relative"
        result = finetune_comparison(args)
        if args.json:
            args.json.write_text(json.dumps({"finetune": result, "time": time.ctime()}, indent=2) + "\n")
        return 0
    corpus_dir = args.work / "corpus"
    if not (corpus_dir / "corpus.json").is_file():
        _cli("synth-corpus", str(corpus_dir), *CORPUS_ARGS)
    corpus = read_corpus(corpus_dir)
    inputs = spread_views(corpus.capture(corpus.samples("heldout_people")[0].subject).num_views, args.inputs)
    runs, results = {}, {}
    for encoding in ("relative", "global"):
        runs[encoding] = train(args.work, corpus_dir, encoding, args.steps)
    if args.capture:
        capture_inputs = [int(v) for v in args.capture_inputs.split(",")]
        results["capture"] = evaluate_capture(runs, args.capture, capture_inputs, args.capture_camera, args.capture_frames,
                                              args.samples)  # fmt: skip
    if args.skip_corpus:
        if args.json:
            args.json.write_text(json.dumps({"results": results, "time": time.ctime()}, indent=2) + "\n")
        return 0
    for encoding in ("relative", "global"):
        results[encoding] = dict(evaluate(runs[encoding], corpus, inputs, args.targets, args.samples), train_s=runs[encoding].elapsed_s,
                                 steps=runs[encoding].step)  # fmt: skip
    torch.manual_seed(0)
    untrained = TrainedRun(KeypointNeRF(preset("relative")).eval(), fit_corpus_regressor(corpus), 0)
    results["untrained"] = dict(evaluate(untrained, corpus, inputs, args.targets, args.samples), train_s=0.0, steps=0)
    print(f"held-out people: {len(corpus.samples('heldout_people'))} frames, inputs {inputs}, "
          f"{args.targets} other cameras each, ZJU box protocol, {args.samples} samples a ray")
    print(f"{'encoding':<10} {'steps':>6} {'train min':>9} {'PSNR dB':>8} {'SSIM':>7} {'s/render':>9} {'cpu s':>6}")
    for name, row in results.items():
        if name == "capture":
            continue
        print(f"{name:<10} {row['steps']:>6} {row['train_s'] / 60:>9.1f} {row['psnr_box']:>8.2f} {row['ssim_box']:>7.4f} "
              f"{row['seconds_per_render']:>9.2f} {row['cpu_seconds_per_render']:>6.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"inputs": inputs, "results": results, "time": time.ctime()}, indent=2) + "\n")
    if args.figure:
        figure(args.figure, runs, corpus, inputs, args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
