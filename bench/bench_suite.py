"""The capture suite: Neural Body on nine synthetic captures that vary what real captures vary.

One capture is not a benchmark: the demo's 28 dB is a property of the demo's capture. Each
capture of :data:`SUITE` differs in the person (Anny phenotypes, skin tone), the clothing
(fine-detail patterns), the motion (small to large), the lighting (lights fixed in the world,
shadows), the files (JPEG), the masks (exact, or eroded / dilated / ragged / with holes, and
then no exact-mask flag), the body files (our body model, or what a ZJU-MoCap user holds: a
6,890-vertex body with SMPL-shaped parameters and no ``neuralbody.json``), the training cameras
(3-6), lens distortion and the resolution (256-512 px).

For each capture the script runs the README's commands, each in its own process::

    neuralbody synth CAPTURE ...flags of the spec...
    neuralbody train CAPTURE --out RUN --minutes M --threads 1 [--views V --frames 0:N]
    neuralbody eval RUN --no-images --no-lpips --max-frames F --json RUN/suite_eval.json

(``--views`` / ``--frames`` only for captures without ``neuralbody.json``, as a ZJU-MoCap user
passes them), up to ``--jobs`` captures at a time, then prints one line per capture (box PSNR
and SSIM under the ``zju`` protocol, on novel views and unseen poses) and the mean over the
captures: **the mean is the headline**. Captures are made once and kept under ``WORK/captures``.

Three captures (a third of the seeds) are ``held_out``: they are not run unless
``--include-held-out`` is given, which is for a final report only, so that nothing is tuned on
them.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_suite.py --work /tmp/nbsuite --minutes 8 --jobs 2
    python bench/bench_suite.py --work /tmp/nbsuite --steps 3 --tiny --only studio-sway   # smoke test
    python bench/bench_suite.py --work /tmp/nbsuite --steps 250 --max-frames 2 --only A,B --label v2   # step-matched A/B

``--label`` keeps a second code version's runs beside the first's (``runs/NAME-full-250steps-v2``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("bench_suite")

SPLITS = ("novel_view", "novel_pose")


@dataclasses.dataclass(frozen=True)
class CaptureSpec:
    """One capture of the suite: a name, a seed, and the ``neuralbody synth`` settings.

    Attributes:
        name: short unique name (folder names).
        seed: the synth seed (appearance, motion phases, lens distortion, mask errors).
        held_out: kept unseen until a final report (``--include-held-out``).
        synth: :class:`neuralbody.synth.generate.SynthConfig` fields other than ``seed``.
    """

    name: str
    seed: int
    held_out: bool
    synth: dict

    def config(self, *, tiny: bool = False):
        """The :class:`~neuralbody.synth.generate.SynthConfig`; ``tiny``: 6 frames at 64 px, 1 sample a pixel."""
        from neuralbody.synth.generate import SynthConfig

        fields = dict(self.synth, seed=self.seed)
        if tiny:
            fields.update(frames=6, resolution=64, supersample=1)
            if fields.get("mask_errors"):
                fields["mask_error_px"] = min(fields.get("mask_error_px", 2.0), 1.0)
        return SynthConfig(**fields)


def _spec(name, seed, *, held_out=False, **synth) -> CaptureSpec:
    return CaptureSpec(name=name, seed=seed, held_out=held_out, synth=synth)


# phenotype: Anny's gender, age, muscle, weight, height, proportions (0.5: the mean person; age 0.5-1: adults)
SUITE = (
    _spec("studio-sway", 11, phenotype=(0.5, 0.6, 0.5, 0.5, 0.5, 0.5), motion="sway", views=8, train_views=4,
          resolution=256),
    _spec("dots-dark-warm", 12, phenotype=(0.8, 0.7, 0.35, 0.75, 0.35, 0.45), motion="sway", top_pattern="dots",
          skin_tone="dark", trousers="light", lighting="warm-point", image_format="jpg", jpeg_quality=90,
          mask_errors=("ragged",), mask_error_px=2.0, body_format="smpl-like", views=8, train_views=4, resolution=384),
    _spec("walk-pinstripe", 13, phenotype=(0.15, 0.75, 0.6, 0.3, 0.8, 0.6), motion="walk", top_pattern="pinstripe",
          skin_tone="light", trousers="navy", lighting="hard-side", image_format="jpg", jpeg_quality=85,
          mask_errors=("dilate",), mask_error_px=3.0, views=8, train_views=3, resolution=256, distortion=True),
    _spec("dance-print", 14, phenotype=(0.9, 0.55, 0.8, 0.45, 0.7, 0.5), motion="dance", top_pattern="print",
          skin_tone="brown", trousers="charcoal", lighting="overhead", mask_errors=("erode", "holes"),
          mask_error_px=2.0, body_format="smpl-like", views=10, train_views=6, resolution=512),
    _spec("wave-slim", 15, phenotype=(0.05, 0.65, 0.3, 0.2, 0.35, 0.4), motion="wave", skin_tone="tan",
          trousers="khaki", image_format="jpg", jpeg_quality=75, mask_errors=("ragged", "holes"), mask_error_px=2.0,
          views=9, train_views=5, resolution=320, distortion=True),
    _spec("sway-smpl-512", 16, phenotype=(0.65, 0.9, 0.4, 0.85, 0.55, 0.5), motion="sway", top_pattern="dots",
          skin_tone="medium", trousers="white", lighting="hard-side", image_format="jpg", jpeg_quality=95,
          body_format="smpl-like", views=7, train_views=3, resolution=512),
    _spec("held-dance-warm", 21, held_out=True, phenotype=(0.3, 0.8, 0.5, 0.65, 0.6, 0.55), motion="dance",
          top_pattern="pinstripe", skin_tone="deep", trousers="light", lighting="warm-point", image_format="jpg",
          jpeg_quality=85, mask_errors=("ragged",), mask_error_px=2.5, body_format="smpl-like", views=8, train_views=4,
          resolution=384, distortion=True),
    _spec("held-walk-print", 22, held_out=True, phenotype=(0.7, 0.6, 0.7, 0.35, 0.9, 0.6), motion="walk",
          top_pattern="print", skin_tone="medium", trousers="brown", mask_errors=("dilate", "holes"),
          mask_error_px=2.0, body_format="smpl-like", views=10, train_views=5, resolution=256),
    _spec("held-wave-dots", 23, held_out=True, phenotype=(0.4, 0.95, 0.25, 0.6, 0.25, 0.45), motion="wave",
          top_pattern="dots", skin_tone="light", trousers="navy", lighting="overhead", image_format="jpg",
          jpeg_quality=80, mask_errors=("erode", "ragged"), mask_error_px=1.5, views=6, train_views=3,
          resolution=448, distortion=True),
)  # fmt: skip


def suite(*, include_held_out: bool = False, only: list[str] | None = None) -> list[CaptureSpec]:
    """The specs to run: the development captures (and the held-out ones when asked), or those named in ``only``."""
    names = {spec.name for spec in SUITE}
    unknown = sorted(set(only or []) - names)
    if unknown:
        raise ValueError(f"--only: unknown captures {unknown}; the suite has {', '.join(s.name for s in SUITE)}")
    chosen = [s for s in SUITE if (include_held_out or not s.held_out)]
    if only:
        chosen = [s for s in SUITE if s.name in only and (include_held_out or not s.held_out)]
        if len(chosen) != len(only):
            raise ValueError("--only names a held-out capture; add --include-held-out (for a final report only)")
    return chosen


# ----------------------------------------------------------------------------------------------
# commands
def synth_argv(config) -> list[str]:
    """``neuralbody synth`` options that make ``config`` (a SynthConfig; the output folder goes first)."""
    argv = ["--frames", str(config.frames), "--views", str(config.views), "--res", str(config.resolution),
            "--motion", config.motion, "--seed", str(config.seed), "--supersample", str(config.supersample),
            "--train-views", str(config.train_views), "--top", config.top_pattern, "--lighting", config.lighting,
            "--image-format", config.image_format, "--jpeg-quality", str(config.jpeg_quality),
            "--body-format", config.body_format]  # fmt: skip
    if config.distortion:
        argv.append("--distortion")
    if config.phenotype is not None:
        argv += ["--phenotype", ",".join(f"{v:g}" for v in config.phenotype)]
    if config.skin_tone:
        argv += ["--skin", config.skin_tone]
    if config.trousers:
        argv += ["--trousers", config.trousers]
    if config.mask_errors:
        argv += ["--mask-errors", ",".join(config.mask_errors), "--mask-error-px", f"{config.mask_error_px:g}"]
    return argv


def train_split_argv(config) -> list[str]:
    """``--views`` / ``--frames`` for a capture without ``neuralbody.json`` (none otherwise)."""
    if config.body_format == "anny":
        return []
    from neuralbody.synth.generate import train_frame_count
    from neuralbody.synth.rig import split_cameras

    train, _ = split_cameras(config.views, config.train_views)
    return ["--views", ",".join(str(v) for v in train), "--frames", f"0:{train_frame_count(config)}"]


def _neuralbody(argv: list[str], log_path: Path) -> None:
    """Run ``neuralbody ARGV`` (this interpreter, 1 thread), appending its output to ``log_path``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NEURALBODY_THREADS="1")
    with log_path.open("a") as handle:
        handle.write("$ neuralbody " + " ".join(argv) + "\n")
        handle.flush()
        done = subprocess.run([sys.executable, "-m", "neuralbody.cli.main", *argv], stdout=handle,
                              stderr=subprocess.STDOUT, env=env, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"`neuralbody {argv[0]}` failed (exit {done.returncode}); see {log_path}")


