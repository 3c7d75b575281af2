"""Seed 002's comparison on held-out people: PIFu, the multi-view multi-scale model, the fitted body alone; ablations.

On a corpus (``neuralbody synth-corpus WORK/corpus``, made here with the defaults when absent: 32
people, 6 held out, 3 frames each, 8 cameras at 256 px), each model trains in its own process
for ``--cpu-minutes`` of its own CPU time (``neuralbody train-recon --cpu-minutes M --resume``;
the budget to use on a shared machine) or else ``--minutes`` of wall clock (a run already
trained that long is kept; ``--no-train`` scores the runs in ``WORK/runs`` as they are), then every frame of the held-out split (``--split``, at most
``--max-frames``) is reconstructed (``neuralbody.recon.reconstruct``, 1 cm grid, coarse to fine)
and scored against the clothed ground-truth surface (``mesh_metrics``, ``--samples`` points a
mesh): P2S (prediction -> ground truth, cm), Chamfer-L2 as the seed defines it
(``0.5 completeness^2 + 0.5 accuracy^2``, cm^2), volumetric IoU and normal consistency. Rows:

* ``pifu``: PIFu, camera 0 alone;
* ``mvms``: the multi-view multi-scale model, 4 cameras spread around the ring (and, as the
  views ablation, 2 and 1 of them: the same model, which trains on 1 to 4 views);
* ``mvms-1scale``: the same with one feature scale (the scales ablation), 4 cameras;
* ``mvms-body``: the multi-view multi-scale model with a body prior (PaMIR's idea, not the seed's
  model: :mod:`neuralbody.recon.body_prior`), 4 cameras, reading the frame's *fitted body* (the
  same fit as the ``fitted body`` row, made once a frame);
* ``visual hull``: occupied wherever the 4 cameras' masks agree (no learning; the carving every
  learned row also applies);
* ``fitted body``: ``neuralbody fit``'s fitter (:class:`neuralbody.fitting.optimize.SequenceFitter`)
  on the same 4 cameras: COCO keypoints of the true body plus ``--keypoint-noise`` px of noise,
  and the masks (which include the clothes); the model-based row;
* ``true body``: the unclothed body the person was made from (what a perfect body fit gives).

``--reuse OLD.json`` takes the rows that learn nothing (visual hull, fitted body, true body) from
an earlier ``--json`` of the same split, frames and sample count instead of recomputing them.
The body fits are kept in ``WORK/fits/`` (vertices and the fit's seconds) and read back by later
runs with the same frames, views and keypoint noise. ``--skip-frames N`` scores frames ``N ..
N + max-frames - 1`` of the split (the development people after the reported ones).

Usage::

    . .venv/bin/activate          # from the repository root
    NEURALBODY_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_recon.py --work /tmp/nbrecon --cpu-minutes 30
    python bench/bench_recon.py --work /tmp/nbrecon --minutes 5 --max-frames 6 --json recon.json --meshes /tmp/nbrecon/meshes
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_recon")

MODELS = ("pifu", "mvms", "mvms-1scale", "mvms-body")
FIXED_METHODS = ("visual hull", "fitted body", "true body")
"""The rows that learn nothing (``--reuse`` takes them from an earlier result)."""


@dataclasses.dataclass
class Row:
    """One method's mean scores over the evaluated frames (lengths in cm, Chamfer in cm^2)."""

    method: str
    views: int
    p2s_cm: float
    chamfer_l2_cm2: float
    iou: float
    normal_consistency: float
    seconds: float
    frames: int


def repository_root() -> Path:
    return Path(__file__).resolve().parents[1]


