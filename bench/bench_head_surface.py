"""IMAvatar rendered from its canonical surface against its volume render and the ground truth.

Usage::

    python bench/bench_head_surface.py [--work DIR] [--eval-frames 4] [--supersample 1] [--level 0] [--shading band]

Needs ``bench/bench_head.py``'s work folder (``WORK/data``, the trained ``WORK/run_imavatar``).

1. **The surface** (:mod:`neuralbody.head.surface_level`): the canonical iso-surface's level is
   chosen by silhouette agreement with the volume render of the face model's rest pose (no
   data read; ``--level`` > 0 fixes it instead); the candidates' IoU and depth gaps and the
   one-off cost (choice and extraction) are printed.
2. **Scores** (:func:`neuralbody.head.evaluation.score_image`) on the first ``--eval-frames``
   frames of each held-out split, all three cameras, at the data's resolution, for the volume
   render (``render_image_fast``: ``animate-head``'s volume renderer, the picture
   ``bench_head.py`` scores) and the surface render
   (:func:`neuralbody.head.surface_render.render_surface`, ``--supersample`` rays a pixel along
   each axis; ``--shading band``, the default, or ``plain``, the colour at the hit): PSNR, SSIM,
   depth errors (surface and expected depth), the share of the head covered, and the PSNR and
   mean surface-depth gap of the surface render against the volume render. One torch thread;
   seconds are indicative (shared machine).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_head_surface")


def _gap(surface, volume) -> tuple[float, float]:
    """PSNR (dB) of the surface image against the volume image, and the mean |depth gap| (mm) where both cover."""
    mse = float(np.mean((surface.rgb - volume.rgb) ** 2))
    both = (surface.opacity >= 0.5) & (volume.opacity >= 0.5) & (volume.surface > 0)
    gap = float(np.abs(surface.surface - volume.surface)[both].mean() * 1000.0) if both.any() else float("nan")
    return 10.0 * np.log10(1.0 / max(mse, 1e-12)), gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_head")
    parser.add_argument("--eval-frames", type=int, default=4)
    parser.add_argument("--supersample", type=int, default=1)
    parser.add_argument("--shading", choices=("band", "plain"), default="band",
                        help="band: volume rendering around the hit (default); plain: the colour at the hit")
    parser.add_argument("--level", type=float, default=0.0, help="surface density, 1/m (0: choose)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)

    from neuralbody.head.canonical_surface import extract_canonical_surface
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.evaluation import ImageScore, mean_scores, score_image
    from neuralbody.head.fast_render import render_image_fast
    from neuralbody.head.frame import head_frame
    from neuralbody.head.surface_level import choose_level
    from neuralbody.head.surface_render import SurfaceSettings, render_surface
    from neuralbody.head.training import load_run

    settings = SurfaceSettings(supersample=args.supersample, **({} if args.shading == "band" else {"band": None}))
    capture = read_head_capture(args.work / "data")
    avatar, rig, _, _ = load_run(args.work / "run_imavatar")
    if args.level > 0:
        surface = extract_canonical_surface(avatar, args.level)
        print(f"\nsurface at {args.level:g}/m (given): {len(surface.vertices)} vertices, {len(surface.faces)} faces, "
              f"{surface.seconds:.2f} s")
    else:
        choice = choose_level(avatar, rig, workers=1)
        surface = choice.surface
        print("\nlevel 1/m   " + " ".join(f"{v:6g}" for v in choice.levels))
        print("IoU         " + " ".join(f"{v:6.3f}" for v in choice.iou))
        print("depth gap mm" + " ".join(f"{v:6.1f}" for v in choice.depth_mm))
        print(f"chosen {surface.level:g}/m: {len(surface.vertices)} vertices, {len(surface.faces)} faces; "
              f"choice {choice.seconds:.2f} s, extraction {surface.seconds:.3f} s")
    print(f"\n{'renderer':9s} {'split':7s} {'PSNR':>6s} {'SSIM':>6s} {'depth':>6s} {'exp.d':>6s} {'cover':>6s} "
          f"{'s/img':>6s} {'PSNR vs vol':>11s} {'gap mm':>6s}")
    for split in ("test", "strong"):
        scores = {"volume": [], "surface": []}
        seconds = {"volume": [], "surface": []}
        gaps = []
        for index in capture.split(split)[: args.eval_frames]:
            frame = head_frame(rig, capture.params(index))
            for name in capture.views(split):
                camera = capture.camera(index, name)
                truth = (capture.image(index, name), capture.mask(index, name), capture.depth(index, name))
                volume = render_image_fast(avatar, frame, camera, workers=1)
                shown = render_surface(avatar, surface, frame, camera, settings=settings, workers=1)
                for key, rendered in (("volume", volume), ("surface", shown)):
                    values = score_image(rendered, *truth)
                    scores[key].append(ImageScore(split=split, frame=index, camera=name, **values))
                    seconds[key].append(rendered.seconds)
                gaps.append(_gap(shown, volume))
        for key in ("volume", "surface"):
            m = mean_scores(scores[key])
            extra = (f"{np.mean([g[0] for g in gaps]):11.2f} {np.nanmean([g[1] for g in gaps]):6.1f}"
                     if key == "surface" else f"{'-':>11s} {'-':>6s}")
            print(f"{key:9s} {split:7s} {m['psnr']:6.2f} {m['ssim']:6.3f} {m['depth_mm']:6.1f} "
                  f"{m['mean_depth_mm']:6.1f} {m['depth_coverage']:6.3f} {np.median(seconds[key]):6.2f} {extra}")


if __name__ == "__main__":
    main()