@dataclasses.dataclass
class SuiteRow:
    """One capture's figures: per split the mean box PSNR (dB) and SSIM, images; training steps."""

    name: str
    seed: int
    held_out: bool
    steps: int
    means: dict  # split -> {"psnr_box", "ssim_box", "images"}
    seconds: float
    settings: dict
    clean_means: dict = dataclasses.field(default_factory=dict)  # the same against images without mask errors


def run_name(name: str, tag: str, budget: str, label: str = "") -> str:
    """A run's folder name: ``NAME-TAG-BUDGET``, then ``-LABEL`` when a label is given (two code versions side by side)."""
    return f"{name}-{tag}-{budget}" + (f"-{label}" if label else "")


def run_capture(spec: CaptureSpec, args: argparse.Namespace) -> SuiteRow:
    """Make (once), train and evaluate one capture; returns its row."""
    started = time.perf_counter()
    config = spec.config(tiny=args.tiny)
    tag = "tiny" if args.tiny else "full"
    capture = args.work / "captures" / f"{spec.name}-{tag}"
    budget = f"{args.steps}steps" if args.steps else f"{args.minutes:g}min"
    run = args.work / "runs" / run_name(spec.name, tag, budget, args.label)
    run.mkdir(parents=True, exist_ok=True)
    log_path = run / "suite.log"
    if not (capture / "annots.npy").is_file():
        shutil.rmtree(capture, ignore_errors=True)
        _neuralbody(["synth", str(capture), *synth_argv(config), "--no-progress"], log_path)
    metrics = run / "suite_eval.json"
    if not (args.reuse and metrics.is_file()):
        shutil.rmtree(run / "run", ignore_errors=True)
        budget_argv = ["--steps", str(args.steps)] if args.steps else ["--minutes", f"{args.minutes:g}"]
        _neuralbody(["train", str(capture), "--out", str(run / "run"), *budget_argv, "--threads", "1",
                     *train_split_argv(config), "--no-progress"], log_path)  # fmt: skip
        _neuralbody(["eval", str(run / "run"), "--no-images", "--no-lpips", "--max-frames", str(args.max_frames),
                     "--json", str(metrics), "--no-progress"], log_path)  # fmt: skip
    document = _read_metrics(metrics)
    means = _split_means(document)
    clean_means = means
    if config.mask_errors:
        clean_means = _split_means(_read_metrics(clean_truth_metrics(config, capture, run, args, log_path)))
    return SuiteRow(name=spec.name, seed=spec.seed, held_out=spec.held_out, steps=int(document.get("step", 0)),
                    means=means, seconds=time.perf_counter() - started, settings=dataclasses.asdict(config),
                    clean_means=clean_means)  # fmt: skip


