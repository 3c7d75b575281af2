"""Training-speed benchmark of Neural Body's ``fast`` and ``faithful`` configurations.

On one fixed synthetic capture (``neuralbody synth WORK/capture --frames 30 --views 8 --res
256``, the demo's capture; made here when absent) each configuration trains for the same
budget of training seconds (held-out validation renders are not counted), in its own process
so that peak memory is its own. Every ``--val-seconds`` of training the held-out camera of
the middle training frame is rendered (``Trainer.validate``: box PSNR, dB). The table gives
per configuration:

* time (training seconds) at which held-out box PSNR first reached 25 dB and 28 dB,
* training rays per second (rays per step x steps / training seconds),
* seconds to render one 512 x 512 image (the held-out camera, intrinsics scaled),
* peak resident memory (``resource.getrusage``; on CUDA ``torch.cuda.max_memory_allocated``),
* the final held-out box PSNR,

then the ratio line fast / faithful. On CUDA every timed region ends with
``torch.cuda.synchronize``. CPU seconds of the training process are shown too: on a shared
machine they tell the cost of a step without the other processes' interference.

Usage::

    NEURALBODY_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_training.py --work /tmp/nbbench --minutes 5
    python bench/bench_training.py --work /tmp/nbbench --minutes 2 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("bench_training")

CONFIGS = ("fast", "faithful")
THRESHOLDS_DB = (25.0, 28.0)


@dataclasses.dataclass
class BenchResult:
    """One configuration's figures (seconds are training seconds, validation excluded)."""

    config: str
    steps: int
    train_s: float
    train_cpu_s: float
    rays_per_s: float
    reach_s: dict  # threshold dB (as str) -> seconds or None
    render_512_s: float
    peak_memory_mb: float
    final_psnr: float
    curve: list  # [(train_s, psnr_box)]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ensure_capture(work: Path) -> Path:
    """The demo's synthetic capture under ``work/capture`` (made by ``neuralbody synth`` if absent)."""
    capture = work / "capture"
    if not (capture / "annots.npy").exists() and not (capture / "meta.json").exists():
        log.info("making the synthetic capture in %s (about a minute)", capture)
        subprocess.run(
            [sys.executable, "-m", "neuralbody.cli.main", "synth", str(capture),
             "--frames", "30", "--views", "8", "--res", "256", "--seed", "0"],
            check=True,
        )
    return capture


def _scaled_camera(camera, size: int):
    """The camera re-sampled to a size x size image (intrinsics scaled per axis)."""
    import numpy as np

    K = np.array(camera.K, dtype=np.float64)
    K[0] *= size / camera.width
    K[1] *= size / camera.height
    return dataclasses.replace(camera, K=K, width=size, height=size)


