"""``neuralbody fit DATA``: fit the body model to every frame of a capture from 2D keypoints (+ masks).

Keypoint input (``--keypoints PATH``, default ``DATA/keypoints2d``): one ``{frame}.npy`` per frame
(``frame`` the on-disk frame number, like ``params/{frame}.npy``), a float array of shape
``(views, 17, 3)`` holding ``(u, v, confidence)`` per COCO keypoint in COCO order
(:data:`neuralbody.fitting.keypoints.COCO_KEYPOINTS`), ``u, v`` in pixels of the capture's
original (distorted) images, views in the camera order of ``annots.npy``; confidence 0, NaN, or
``(0, 0)`` marks a keypoint as not detected. ``--from-gt-noise SIGMA`` instead makes keypoints
from the capture's existing ``vertices/`` (regressed, projected, plus SIGMA-pixel Gaussian noise):
a test of the fitter on synthetic data.

Writes ``params/{frame}.npy`` and ``vertices/{frame}.npy`` (existing ``params/`` and ``vertices/``
are first renamed to ``params_prev/`` and ``vertices_prev/``, or ``params_prev2/`` ... if taken;
nothing is deleted), ``fit/overlay_{frame:04d}.png`` and ``fit/residuals.json``; prints a
per-frame residual table (errors in mm against ``vertices_prev/`` when it has the same topology;
"mask %": the largest share, over the views, of a person mask lying beyond the fitted body, and
a list of the masks over 2 %: a bystander, a prop or the background in a mask, which would
train and score as the person; ``--trim-masks`` cuts those masks down to the fitted body,
keeping the untrimmed ones under ``mask_untrimmed/``).
Unusable frames are reported and skipped. After the per-frame pass, all frames are refined together
(window by window) with one shared shape and a smooth-motion term (``--refine-iterations``, 0 to skip).
``--init nbf --nbf-weights PATH`` starts every frame from Neural Body Fitting's prediction (RGB crops
around the masks, views combined:
:mod:`neuralbody.fitting.nbf_init`) instead of the rest pose / previous frame, for keypoints too
poor to start from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

HELP = "fit the body model (pose, global transform, shape) to multi-view 2D keypoints of a capture"

log = logging.getLogger("neuralbody.fit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder (ZJU-MoCap layout)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--keypoints", type=Path, default=None, help="folder of {frame}.npy (views, 17, 3) keypoints (default DATA/keypoints2d)"
    )
    source.add_argument(
        "--from-gt-noise", type=float, default=None, metavar="SIGMA", help="keypoints from vertices/ plus SIGMA px noise"
    )
    parser.add_argument("--frames", default=None, metavar="A:B", help="frame indices to fit (a Python slice; default all)")
    parser.add_argument("--body", default="anny", help="body model (default anny)")
    parser.add_argument("--no-silhouette", action="store_true", help="ignore masks")
    parser.add_argument("--no-shape", action="store_true", help="keep the mean shape")
    parser.add_argument("--iterations", type=int, default=30, help="L-BFGS iterations of the pose stage (default 30)")
    parser.add_argument(
        "--refine-iterations", type=int, default=None, metavar="N",
        help="L-BFGS iterations of the final whole-sequence refinement: shared shape, smooth motion "
        "(default 40; 0 keeps the per-frame fits)",
    )  # fmt: skip
    parser.add_argument("--no-overlays", action="store_true", help="do not write fit/overlay_*.png")
    parser.add_argument("--seed", type=int, default=0, help="seed of --from-gt-noise")
    parser.add_argument(
        "--init", choices=("triangulation", "nbf"), default="triangulation",
        help="start of each frame: rest pose / previous frame aligned to the triangulated keypoints (default), or "
        "Neural Body Fitting's pose and orientation from the images and masks (needs --nbf-weights)",
    )  # fmt: skip
    parser.add_argument("--nbf-weights", type=Path, default=None, help="NBF network weights (RGB input) for --init nbf")
    parser.add_argument("--trim-masks", action="store_true",
                        help="cut the masks that reach beyond the fitted body (over 2 %% of their pixels) down to the "
                        "body: the untrimmed masks are kept under mask_untrimmed/, black-background images are "
                        "rewritten from original/")  # fmt: skip


def parse_frames(text: str | None, count: int) -> list[int]:
    """Frame indices of an ``A:B`` (or ``A:B:S``, or ``A``) slice over ``range(count)``."""
    if not text:
        return list(range(count))
    try:
        parts = [int(p) if p else None for p in text.split(":")]
    except ValueError as error:
        raise ValueError(f"--frames must look like A:B (e.g. 0:30), got {text!r}") from error
    if len(parts) == 1:
        return [range(count)[parts[0]]]
    frames = list(range(count))[slice(*parts)]
    if not frames:
        raise ValueError(f"--frames {text!r} selects no frame of the {count} in the capture")
    return frames


MASK_BEYOND_WARN_PCT = 2.0  # a mask with more of its pixels beyond the fitted body is reported


def mask_radius_px(camera) -> float:
    """How far (pixels) a mask pixel may lie from the fitted body's projected vertices and still count
    as the body: 1.5 % of the image width, at least 3 px (the fit's outline is good to a few pixels)."""
    return max(3.0, 0.015 * camera.width)


def trim_mask(capture, frame: int, view: int, vertices: np.ndarray) -> None:
    """Cut one mask down to the fitted body (:func:`neuralbody.fitting.report.trim_mask_to_body`).

    The mask as it was is kept once under ``mask_untrimmed/``; where detection kept the image under
    ``original/`` (``--black-background``), the image is rewritten black outside the trimmed mask.
    """
    import shutil

    from PIL import Image

    from neuralbody.capture_import.detect import ORIGINAL_DIR, black_out_background, write_mask
    from neuralbody.fitting import report

    path = capture.mask_path(frame, view)
    if path is None:
        return
    camera = capture.cameras[view]
    trimmed = report.trim_mask_to_body(capture.load_mask(frame, view), camera, vertices, radius_px=mask_radius_px(camera))
    kept = capture.root / "mask_untrimmed" / path.relative_to(capture.root)
    if not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, kept)
    write_mask(path, trimmed)
    original = capture.root / ORIGINAL_DIR / capture.image_relpath(frame, view)
    if original.is_file():
        black_out_background(capture, frame, view, np.asarray(Image.open(original).convert("RGB")), trimmed)
    log.info("frame %d %s: mask trimmed to the fitted body (untrimmed kept in %s)", frame, camera.name, kept)


