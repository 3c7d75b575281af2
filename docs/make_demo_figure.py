"""Make docs/demo_results.png from a finished `neuralbody demo` folder.

Usage: python docs/make_demo_figure.py DEMO_OUT [--out docs/demo_results.png]

Stacks the evaluation strips (render | ground truth | error) of Neural Body and of the
baseline, on a held-out camera at a training frame and at an unseen pose, each under a label
with its box PSNR, and copies the orbit GIF to docs/demo_orbit.gif.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROWS = (("neuralbody", "Neural Body"), ("frame_nerf", "baseline (NeRF + frame code)"))
SPLITS = (("novel_view", "novel view"), ("novel_pose", "unseen pose"))


def _middle_strip(folder: Path) -> Path:
    strips = sorted(glob.glob(str(folder / "*.png")))
    if not strips:
        raise FileNotFoundError(f"{folder}: no evaluation strips; run `neuralbody demo` (or eval) first")
    return Path(strips[len(strips) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "demo_results.png")
    args = parser.parse_args()
    panels = []
    for split, split_label in SPLITS:
        for kind, label in ROWS:
            run = args.demo / "runs" / kind
            strip = Image.open(_middle_strip(run / "eval" / split)).convert("RGB")
            metrics = json.loads((run / "eval" / "metrics.json").read_text())[split]["means"]
            title = Image.new("RGB", (strip.width, 16), "white")
            ImageDraw.Draw(title).text((4, 2), f"{label}, {split_label} (mean of the split {metrics['psnr_box']:.2f} dB box PSNR): "
                                                "render | ground truth | error", fill="black")
            panels.append(np.concatenate([np.asarray(title), np.asarray(strip)], axis=0))
    Image.fromarray(np.concatenate(panels, axis=0)).save(args.out)
    for gif in sorted(glob.glob(str(args.demo / "orbit" / "*.gif")))[:1]:
        shutil.copyfile(gif, args.out.parent / "demo_orbit.gif")
    print(args.out)


if __name__ == "__main__":
    main()