def run_command(args: list[str]) -> float:
    """Run ``python -m neuralbody.cli.main ARGS`` from the repository root; returns its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repository_root()), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-m", "neuralbody.cli.main", *args], check=True, cwd=repository_root(), env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ensure_corpus(work: Path, corpus: Path | None) -> Path:
    if corpus is not None:
        return corpus
    corpus = work / "corpus"
    if not (corpus / "corpus.json").is_file():
        started = time.perf_counter()
        run_command(["synth-corpus", str(corpus), "--no-progress"])
        log.info("corpus made in %.0f s", time.perf_counter() - started)
    return corpus


def train(corpus: Path, run: Path, model: str, minutes: float | None, cpu_minutes: float | None, device: str,
          skip: bool = False) -> dict:  # fmt: skip
    """Train (or resume) ``model`` to ``cpu_minutes`` of its CPU time, else ``minutes`` of wall clock
    (``skip``: take the run as it is); returns its steps, wall minutes and training CPU minutes, and
    the CPU seconds spent now (None: kept)."""
    from neuralbody.recon.train import CHECKPOINT_NAME
    from neuralbody.training.checkpoint import load_checkpoint

    key, budget, flag = ("cpu_s", cpu_minutes, "--cpu-minutes") if cpu_minutes else ("elapsed_s", minutes, "--minutes")
    spent = None
    payload = load_checkpoint(run / CHECKPOINT_NAME) if (run / CHECKPOINT_NAME).is_file() else None
    if payload is None and skip:
        raise ValueError(f"{run}: no checkpoint to score; run without --no-train")
    if not skip and (payload is None or payload.get(key, 0.0) < 60 * budget - 1):
        spent = run_command(["train-recon", str(corpus), "--model", model, "--out", str(run), flag, str(budget),
                             "--resume", "--device", device, "--no-progress"])  # fmt: skip
        payload = load_checkpoint(run / CHECKPOINT_NAME)
    return {"steps": int(payload["step"]), "minutes": payload["elapsed_s"] / 60,
            "cpu_minutes": payload.get("cpu_s", 0.0) / 60, "cpu_s": spent}  # fmt: skip


def visual_hull_model():
    """A model that says "inside" everywhere: with carving, the visual hull of the views."""
    import torch

    from neuralbody.recon.model import PixelAlignedOccupancy, ReconModelConfig

    model = PixelAlignedOccupancy(ReconModelConfig(input_size=32, channels=8, stacks=1, depth=2, scales=("s4",)))
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.fill_(4.0)
    return model.eval()


def score(pred, gt, samples: int) -> tuple[float, float, float, float]:
    from neuralbody.evaluation.geometry_metrics import mesh_metrics
    from neuralbody.recon.reconstruct import chamfer_l2_seed

    metrics = mesh_metrics(pred, gt, num_samples=samples)
    return (metrics.point_to_surface * 100, chamfer_l2_seed(metrics) * 1e4, metrics.volumetric_iou,
            metrics.normal_consistency)  # fmt: skip


class BodyFits:
    """The fitted body of a frame from keypoints (true joints + noise) and masks of some cameras."""

    def __init__(self, noise_px: float) -> None:
        from neuralbody.body import load_body_model
        from neuralbody.fitting.keypoints import keypoint_regressor_for

        self.body = load_body_model("anny")
        self.regressor = keypoint_regressor_for(self.body)
        self.noise_px = noise_px

    def fit_cached(self, cache: Path, capture, frame: int, views: list[int]):
        """:meth:`fit` once, kept in ``cache`` (vertices and seconds): (vertices, faces) and the fit's seconds."""
        from neuralbody.data.corpus import load_npz
        from neuralbody.io.atomic import atomic_write_bytes

        name = f"{capture.root.name}_f{frame}_v{'-'.join(map(str, views))}_n{self.noise_px:g}.npz"
        faces = self.body.faces.cpu().numpy()
        if (cache / name).is_file():
            arrays = load_npz(cache / name, ("vertices", "seconds"))
            return (arrays["vertices"], faces), float(arrays["seconds"])
        started = time.perf_counter()
        vertices, _ = self.fit(capture, frame, views)
        seconds = time.perf_counter() - started
        buffer = io.BytesIO()
        np.savez(buffer, vertices=vertices, seconds=np.float64(seconds))
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache / name, buffer.getvalue())
        return (vertices, faces), seconds

    def fit(self, capture, frame: int, views: list[int]):
        import torch

        from neuralbody.fitting.keypoints import keypoints2d_from_points
        from neuralbody.fitting.optimize import FitConfig, SequenceFitter

        cameras = [capture.cameras[v] for v in views]
        truth = self.regressor(torch.from_numpy(capture.load_vertices(frame))).numpy()
        keypoints = keypoints2d_from_points(cameras, truth, noise_px=self.noise_px, rng=np.random.default_rng(frame))
        fitter = SequenceFitter(self.body, self.regressor, cameras, FitConfig(refine_iterations=0))
        result = fitter.fit_sequence([frame], lambda f: keypoints, lambda f: [capture.load_mask(f, v) for v in views],
                                     progress=False)  # fmt: skip
        if frame not in result.fits:
            raise ValueError(f"the body fit of frame {frame} failed: {result.skipped.get(frame)}")
        return result.fits[frame].vertices.astype(np.float64), self.body.faces.cpu().numpy()


