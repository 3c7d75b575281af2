"""``neuralbody render-keypoint RUN DATA --frame I --inputs 0,1,2 --camera 3 --out img.png``: render a person
the model never saw, from a few of the capture's cameras, with no training on the capture; scored like ``neuralbody eval``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

HELP = "render any frame and camera of a capture from chosen input views with a trained KeypointNeRF (no training)"

log = logging.getLogger("neuralbody.render_keypoint")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody train-keypoint`")
    parser.add_argument("data", type=Path, help="capture folder in ZJU-MoCap layout, with masks and body vertices")
    parser.add_argument("--frame", type=int, default=0, help="frame index (default 0)")
    parser.add_argument("--inputs", default="0,1,2", help="input cameras, e.g. 0,1,2 (default)")
    parser.add_argument("--camera", type=int, required=True, help="camera to render")
    parser.add_argument("--out", type=Path, required=True, help="image to write (.png); OUT.json gets the metrics")
    parser.add_argument("--samples", type=int, default=48, help="samples per ray inside the box (default 48)")
    parser.add_argument("--protocol", default="zju", help="evaluation protocol: zju (default), nb-custom, padded-box")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.cli.arguments import parse_index_list
    from neuralbody.data.capture import read_capture
    from neuralbody.data.images import write_png
    from neuralbody.io.atomic import atomic_write_text
    from neuralbody.io.errors import InputError
    from neuralbody.keypoint_nerf.scoring import render_and_score
    from neuralbody.keypoint_nerf.train import CHECKPOINT_NAME, load_trained

    if args.out.suffix.lower() != ".png":
        raise InputError(f"--out {args.out}", "the image must be a .png", "pass e.g. --out render.png")
    if args.samples < 1:
        raise InputError(f"--samples {args.samples}", "must be >= 1", "pass e.g. --samples 48")
    if not (args.run / CHECKPOINT_NAME).is_file():
        raise FileNotFoundError(f"{args.run / CHECKPOINT_NAME} not found; train a model with neuralbody train-keypoint")
    capture = read_capture(args.data)
    inputs = parse_index_list(args.inputs, limit=capture.num_views, what="inputs")
    if len(set(inputs)) != len(inputs):
        raise InputError(f"--inputs {args.inputs!r}", "cameras repeat", "give each input camera once")
    trained = load_trained(args.run, device=args.device)
    score = render_and_score(trained, capture, args.frame, inputs, args.camera, num_samples=args.samples,
                             protocol=args.protocol)  # fmt: skip
    write_png(args.out, score.image)
    metrics = {"frame": score.frame, "camera": score.camera, "inputs": list(score.inputs), "protocol": args.protocol,
               "psnr_box": round(score.psnr_box, 4), "ssim_box": round(score.ssim_box, 5), "seconds": round(score.seconds, 3),
               "cpu_seconds": round(score.cpu_seconds, 3),
               "run": str(args.run), "step": trained.step}  # fmt: skip
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(metrics, indent=2) + "\n")
    print(f"render-keypoint: frame {score.frame} camera {score.camera} from {list(score.inputs)}: "
          f"PSNR {score.psnr_box:.2f} dB, SSIM {score.ssim_box:.4f} ({args.protocol} box) in {score.seconds:.1f} s -> {args.out}")
    return 0