def clean_truth_metrics(config, capture: Path, run: Path, args: argparse.Namespace, log_path: Path) -> Path:
    """The run scored against its capture rendered again without mask errors (made once, beside it).

    The capture's images are blacked out outside its degraded masks, on the held-out cameras
    too, so the ZJU protocol's ground truth carries the errors (holes, ragged or grown edges) that
    no method can predict; this second score is against the person as rendered.
    """
    clean = capture.with_name(capture.name + "-clean")
    if not (clean / "annots.npy").is_file():
        shutil.rmtree(clean, ignore_errors=True)
        _neuralbody(["synth", str(clean), *synth_argv(dataclasses.replace(config, mask_errors=())), "--no-progress"],
                    log_path)  # fmt: skip
    metrics = run / "suite_eval_clean.json"
    if not (args.reuse and metrics.is_file()):
        _neuralbody(["eval", str(run / "run"), "--no-images", "--no-lpips", "--max-frames", str(args.max_frames),
                     "--truth", str(clean), "--json", str(metrics), "--no-progress"], log_path)  # fmt: skip
    return metrics


def _read_metrics(path: Path) -> dict:
    document = json.loads(path.read_text())
    if document.get("protocol") != "zju":
        raise RuntimeError(f"{path}: scored under protocol {document.get('protocol')!r}, expected 'zju'")
    return document