def run_worker(args: argparse.Namespace) -> BenchResult:
    """Train one configuration for the budget (this process only); returns its figures."""
    import torch

    from neuralbody.rendering.render import frame_occupancy, render_view
    from neuralbody.training.config import TrainConfig
    from neuralbody.training.trainer import Trainer

    if args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", max(1, (os.cpu_count() or 2) - 1))))
    out = Path(args.work) / "runs" / args.worker
    if out.exists():
        import shutil

        shutil.rmtree(out)
    config = TrainConfig.from_preset(
        args.worker, data=str(Path(args.work) / "capture"), out=str(out), device=args.device,
        steps=10**9, minutes=args.minutes, val_every=0, ckpt_every=0,
    )
    trainer = Trainer(config, progress=False)
    device = trainer.device
    budget = 60.0 * args.minutes
    train_s, cpu_s, next_val = 0.0, 0.0, args.val_seconds
    curve: list[tuple[float, float]] = []
    from tqdm import tqdm

    bar = tqdm(total=round(budget), desc=f"train {args.worker}", unit="s", disable=args.no_progress)
    while train_s < budget:
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.train_step()
        trainer.step += 1
        _sync(device)
        spent = time.perf_counter() - started
        train_s += spent
        trainer.elapsed = train_s  # the learning rate decays over the budget (Trainer.progress_fraction)
        cpu_s += time.process_time() - cpu_started
        bar.update(min(spent, budget - bar.n))
        if train_s >= next_val or train_s >= budget:
            psnr = trainer.validate()
            curve.append((round(train_s, 2), round(float(psnr), 3)))
            bar.set_postfix(psnr=f"{psnr:.2f}")
            next_val = train_s + args.val_seconds
    bar.close()
    camera = _scaled_camera(trainer.capture.cameras[config.val_view], 512)
    frame = config.train_frames[len(config.train_frames) // 2]
    trainer.model.eval()
    settings = config.render_settings()
    field = trainer.model.compile_frame(frame, trainer.capture.load_body(frame))
    occupancy = frame_occupancy(field, settings)
    with torch.no_grad():
        render_view(field, _scaled_camera(camera, 64), settings=settings, background=trainer.background,
                    occupancy=occupancy)  # warm-up
        _sync(device)
        started = time.perf_counter()
        render_view(field, camera, settings=settings, background=trainer.background, occupancy=occupancy)
        _sync(device)
        render_s = time.perf_counter() - started
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    reach = {f"{t:g}": next((s for s, p in curve if p >= t), None) for t in THRESHOLDS_DB}
    return BenchResult(
        config=args.worker, steps=trainer.step, train_s=train_s, train_cpu_s=cpu_s,
        rays_per_s=trainer.step * config.rays_per_step / max(train_s, 1e-9), reach_s=reach,
        render_512_s=render_s, peak_memory_mb=peak_mb, final_psnr=curve[-1][1] if curve else math.nan, curve=curve,
    )


def _fmt_s(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def format_table(results: list[BenchResult]) -> str:
    """The results as a fixed-width text table plus the fast / faithful ratio line."""
    head = (f"{'config':<10}{'steps':>7}{'train s':>9}{'cpu s':>8}{'to 25 dB':>10}{'to 28 dB':>10}"
            f"{'rays/s':>9}{'512² s':>9}{'peak MB':>9}{'final dB':>10}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.config:<10}{r.steps:>7}{r.train_s:>9.0f}{r.train_cpu_s:>8.0f}{_fmt_s(r.reach_s['25']):>10}"
            f"{_fmt_s(r.reach_s['28']):>10}{r.rays_per_s:>9.0f}{r.render_512_s:>9.2f}{r.peak_memory_mb:>9.0f}"
            f"{r.final_psnr:>10.2f}"
        )
    by_name = {r.config: r for r in results}
    if "fast" in by_name and "faithful" in by_name:
        fast, slow = by_name["fast"], by_name["faithful"]

        def reach_ratio(key: str) -> str:
            a, b = fast.reach_s[key], slow.reach_s[key]
            if a is None:
                return "fast never"
            if b is None:
                return f">{fast.train_s / a:.1f}x sooner (faithful never)"
            return f"{b / a:.1f}x sooner"

        lines.append(
            f"fast / faithful: 25 dB {reach_ratio('25')}, 28 dB {reach_ratio('28')}, "
            f"{fast.rays_per_s / slow.rays_per_s:.1f}x rays/s, {slow.render_512_s / fast.render_512_s:.1f}x faster 512² render, "
            f"{fast.peak_memory_mb / slow.peak_memory_mb:.2f}x peak memory, {fast.final_psnr - slow.final_psnr:+.2f} dB final"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="folder for the capture and the runs (capture made if absent)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per configuration (default 5)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated presets (default fast,faithful)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--val-seconds", type=float, default=30.0, help="training seconds between validations (default 30)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: train one config, print JSON
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    work = Path(args.work)
    if args.worker:
        result = run_worker(args)
        print("BENCH_RESULT " + json.dumps(dataclasses.asdict(result)))
        return 0
    work.mkdir(parents=True, exist_ok=True)
    ensure_capture(work)
    results = []
    for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
        log.info("training %s for %.1f min", name, args.minutes)
        command = [sys.executable, __file__, "--work", str(work), "--minutes", str(args.minutes), "--device", args.device,
                   "--val-seconds", str(args.val_seconds), "--worker", name] + (["--no-progress"] if args.no_progress else [])
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        line = next(l for l in done.stdout.splitlines() if l.startswith("BENCH_RESULT "))
        results.append(BenchResult(**json.loads(line[len("BENCH_RESULT "):])))
    print(format_table(results))
    if args.json:
        from neuralbody.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps([dataclasses.asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