def evaluate(corpus_dir: Path, runs: dict[str, Path], args) -> list[Row]:
    import torch

    from neuralbody.data.corpus import read_corpus
    from neuralbody.recon.body_prior import PosedBody
    from neuralbody.recon.dataset import spread_views
    from neuralbody.recon.reconstruct import ReconstructSettings, reconstruct_frame
    from neuralbody.recon.train import load_model

    torch.set_num_threads(max(1, int(os.environ.get("NEURALBODY_THREADS", "1"))))
    corpus = read_corpus(corpus_dir)
    samples = corpus.samples(args.split)[args.skip_frames : args.skip_frames + args.max_frames]
    settings = ReconstructSettings(voxel=args.voxel)
    models = {name: load_model(run)[0] for name, run in runs.items()}
    methods = []  # (label, views count, model or special)
    if "pifu" in models:
        methods.append(("pifu", 1, models["pifu"]))
    if "mvms" in models:
        methods += [("mvms", 4, models["mvms"]), ("mvms", 2, models["mvms"]), ("mvms", 1, models["mvms"])]
    if "mvms-1scale" in models:
        methods.append(("mvms-1scale", 4, models["mvms-1scale"]))
    if "mvms-body" in models:
        methods.append(("mvms-body", 4, models["mvms-body"]))
    fixed = [("visual hull", 4, visual_hull_model()), ("fitted body", 4, "fit"), ("true body", 0, "truth")]
    methods += [m for m in fixed if m[0] not in args.reused]
    fits = BodyFits(args.keypoint_noise)
    scores: dict[tuple[str, int], list] = {}
    for index, sample in enumerate(samples):
        capture = corpus.capture(sample.subject)
        gt = corpus.load_gt_mesh(sample)
        log.info("frame %d of %d: %s frame %d", index + 1, len(samples), sample.subject, sample.frame)
        for label, count, model in methods:
            views = spread_views(capture.num_views, count) if count else []
            started = time.perf_counter()
            if model == "fit":
                mesh, seconds = fits.fit_cached(args.work / "fits", capture, sample.frame, views)
            elif model == "truth":
                mesh = (capture.load_vertices(sample.frame).astype(np.float64), fits.body.faces.cpu().numpy())
            else:
                body = None
                if model.uses_body:  # the fitted body of the same views (the fit's own time is not counted here)
                    (vertices, faces), _ = fits.fit_cached(args.work / "fits", capture, sample.frame, views)
                    body = PosedBody(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64))
                    started = time.perf_counter()
                result = reconstruct_frame(model, capture, sample.frame, views, settings=settings, body=body)
                mesh = (result.mesh.vertices, result.mesh.faces)
            if model != "fit":
                seconds = time.perf_counter() - started
            scores.setdefault((label, count), []).append((*score(mesh, gt, args.samples), seconds))
            if args.meshes is not None and index == 0:
                save_mesh(args.meshes / f"{label.replace(' ', '_')}_{count}views.ply", mesh)
                save_mesh(args.meshes / "ground_truth.ply", gt)
    rows = []
    for (label, count), values in scores.items():
        mean = np.mean(np.array(values), axis=0)
        rows.append(Row(label, count, *[float(x) for x in mean], frames=len(values)))
    return rows