def _split_means(document: dict) -> dict:
    return {split: {"psnr_box": document[split]["means"]["psnr_box"], "ssim_box": document[split]["means"]["ssim_box"],
                    "images": document[split]["images"]} for split in SPLITS if split in document}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# the table
def suite_means(rows: list[SuiteRow], *, clean: bool = False) -> dict:
    """Per split the mean over captures of box PSNR and SSIM (None where a capture lacks the split);
    ``clean``: of the scores against the images without mask errors."""
    means = {}
    for split in SPLITS:
        for key in ("psnr_box", "ssim_box"):
            values = [(row.clean_means if clean else row.means).get(split, {}).get(key) for row in rows]
            ok = [float(v) for v in values if isinstance(v, (int, float))]
            means[f"{split}.{key}"] = float(sum(ok) / len(ok)) if ok and len(ok) == len(values) else None
    return means


def _describe(settings: dict) -> str:
    parts = [f"{settings['resolution']}px", f"{settings['train_views']}/{settings['views']}cam", settings["motion"],
             settings["top_pattern"], settings["lighting"], settings["image_format"]]  # fmt: skip
    if settings["mask_errors"]:
        parts.append("+".join(settings["mask_errors"]))
    if settings["body_format"] != "anny":
        parts.append("smpl-like")
    if settings["distortion"]:
        parts.append("dist")
    return " ".join(parts)