def free_name(root: Path, base: str) -> Path:
    """``root/base``, or ``root/base2``, ``root/base3``... whichever does not exist yet."""
    candidate, n = root / base, 2
    while candidate.exists():
        candidate, n = root / f"{base}{n}", n + 1
    return candidate


def move_aside(root: Path) -> dict[str, Path]:
    """Rename existing ``params/`` and ``vertices/`` to ``*_prev`` names (never deletes); returns what moved where."""
    moved = {}
    for name in ("params", "vertices"):
        folder = root / name
        if folder.exists():
            target = free_name(root, f"{name}_prev")
            folder.rename(target)
            moved[name] = target
            log.info("moved %s aside to %s", folder, target)
    return moved


def _keypoint_loader(capture, regressor, args):
    if args.from_gt_noise is not None:
        import torch

        from neuralbody.fitting.keypoints import keypoints2d_from_points

        cache = {}
        rng = np.random.default_rng(args.seed)

        def from_gt(frame):
            if frame not in cache:
                vertices = torch.from_numpy(capture.load_vertices(frame))
                points = regressor(vertices).numpy()
                cache[frame] = keypoints2d_from_points(capture.cameras, points, noise_px=args.from_gt_noise, rng=rng)
            return cache[frame]

        return from_gt
    folder = args.keypoints or capture.root / "keypoints2d"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no keypoints folder {folder}: write keypoints2d/{{frame}}.npy, shape (views, 17, 3) = (u, v, confidence) "
            "in pixels, or pass --keypoints PATH, or --from-gt-noise SIGMA on a capture with vertices/"
        )

    def from_files(frame):
        path = folder / f"{capture.frame_ids[frame]}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"missing keypoints file {path}")
        array = np.load(path, allow_pickle=False)
        if array.shape != (capture.num_views, regressor.num_keypoints, 3):
            raise ValueError(
                f"{path}: expected shape ({capture.num_views}, {regressor.num_keypoints}, 3) = (views, keypoints, "
                f"(u, v, confidence)), got {array.shape}"
            )
        return array

    return from_files


