"""Neural Body's evaluation protocol on a trained run: held-out cameras, training and unseen poses.

Two splits (ZJU-MoCap multi-view protocol):

* ``novel_view``: the run's training frames seen from the held-out cameras.
* ``novel_pose``: frames after the training range (``neuralbody.json`` ``frames.novel_pose``
  when present, else every frame after the last training frame) seen from the held-out
  cameras; the model uses the last training frame's appearance code for them.

Held-out cameras are the meta's ``test_cameras`` (``neuralbody.json``) that the run did not
train on, else every camera it did not train on. Frames are taken every ``frame_stride``-th
(30 in the ZJU protocol); the stride is capped at ``len(frames) // min_frames`` so that small
captures still evaluate several frames, and ``max_frames`` optionally thins them evenly.

Per image, :func:`neuralbody.evaluation.image_metrics.box_mask_metrics` scores the render
against the ground truth inside the projection of the posed body's 3D box, plus whole-image
figures, under a named protocol (:data:`neuralbody.evaluation.image_metrics.PROTOCOLS`):
``zju`` by default, as Neural Body's evaluator on ZJU-MoCap (the vertices' box padded
:data:`neuralbody.geometry.box.BODY_BOX_PADDING` = 5 cm along world z only; SSIM with a 7 x 7
uniform window, data range 2); ``nb-custom`` (its custom-data box, padded on every axis) and
``padded-box`` (this project's earlier figures: every axis, 11 x 11 Gaussian SSIM, data range 1)
on request. LPIPS is added where its weights are available. A strip ``render | ground truth | error`` is written per
image to ``out_dir``. Optionally (``coverage_faces``) the box PSNR is split by whether the
training cameras saw the body point a pixel shows (:mod:`neuralbody.evaluation.coverage`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neuralbody.evaluation.image_metrics import DEFAULT_PROTOCOL, get_protocol
from neuralbody.io.atomic import atomic_write_text
from neuralbody.io.progress import progress_bar

if TYPE_CHECKING:
    from neuralbody.models.base import FrameField
    from neuralbody.rendering.density_grid import DensityOccupancy
    from neuralbody.rendering.render import RenderSettings

log = logging.getLogger(__name__)

SPLITS = ("novel_view", "novel_pose")
METRICS = ("psnr_box", "ssim_box", "psnr_full", "ssim_full", "lpips")
ERROR_FULL_SCALE = 0.25  # mean absolute error shown at full brightness in the error map


@dataclasses.dataclass
class EvalRow:
    """Metrics of one image: PSNR in dB, SSIM in [0, 1], LPIPS (lower is better) or None."""

    frame: int
    view: int
    psnr_box: float
    ssim_box: float
    psnr_full: float
    ssim_full: float
    lpips: float | None = None
    image: str | None = None
    coverage: dict | None = None  # per label pixels and PSNR (see neuralbody.evaluation.coverage); None: not asked


@dataclasses.dataclass
class EvalResult:
    """All images of one split and their means (``means[metric]``; LPIPS None when unavailable),
    scored under the protocol called ``protocol`` (:data:`~neuralbody.evaluation.image_metrics.PROTOCOLS`)."""

    split: str
    frames: list[int]
    views: list[int]
    rows: list[EvalRow]
    means: dict[str, float | None]
    seconds: float
    out_dir: str | None = None
    coverage: dict | None = None  # neuralbody.evaluation.coverage.summarize_coverage over the images, if asked
    protocol: str = DEFAULT_PROTOCOL


# ------------------------------------------------------------------------------------------
# which frames and views
def select_frames(frames: list[int], stride: int, *, min_frames: int = 4, max_frames: int | None = None) -> list[int]:
    """Every ``s``-th frame with ``s = max(1, min(stride, len(frames) // min_frames))``, then at most ``max_frames`` spread evenly."""
    if stride < 1:
        raise ValueError(f"frame stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    frames = sorted(dict.fromkeys(int(f) for f in frames))
    step = max(1, min(stride, len(frames) // max(min_frames, 1)))
    chosen = frames[::step]
    if max_frames is not None and len(chosen) > max_frames:
        picks = np.unique(np.round(np.linspace(0, len(chosen) - 1, max_frames)).astype(int))
        chosen = [chosen[i] for i in picks]
    return chosen


def held_out_views(meta: dict, num_views: int, train_views: list[int]) -> list[int]:
    """The meta's ``test_cameras`` not trained on, else every camera not trained on."""
    trained = set(int(v) for v in train_views)
    listed = [int(v) for v in (meta or {}).get("test_cameras", []) if 0 <= int(v) < num_views]
    views = [v for v in listed if v not in trained] or [v for v in range(num_views) if v not in trained]
    return views


def split_frames(split: str, *, meta: dict, num_frames: int, train_frames: list[int]) -> list[int]:
    """All candidate frames of a split (before striding); see the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if split == "novel_view":
        return sorted(dict.fromkeys(int(f) for f in train_frames))
    trained = set(int(f) for f in train_frames)
    ranges = (meta or {}).get("frames") if isinstance((meta or {}).get("frames"), dict) else {}
    if "novel_pose" in ranges:
        start, end = (int(x) for x in ranges["novel_pose"])
    else:
        start, end = max(trained) + 1, num_frames
    return [f for f in range(max(start, 0), min(end, num_frames)) if f not in trained]


def evaluation_frames(run, split: str, *, frame_stride: int = 30, max_frames: int | None = None) -> list[int]:
    """The frames :func:`evaluate_run` scores for ``split`` (ValueError when the split has none)."""
    capture = run.capture
    meta, train_frames = capture.meta or {}, run.train_frames
    candidates = split_frames(split, meta=meta, num_frames=capture.num_frames, train_frames=train_frames)
    if not candidates:
        raise ValueError(
            f"split {split!r}: no frames to evaluate (the capture has {capture.num_frames} frames, training used "
            f"{min(run.train_frames)}..{max(run.train_frames)}); novel_pose needs frames after the training range"
        )
    return select_frames(candidates, frame_stride, max_frames=max_frames)


# ------------------------------------------------------------------------------------------
# images
def error_map(pred: np.ndarray, gt: np.ndarray, *, full_scale: float = ERROR_FULL_SCALE) -> np.ndarray:
    """(H, W, 3) heat map in [0, 1] of the per-pixel mean absolute error (black 0 .. red .. yellow .. white at ``full_scale``)."""
    error = np.clip(np.abs(pred - gt).mean(axis=2) / full_scale, 0.0, 1.0)
    return np.stack([np.clip(3 * error, 0, 1), np.clip(3 * error - 1, 0, 1), np.clip(3 * error - 2, 0, 1)], axis=2)


def save_strip(path: Path, images: list[np.ndarray]) -> None:
    """Save (H, W, 3) float images in [0, 1] side by side as one PNG."""
    from PIL import Image

    strip = np.concatenate(images, axis=1)
    Image.fromarray(np.clip(np.round(strip * 255.0), 0, 255).astype(np.uint8)).save(path)


def _lpips_function(device):
    """LPIPS ``(pred, gt) -> float`` loaded once (:func:`neuralbody.evaluation.lpips_metric.load_lpips`), or None."""
    try:
        from neuralbody.evaluation.lpips_metric import load_lpips
    except ImportError:
        return None
    return load_lpips(device=device)


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    if not finite or len(finite) != len(values):
        return None
    return float(np.mean(finite))


# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class EvalOptions:
    """How :func:`evaluate_run` evaluates a split (every field has a default).

    Attributes:
        frame_stride: every n-th frame (capped, see :func:`select_frames`).
        max_frames: at most this many frames, spread evenly (None: no limit).
        views: cameras to evaluate (None: :func:`held_out_views`).
        settings: :class:`~neuralbody.rendering.render.RenderSettings` (None: the run's).
        out_dir: where the ``render | ground truth | error`` strips go (None: not written).
        use_lpips: compute LPIPS where its weights are available.
        progress: show a tqdm bar.
        coverage_faces: (F, 3) faces of the body mesh whose vertices the capture stores; when
            given, each box pixel is labelled covered / uncovered / off-body by the training
            cameras (:mod:`neuralbody.evaluation.coverage`) and PSNR is split by label
            (``EvalRow.coverage``, ``EvalResult.coverage``; a ``*_coverage.png`` picture per image
            in ``out_dir``: the real frame with uncovered pixels tinted magenta, off-body ones blue).
        coverage_tolerance: metres, see :func:`neuralbody.evaluation.coverage.ray_coverage`
            (None: its default).
        protocol: name of the box-and-SSIM protocol
            (:data:`~neuralbody.evaluation.image_metrics.PROTOCOLS`): "zju" (default, Neural
            Body's ZJU-MoCap evaluator), "nb-custom" or "padded-box".
        truth: a capture whose images are the ground truth instead of the run's own (same
            cameras, image sizes and frames; e.g. a synthetic capture rendered again without its
            mask errors, :func:`check_truth_capture`). None: the run's capture.
    """

    frame_stride: int = 30
    max_frames: int | None = None
    views: list[int] | None = None
    settings: RenderSettings | None = None
    out_dir: str | os.PathLike | None = None
    use_lpips: bool = True
    progress: bool = True
    coverage_faces: np.ndarray | None = None
    coverage_tolerance: float | None = None
    protocol: str = DEFAULT_PROTOCOL
    truth: object | None = None


def check_truth_capture(capture, truth) -> None:
    """Raise InputError unless ``truth`` (a Capture) can stand in for ``capture``'s images: the same
    number of cameras and frames, and the same image size per camera."""
    from neuralbody.io.errors import InputError

    fix = "give the same capture rendered again (same cameras, frames and resolution)"
    if truth.num_views != capture.num_views or len(truth.frame_ids) != len(capture.frame_ids):
        raise InputError(truth.root, f"has {truth.num_views} cameras and {len(truth.frame_ids)} frames, the run's "
                         f"capture {capture.num_views} and {len(capture.frame_ids)}", fix)  # fmt: skip
    for view, (ours, theirs) in enumerate(zip(capture.cameras, truth.cameras)):
        if (ours.width, ours.height) != (theirs.width, theirs.height):
            raise InputError(truth.root, f"camera {view} is {theirs.width}x{theirs.height}, the run's "
                             f"{ours.width}x{ours.height}", fix)  # fmt: skip


def evaluation_plan(run, split: str, options: EvalOptions) -> tuple[list[int], list[int]]:
    """The frames and cameras :func:`evaluate_run` scores for ``split``, checked (ValueError says why none)."""
    capture = run.capture
    meta = capture.meta or {}
    frames = evaluation_frames(run, split, frame_stride=options.frame_stride, max_frames=options.max_frames)
    views = list(options.views) if options.views is not None else held_out_views(meta, capture.num_views, run.train_views)
    if not views:
        raise ValueError("no held-out cameras: every camera was used for training; pass views= to evaluate some anyway")
    bad = [v for v in views if not 0 <= v < capture.num_views]
    if bad:
        raise ValueError(f"views {bad} out of range 0..{capture.num_views - 1}")
    return frames, views


@dataclasses.dataclass
class _FrameTarget:
    """One evaluated frame: its posed vertices (V, 3) float64 metres, body box (3,) x 2, the compiled
    field and its density occupancy (built once, shared by every view)."""

    frame: int
    vertices: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    field: FrameField
    occupancy: DensityOccupancy | None


@dataclasses.dataclass
class _Scorer:
    """What every image of a split is scored with: the run, render settings, LPIPS, output folder."""

    run: object
    options: EvalOptions
    settings: RenderSettings
    lpips_fn: object
    out_path: Path | None
    train_cameras: list

    def prepare(self, frame: int) -> _FrameTarget:
        body = self.run.capture.load_body(frame)
        vertices = body.vertices.detach().cpu().numpy().astype(np.float64)
        box_min, box_max = get_protocol(self.options.protocol).box(vertices)
        from neuralbody.rendering.render import frame_occupancy

        field = self.run.model.compile_frame(frame, body.to(self.run.device))
        return _FrameTarget(frame, vertices, box_min, box_max, field, frame_occupancy(field, self.settings))

    def score(self, target: _FrameTarget, view: int) -> tuple[EvalRow, dict | None]:
        """Render ``view`` at the target frame and score it; returns the row and the coverage sums (or None)."""
        from neuralbody.evaluation.image_metrics import box_mask_metrics
        from neuralbody.rendering.render import render_view

        frame, camera, out_path = target.frame, self.run.capture.cameras[view], self.out_path
        rendered = render_view(target.field, camera, settings=self.settings, background=self.run.background,
                               occupancy=target.occupancy)
        pred = rendered.rgb.float().clamp(0, 1).cpu().numpy()
        source = self.options.truth if self.options.truth is not None else self.run.capture
        gt = np.asarray(source.load_image(frame, view), dtype=np.float32)
        window = get_protocol(self.options.protocol).ssim_window
        metrics = box_mask_metrics(pred, gt, camera, target.box_min, target.box_max, ssim_window=window)
        lpips_value = None
        if self.lpips_fn is not None:
            value = self.lpips_fn(pred, gt)
            lpips_value = None if value is None else float(value)
        image = None
        if out_path is not None:
            image = str(out_path / f"frame{frame:04d}_view{view:02d}.png")
            save_strip(Path(image), [pred, gt, error_map(pred, gt)])
        coverage_row = sums = None
        if self.options.coverage_faces is not None:
            coverage_row, sums = _image_coverage(
                pred, gt, target.vertices, self.options.coverage_faces, camera, self.train_cameras, target.box_min,
                target.box_max, self.options.coverage_tolerance,
                None if out_path is None else out_path / f"frame{frame:04d}_view{view:02d}_coverage.png",
            )  # fmt: skip
        row = EvalRow(frame=frame, view=view, lpips=lpips_value, image=image, coverage=coverage_row,
                      **{k: float(metrics[k]) for k in METRICS[:4]})  # fmt: skip
        return row, sums


def evaluate_run(run, *, split: str, options: EvalOptions | None = None) -> EvalResult:
    """Render and score a split of a trained run.

    Args:
        run: a :class:`~neuralbody.training.checkpoint.LoadedRun` (model, capture, train_frames,
            train_views, background, render_settings()).
        split: "novel_view" or "novel_pose".
        options: which frames and cameras, render settings, outputs (None: the defaults of
            :class:`EvalOptions`).
    """
    options = options if options is not None else EvalOptions()
    protocol = get_protocol(options.protocol).name  # an unknown name fails before any rendering
    frames, views = evaluation_plan(run, split, options)
    if options.truth is not None:
        check_truth_capture(run.capture, options.truth)
    out_path = Path(options.out_dir) if options.out_dir is not None else None
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    scorer = _Scorer(
        run=run, options=options, settings=options.settings if options.settings is not None else run.render_settings(),
        lpips_fn=_lpips_function(run.device) if options.use_lpips else None, out_path=out_path,
        train_cameras=[run.capture.cameras[v] for v in run.train_views],
    )
    log.info("%s: %d frames x %d views (frames %s, views %s), protocol %s", split, len(frames), len(views), frames,
             views, protocol)
    run.model.eval()
    rows: list[EvalRow] = []
    coverage_sums: list[dict] = []
    started = time.perf_counter()
    bar = progress_bar(total=len(frames) * len(views), enabled=options.progress, desc=f"eval {split}", unit="img")
    for frame in frames:
        target = scorer.prepare(frame)
        for view in views:
            row, sums = scorer.score(target, view)
            rows.append(row)
            if sums is not None:
                coverage_sums.append(sums)
            bar.update(1)
            bar.set_postfix(psnr_box=f"{row.psnr_box:.2f}")
    bar.close()
    means = {key: _mean([getattr(row, key) for row in rows]) for key in METRICS}
    coverage = None
    if coverage_sums:
        from neuralbody.evaluation.coverage import summarize_coverage

        coverage = summarize_coverage(coverage_sums)
    return EvalResult(
        split=split, frames=frames, views=views, rows=rows, means=means,
        seconds=time.perf_counter() - started, out_dir=None if out_path is None else str(out_path), coverage=coverage,
        protocol=protocol,
    )


def _image_coverage(pred, gt, vertices, faces, camera, train_cameras, box_min, box_max, tolerance, picture):
    """Coverage of one held-out image's box pixels: ``({label: {pixels, psnr}}, coverage_errors sums)``."""
    from neuralbody.data.cameras import project_box_mask
    from neuralbody.evaluation import coverage as cov

    box_mask = project_box_mask(camera, box_min, box_max)
    options = {} if tolerance is None else {"tolerance": float(tolerance)}
    labels = cov.pixel_coverage(vertices, faces, camera, train_cameras, box_mask, **options)
    sums = cov.coverage_errors(pred, gt, labels)
    if picture is not None:
        save_strip(picture, [pred, cov.tint_uncovered(gt, labels)])
    row = {
        name: {"pixels": pixels, "psnr": _json_number(cov.psnr_from_sse(sse, pixels))} for name, (sse, pixels) in sums.items()
    }
    return row, sums


# ------------------------------------------------------------------------------------------
def _json_number(value):
    if value is None:
        return None
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return None
    return round(value, 5)


def _protocol_of(results: list[EvalResult]):
    """The one :class:`~neuralbody.evaluation.image_metrics.ImageProtocol` all ``results`` were scored under."""
    names = sorted({result.protocol for result in results}) or [DEFAULT_PROTOCOL]
    if len(names) != 1:
        raise ValueError(f"results scored under different protocols {names} cannot share one table or file")
    return get_protocol(names[0])


def results_to_dict(results: list[EvalResult], *, extra: dict | None = None) -> dict:
    """JSON-able dict: the protocol's name and description, then per split the means, frames, views,
    seconds and per-image rows (inf written as "inf")."""
    protocol = _protocol_of(results)
    document = dict(extra or {})
    document["protocol"] = protocol.name
    document["protocol_description"] = protocol.description + "; *_full: the same metrics over the whole image"
    for result in results:
        document[result.split] = {
            "images": len(result.rows),
            "frames": result.frames,
            "views": result.views,
            "seconds": round(result.seconds, 2),
            "means": {key: _json_number(value) for key, value in result.means.items()},
            "rows": [
                {
                    key: (_json_number(value) if key in METRICS else value)
                    for key, value in dataclasses.asdict(row).items()
                    if not (key == "coverage" and value is None)
                }
                for row in result.rows
            ],
        }
        if result.coverage is not None:
            document[result.split]["coverage"] = {
                label: {key: (_json_number(value) if isinstance(value, float) else value) for key, value in row.items()}
                for label, row in result.coverage.items()
            }
    return document


def write_eval_json(results: list[EvalResult], path: str | os.PathLike, *, extra: dict | None = None) -> Path:
    """Write :func:`results_to_dict` as indented JSON (atomically)."""
    return atomic_write_text(path, json.dumps(results_to_dict(results, extra=extra), indent=2) + "\n")


def format_table(results: list[EvalResult]) -> str:
    """A plain-text table: one line per split with the mean metrics, then the protocol's name and description."""

    def cell(value, digits):
        if value is None:
            return "-"
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"

    header = f"{'split':<11} {'images':>6} {'PSNR box':>9} {'SSIM box':>9} {'PSNR full':>10} {'SSIM full':>10} {'LPIPS':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.means
        lines.append(
            f"{r.split:<11} {len(r.rows):>6} {cell(m['psnr_box'], 2):>9} {cell(m['ssim_box'], 4):>9} "
            f"{cell(m['psnr_full'], 2):>10} {cell(m['ssim_full'], 4):>10} {cell(m['lpips'], 4):>7}"
        )
    protocol = _protocol_of(results)
    lines.append(f"protocol {protocol.name}: {protocol.description}.")
    lines.append("PSNR in dB. box: inside the projection of the body's 3D box; full: whole image.")
    return "\n".join(lines)