def save_mesh(path: Path, mesh) -> None:
    from neuralbody.evaluation.mesh_extraction import Mesh, write_mesh

    write_mesh(Mesh(vertices=np.asarray(mesh[0], dtype=np.float64), faces=np.asarray(mesh[1], dtype=np.int64)), path)


def format_table(rows: list[Row]) -> str:
    header = f"{'method':<14}{'views':>6}{'P2S cm':>9}{'Chamfer-L2 cm2':>16}{'IoU':>8}{'normal c.':>11}{'s/frame':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.method:<14}{r.views or '-':>6}{r.p2s_cm:>9.3f}{r.chamfer_l2_cm2:>16.3f}{r.iou:>8.4f}"
                     f"{r.normal_consistency:>11.4f}{r.seconds:>9.1f}")  # fmt: skip
    return "\n".join(lines)


def reused_rows(path: Path, args) -> list[Row]:
    """The :data:`FIXED_METHODS` rows of an earlier result, checked to cover the same split, frames and samples."""
    document = json.loads(path.read_text())
    rows = [Row(**r) for r in document["rows"] if r["method"] in FIXED_METHODS]
    if (document.get("split") != args.split or document.get("skip_frames", 0) != args.skip_frames
            or any(r.frames != args.max_frames for r in rows)):  # fmt: skip
        raise ValueError(f"{path}: its rows are of another split or frame count than --split {args.split} "
                         f"--max-frames {args.max_frames}; run without --reuse")  # fmt: skip
    if document.get("samples", args.samples) != args.samples:
        raise ValueError(f"{path}: made with --samples {document['samples']}; pass the same or run without --reuse")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (corpus/, runs/)")
    parser.add_argument("--corpus", type=Path, default=None, help="an existing corpus (default WORK/corpus, made if absent)")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget per model, minutes (default 30)")
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="training budget per model in minutes of its own CPU time (overrides --minutes)")
    parser.add_argument("--no-train", action="store_true", help="score the runs in WORK/runs as they are (no training)")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="an earlier --json of the same split and frames: its visual hull, fitted body and true body rows")
    parser.add_argument("--models", default=",".join(MODELS), help=f"models to train and score (default {','.join(MODELS)})")
    parser.add_argument("--split", default="heldout_people", choices=("heldout_people", "heldout_poses"))
    parser.add_argument("--max-frames", type=int, default=12, help="frames of the split scored (default 12)")
    parser.add_argument("--skip-frames", type=int, default=0,
                        help="score the split's frames from this one on (default 0; 12: the development people s0030-)")
    parser.add_argument("--samples", type=int, default=50_000, help="surface samples a mesh for the metrics")
    parser.add_argument("--voxel", type=float, default=0.01, help="reconstruction grid spacing, metres (default 0.01)")
    parser.add_argument("--keypoint-noise", type=float, default=2.0, help="pixel noise of the fitted body's keypoints")
    parser.add_argument("--device", default="cpu", help="training device (default cpu)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--meshes", type=Path, default=None, help="write every method's mesh of the first frame here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose among {MODELS}")
    corpus = ensure_corpus(args.work, args.corpus)
    reused = reused_rows(args.reuse, args) if args.reuse else []
    args.reused = {r.method for r in reused}
    training = {m: train(corpus, args.work / "runs" / m, m, args.minutes, args.cpu_minutes, args.device, args.no_train)
                for m in models}  # fmt: skip
    for model, info in training.items():
        kept = " (kept)" if info["cpu_s"] is None else ""
        print(f"{model}: {info['steps']} steps in {info['minutes']:.1f} min, {info['cpu_minutes']:.1f} CPU min{kept}")
    rows = evaluate(corpus, {m: args.work / "runs" / m for m in models}, args) + reused
    print(f"\n{args.split}: {rows[0].frames} frames of {corpus}\n")
    print(format_table(rows))
    if args.json:
        document = {"training": training, "split": args.split, "skip_frames": args.skip_frames, "samples": args.samples,
                    "rows": [dataclasses.asdict(r) for r in rows]}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
