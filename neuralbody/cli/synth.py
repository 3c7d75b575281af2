"""``neuralbody synth OUT``: render a synthetic multi-view capture in ZJU-MoCap layout."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

HELP = "render a synthetic multi-view capture of a moving, textured body (ZJU-MoCap layout)"

log = logging.getLogger("neuralbody.synth")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralbody.synth.generate import BODY_FORMATS
    from neuralbody.synth.mask_errors import MASK_ERRORS
    from neuralbody.synth.motion import MOTIONS
    from neuralbody.synth.shading import LIGHTING_PRESETS
    from neuralbody.synth.texture import SKIN_TONES, TOP_PATTERNS, TROUSER_COLOURS

    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--frames", type=int, default=30, help="number of frames (default 30)")
    parser.add_argument("--views", type=int, default=8, help="number of cameras on the ring (default 8)")
    parser.add_argument("--res", type=int, default=256, help="square image side in pixels (default 256)")
    parser.add_argument("--motion", choices=MOTIONS, default="sway", help="procedural motion (default sway; dance: large)")
    parser.add_argument("--seed", type=int, default=0, help="seeds appearance, shape, motion, lens distortion")
    parser.add_argument("--distortion", action="store_true", help="render through small per-camera lens distortion")
    parser.add_argument("--body", default="anny", help="body model (default anny)")
    parser.add_argument("--supersample", type=int, default=2, help="s x s samples per pixel (default 2)")
    parser.add_argument("--train-views", type=int, default=4, help="training cameras, spread evenly (default 4)")
    parser.add_argument("--phenotype", default=None, metavar="G,A,M,W,H,P",
                        help="Anny's gender, age, muscle, weight, height, proportions in [0, 1] "
                             "(default: near the mean person, from the seed)")
    parser.add_argument("--top", choices=TOP_PATTERNS, default="plaid", help="pattern of the top (default plaid)")
    parser.add_argument("--skin", choices=tuple(SKIN_TONES), default=None, help="skin tone (default: from the seed)")
    parser.add_argument("--trousers", choices=tuple(TROUSER_COLOURS), default=None,
                        help="colour of the trousers (default: from the seed)")
    parser.add_argument("--lighting", choices=tuple(LIGHTING_PRESETS), default="studio",
                        help="lights fixed in the world (default studio; the others cast shadows)")
    parser.add_argument("--image-format", choices=("png", "jpg"), default="png", help="image files (default png)")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality 1-95 (default 90)")
    parser.add_argument("--mask-errors", default=None, metavar="KINDS",
                        help=f"give the masks a real segmentation's errors, in order: a comma list of "
                             f"{', '.join(MASK_ERRORS)}; images are blacked out outside them (default: exact masks)")
    parser.add_argument("--mask-error-px", type=float, default=2.0, help="size of the mask errors, pixels (default 2)")
    parser.add_argument("--body-format", choices=BODY_FORMATS, default="anny",
                        help="smpl-like: 6,890 vertices, SMPL-shaped params, no neuralbody.json (as ZJU-MoCap)")


def _phenotype(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--phenotype {text!r}: expected six numbers in [0, 1], e.g. 0.2,0.6,0.5,0.7,0.4,0.5") from None


def config_from_args(args: argparse.Namespace):
    """The :class:`~neuralbody.synth.generate.SynthConfig` of the parsed options."""
    from neuralbody.synth.generate import SynthConfig

    mask_errors = tuple(e.strip() for e in args.mask_errors.split(",") if e.strip()) if args.mask_errors else ()
    return SynthConfig(
        frames=args.frames, views=args.views, resolution=args.res, motion=args.motion, seed=args.seed,
        distortion=args.distortion, body=args.body, supersample=args.supersample, train_views=args.train_views,
        phenotype=_phenotype(args.phenotype), top_pattern=args.top, skin_tone=args.skin, trousers=args.trousers,
        lighting=args.lighting, image_format=args.image_format, jpeg_quality=args.jpeg_quality,
        mask_errors=mask_errors, mask_error_px=args.mask_error_px, body_format=args.body_format,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import warp as wp

    from neuralbody.synth import generate
    from neuralbody.synth.rig import split_cameras

    if not args.verbose:
        wp.config.quiet = True  # keep Warp's start-up banner off stdout

    config = config_from_args(args)
    started = time.perf_counter()
    log.info("loading body model %r", config.body)
    body = generate.load_body(config.body)
    loaded = time.perf_counter()
    log.info(
        "rendering %d frames x %d views at %dx%d into %s",
        config.frames,
        config.views,
        config.resolution,
        config.resolution,
        args.out,
    )
    root = generate.generate_capture(args.out, config, body=body)
    done = time.perf_counter()
    train, test = split_cameras(config.views, config.train_views)
    log.info("wrote %s", root.resolve())
    extras = "" if config.body_format == "anny" else (
        f" ({config.body_format}: no neuralbody.json; train with --views {','.join(map(str, train))} "
        f"--frames 0:{generate.train_frame_count(config)})"
    )
    print(
        f"synth: {config.frames} frames x {config.views} views {config.resolution}x{config.resolution} "
        f"motion={config.motion} seed={config.seed} distortion={'on' if config.distortion else 'off'} "
        f"train cams {train} test cams {test} "
        f"in {done - loaded:.1f} s (+{loaded - started:.1f} s body model) -> {root}{extras}"
    )
    return 0