def format_table(rows: list[SuiteRow]) -> str:
    """One line per capture and the mean line (the headline)."""

    def cell(value, digits):
        return "-" if not isinstance(value, (int, float)) or math.isnan(value) else f"{value:.{digits}f}"

    header = (f"{'capture':<16} {'seed':>4} {'steps':>6} {'NV PSNR':>8} {'NV SSIM':>8} {'NP PSNR':>8} {'NP SSIM':>8}"
              f" {'NV true':>8} {'NP true':>8}  settings")
    lines = [header, "-" * len(header)]
    for row in rows:
        nv, np_ = row.means.get("novel_view", {}), row.means.get("novel_pose", {})
        name = row.name + ("*" if row.held_out else "")
        clean_nv, clean_np = row.clean_means.get("novel_view", {}), row.clean_means.get("novel_pose", {})
        lines.append(f"{name:<16} {row.seed:>4} {row.steps:>6} {cell(nv.get('psnr_box'), 2):>8} "
                     f"{cell(nv.get('ssim_box'), 4):>8} {cell(np_.get('psnr_box'), 2):>8} {cell(np_.get('ssim_box'), 4):>8}"
                     f" {cell(clean_nv.get('psnr_box'), 2):>8} {cell(clean_np.get('psnr_box'), 2):>8}"
                     f"  {_describe(row.settings)}")  # fmt: skip
    means, clean = suite_means(rows), suite_means(rows, clean=True)
    lines.append("-" * len(header))
    lines.append(f"{'mean':<16} {'':>4} {'':>6} {cell(means['novel_view.psnr_box'], 2):>8} "
                 f"{cell(means['novel_view.ssim_box'], 4):>8} {cell(means['novel_pose.psnr_box'], 2):>8} "
                 f"{cell(means['novel_pose.ssim_box'], 4):>8} {cell(clean['novel_view.psnr_box'], 2):>8} "
                 f"{cell(clean['novel_pose.psnr_box'], 2):>8}  over {len(rows)} captures")  # fmt: skip
    lines.append("box PSNR (dB) / SSIM under the zju protocol; NV: novel views, NP: unseen poses; * held out;")
    lines.append("true: box PSNR against the same capture rendered without its mask errors (the protocol's truth")
    lines.append("     carries them: holes and ragged or grown edges no method can predict)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the captures and runs")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per capture, minutes (default 8)")
    parser.add_argument("--steps", type=int, default=None, help="training budget in steps instead (smoke tests)")
    parser.add_argument("--jobs", type=int, default=1, help="captures trained at the same time (default 1)")
    parser.add_argument("--max-frames", type=int, default=4, help="frames evaluated per split (default 4)")
    parser.add_argument("--only", default=None, help="comma list of capture names")
    parser.add_argument("--include-held-out", action="store_true", help="run the held-out captures too (final report only)")
    parser.add_argument("--tiny", action="store_true", help="6 frames at 64 px (smoke tests; figures meaningless)")
    parser.add_argument("--reuse", action="store_true", help="reuse a capture's earlier evaluation at the same budget")
    parser.add_argument("--label", default="", help="suffix of the run folders (compare code versions at one budget)")
    parser.add_argument("--json", type=Path, default=None, help="results JSON (default WORK/suite.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.jobs < 1 or args.max_frames < 1 or (args.steps is not None and args.steps < 1) or args.minutes <= 0:
        parser.error("--jobs, --max-frames and --steps must be >= 1 and --minutes > 0")
    try:
        specs = suite(include_held_out=args.include_held_out, only=args.only.split(",") if args.only else None)
    except ValueError as error:
        parser.error(str(error))
    args.work.mkdir(parents=True, exist_ok=True)
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    log.info("%d captures, %s each, %d at a time", len(specs), budget, args.jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda spec: run_capture(spec, args), specs))
    table = format_table(rows)
    path = args.json or args.work / "suite.json"
    document = {
        "budget": {"steps": args.steps} if args.steps else {"minutes": args.minutes}, "tiny": args.tiny,
        "protocol": "zju", "means": suite_means(rows), "means_without_mask_errors": suite_means(rows, clean=True),
        "captures": [dataclasses.asdict(r) for r in rows],
    }  # fmt: skip
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