def run(args: argparse.Namespace) -> int:
    from neuralbody.body import load_body_model
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting import report
    from neuralbody.fitting.keypoints import keypoint_regressor_for
    from neuralbody.fitting.optimize import FitConfig, SequenceFitter

    started = time.perf_counter()
    capture = read_capture(args.data)
    frames = parse_frames(args.frames, capture.num_frames)
    body = load_body_model(args.body)
    regressor = keypoint_regressor_for(body)
    load_keypoints = _keypoint_loader(capture, regressor, args)
    if args.from_gt_noise is not None:  # read the ground truth before it is moved aside
        for frame in frames:
            try:
                load_keypoints(frame)
            except (OSError, ValueError) as error:
                log.warning("frame %d: %s", frame, error)
    masks_available = capture.mask_path(frames[0], 0) is not None
    config = FitConfig(
        silhouette_weight=0.0 if args.no_silhouette or not masks_available else FitConfig.silhouette_weight,
        fit_shape=not args.no_shape,
        pose_iterations=args.iterations,
        refine_iterations=FitConfig.refine_iterations if args.refine_iterations is None else args.refine_iterations,
    )
    if config.refine_iterations < 0 or config.pose_iterations < 1:
        raise ValueError(
            f"--iterations must be >= 1 and --refine-iterations >= 0, "
            f"got {args.iterations} and {args.refine_iterations}"
        )
    fitter = SequenceFitter(body, regressor, capture.cameras, config)
    initial_guess = None
    if args.init == "nbf":
        from neuralbody.fitting.nbf_init import make_initial_guess
        from neuralbody.fitting.nbf_train import load_nbf

        if args.nbf_weights is None or not masks_available:
            raise ValueError("--init nbf needs --nbf-weights PATH and person masks in the capture")
        model, nbf_config = load_nbf(args.nbf_weights, body)
        initial_guess = make_initial_guess(capture, model, nbf_config.input_kind, fitter.config.bones)

    def load_masks(frame):
        return [capture.load_mask(frame, view) for view in range(capture.num_views)]

    log.info("fitting %d frames x %d views of %s", len(frames), capture.num_views, capture.root)
    result = fitter.fit_sequence(frames, load_keypoints, load_masks, initial_guess=initial_guess)
    if not result.fits:
        log.error("no frame could be fitted; nothing written (see the reasons above)")
        for frame, reason in sorted(result.skipped.items()):
            print(f"frame {frame}: skipped: {reason}")
        return 1
    moved = move_aside(capture.root)
    rows = []
    for frame in frames:
        if frame in result.skipped:
            rows.append(report.FrameResidual(frame=frame, status="skipped", message=result.skipped[frame]))
            continue
        fit = result.fits[frame]
        number = capture.frame_ids[frame]
        for name, value in (("params", fit.params()), ("vertices", fit.vertices)):
            path = capture.root / name / f"{number}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, value, allow_pickle=name == "params")
        reference = None
        previous = moved.get("vertices", None)
        if previous is not None and (previous / f"{number}.npy").is_file():
            reference = np.load(previous / f"{number}.npy")
        rows.append(report.residual_of(fit, reference_vertices=reference, regressor=regressor))
        if masks_available:
            try:
                rows[-1].mask_beyond_pct = [
                    100 * report.mask_beyond_body(mask, camera, fit.vertices, radius_px=mask_radius_px(camera))
                    for mask, camera in zip(load_masks(frame), capture.cameras)
                ]
            except (OSError, ValueError) as error:
                log.warning("frame %d: no mask check (%s)", frame, error)
            if args.trim_masks:
                for view, pct in enumerate(rows[-1].mask_beyond_pct):
                    if pct > MASK_BEYOND_WARN_PCT:
                        trim_mask(capture, frame, view, fit.vertices)
        if not args.no_overlays:
            try:
                images = [capture.load_image(frame, view) for view in range(capture.num_views)]
                overlay = report.draw_overlay(
                    images, capture.cameras, vertices=fit.vertices, faces=body.faces.cpu().numpy(),
                    keypoints2d=load_keypoints(frame), fitted_keypoints=fit.keypoints,
                )  # fmt: skip
                report.write_overlay(capture.root / "fit" / f"overlay_{number:04d}.png", overlay)
            except (OSError, ValueError) as error:
                log.warning("frame %d: no overlay (%s)", frame, error)
    out = capture.root / "fit"
    out.mkdir(exist_ok=True)
    summary = {"shapes": result.shapes.tolist(), "moved": {k: str(v) for k, v in moved.items()},
               "frames": [dataclasses.asdict(r) for r in rows]}  # fmt: skip
    (out / "residuals.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(report.format_table(rows))
    flagged = sorted(((pct, r.frame, capture.cameras[view].name or str(view)) for r in rows
                      for view, pct in enumerate(r.mask_beyond_pct) if pct > MASK_BEYOND_WARN_PCT), reverse=True)
    if flagged:
        listed = ", ".join(f"frame {frame} {name} {pct:.1f} %" for pct, frame, name in flagged[:8])
        print(f"masks reaching beyond the fitted body (over {MASK_BEYOND_WARN_PCT} % of their pixels away from it): "
              f"{listed}{' ...' if len(flagged) > 8 else ''}; a bystander, a prop or a piece of the background in the "
              f"mask trains and scores as the person: check fit/overlay_*.png and the masks")  # fmt: skip
    log.info("fitted %d of %d frames in %.1f s; wrote params/ vertices/ fit/ in %s",
             len(result.fits), len(frames), time.perf_counter() - started, capture.root)  # fmt: skip
    if capture.num_views > 1 and masks_available:
        log.info("next, for a real rig: neuralbody calibrate-colour %s (cameras rarely agree about colour; "
                 "it measures one gain per camera on the fitted body)", capture.root)  # fmt: skip
    return 0
