"""``neuralbody fit DATA``: fit the body model to every frame of a capture from 2D keypoints (+ masks).

Keypoint input (``--keypoints PATH``, default ``DATA/keypoints2d``): one ``{frame}.npy`` per frame
(``frame`` the on-disk frame number, like ``params/{frame}.npy``), a float array of shape
``(views, 17, 3)`` holding ``(u, v, confidence)`` per COCO keypoint in COCO order
(:data:`neuralbody.fitting.keypoints.COCO_KEYPOINTS`), ``u, v`` in pixels of the capture's
original (distorted) images, views in the camera order of ``annots.npy``; confidence 0, NaN, or
``(0, 0)`` marks a keypoint as not detected. ``--from-gt-noise SIGMA`` instead makes keypoints
from the capture's existing ``vertices/`` (regressed, projected, plus SIGMA-pixel Gaussian noise):
a test of the fitter on synthetic data.

Writes, in one transaction (all of it or nothing, even when killed; see
:mod:`neuralbody.fitting.writer`), ``params/{frame}.npy`` and ``vertices/{frame}.npy`` of the
fitted frames (the frames not fitted keep theirs; the body a frame had before its first fit is
kept once under ``before_fit/``), ``fit/overlay_{frame:04d}.png`` and ``fit/residuals.json``;
prints a per-frame residual table (errors in mm against the frame's previous vertices when they
have the same topology; "mask %": the largest share, over the views, of a person mask lying
beyond the fitted body, and a list of the masks over 2 %: a bystander, a prop or the background
in a mask, which would train and score as the person; ``--trim-masks`` cuts those masks down to
the fitted body, keeping the untrimmed ones under ``mask_untrimmed/``).
Unusable frames are reported and skipped. After the per-frame pass, all frames are refined together
(window by window) with one shared shape and a smooth-motion term (``--refine-iterations``, 0 to skip).
``--init nbf --nbf-weights PATH`` starts every frame from Neural Body Fitting's prediction (RGB crops
around the masks, views combined:
:mod:`neuralbody.fitting.nbf_init`) instead of the rest pose / previous frame, for keypoints too
poor to start from.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from neuralbody.cli.arguments import parse_index_list

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
    """``--frames`` of the commands that change a capture: every frame when absent, else
    :func:`~neuralbody.cli.arguments.parse_index_list` (never clamped)."""
    return list(range(count)) if not text else parse_index_list(text, limit=count, what="frames")


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


def fit_config(args: argparse.Namespace, masks_available: bool):
    """The :class:`~neuralbody.fitting.optimize.FitConfig` of the command line (ValueError on bad counts)."""
    from neuralbody.fitting.optimize import FitConfig

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
    return config


def _initial_guess(args: argparse.Namespace, capture, body, fitter, masks_available: bool):
    """``--init nbf``: Neural Body Fitting's start per frame; else None (the fitter's own start)."""
    if args.init != "nbf":
        return None
    from neuralbody.fitting.nbf_init import make_initial_guess
    from neuralbody.fitting.nbf_train import load_nbf

    if args.nbf_weights is None or not masks_available:
        raise ValueError("--init nbf needs --nbf-weights PATH and person masks in the capture")
    model, nbf_config = load_nbf(args.nbf_weights, body)
    return make_initial_guess(capture, model, nbf_config.input_kind, fitter.config.bones)


def print_summary(capture, written) -> None:
    """The residual table and the masks reaching beyond the fitted body (to stdout, for the user)."""
    from neuralbody.fitting import report
    from neuralbody.fitting.writer import MASK_BEYOND_WARN_PCT

    rows = written.rows
    print(report.format_table(rows))
    flagged = sorted(((pct, r.frame, capture.cameras[view].name or str(view)) for r in rows
                      for view, pct in enumerate(r.mask_beyond_pct) if pct > MASK_BEYOND_WARN_PCT), reverse=True)
    if flagged:
        listed = ", ".join(f"frame {frame} {name} {pct:.1f} %" for pct, frame, name in flagged[:8])
        print(f"masks reaching beyond the fitted body (over {MASK_BEYOND_WARN_PCT} % of their pixels away from it): "
              f"{listed}{' ...' if len(flagged) > 8 else ''}; a bystander, a prop or a piece of the background in the "
              f"mask trains and scores as the person: check fit/overlay_*.png and the masks")  # fmt: skip
    if written.backed_up:
        print(f"the bodies these frames had before their first fit are kept in {capture.root / 'before_fit'}")


def run(args: argparse.Namespace) -> int:
    from neuralbody.body import load_body_model
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.keypoints import keypoint_regressor_for
    from neuralbody.fitting.optimize import SequenceFitter
    from neuralbody.fitting.writer import FitOutputs, write_fit

    started = time.perf_counter()
    capture = read_capture(args.data)  # also finishes or discards what a killed command left
    frames = parse_frames(args.frames, capture.num_frames)
    body = load_body_model(args.body)
    regressor = keypoint_regressor_for(body)
    load_keypoints = _keypoint_loader(capture, regressor, args)
    masks_available = capture.mask_path(frames[0], 0) is not None
    fitter = SequenceFitter(body, regressor, capture.cameras, fit_config(args, masks_available))
    initial_guess = _initial_guess(args, capture, body, fitter, masks_available)

    def load_masks(frame):
        return [capture.load_mask(frame, view) for view in range(capture.num_views)]

    log.info("fitting %d frames x %d views of %s", len(frames), capture.num_views, capture.root)
    result = fitter.fit_sequence(frames, load_keypoints, load_masks, initial_guess=initial_guess)
    if not result.fits:
        log.error("no frame could be fitted; nothing written (see the reasons above)")
        for frame, reason in sorted(result.skipped.items()):
            print(f"frame {frame}: skipped: {reason}")
        return 1
    outputs = FitOutputs(overlays=not args.no_overlays, check_masks=masks_available, trim_masks=args.trim_masks)
    written = write_fit(capture, result, frames, faces=body.faces.cpu().numpy(), regressor=regressor,
                        load_keypoints=load_keypoints, outputs=outputs)  # fmt: skip
    print_summary(capture, written)
    log.info("fitted %d of %d frames in %.1f s; wrote params/ vertices/ fit/ in %s",
             len(result.fits), len(frames), time.perf_counter() - started, capture.root)  # fmt: skip
    if capture.num_views > 1 and masks_available:
        log.info("next, for a real rig: neuralbody calibrate-colour %s (cameras rarely agree about colour; "
                 "it measures one gain per camera on the fitted body)", capture.root)  # fmt: skip
    return 0
