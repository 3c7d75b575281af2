"""The head-avatar figure of docs/head-avatar.md: ground truth, IMAvatar and nerf-expr on held-out frames.

Usage (after ``python bench/bench_head.py --work WORK``)::

    python docs/make_head_figure.py WORK docs/head_avatar.png

Rows: a training-like held-out frame and two strong-expression frames, seen by the evaluation
camera cam01; columns: ground truth, IMAvatar, nerf-expr, IMAvatar's surface-depth error (red = 1 cm or more).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.evaluation import render_image
    from neuralbody.head.frame import head_frame
    from neuralbody.head.training import load_run

    capture = read_head_capture(work / "data")
    avatars = [load_run(work / f"run_{m}")[0] for m in ("imavatar", "nerf-expr")]
    rows = []
    for index in (capture.split("test")[0], *capture.split("strong")[:2]):
        frame = head_frame(capture.rig, capture.params(index))
        camera = capture.camera(index, "cam01")
        renders = [render_image(a, frame, camera) for a in avatars]
        mask = capture.mask(index, "cam01")
        error = np.where(mask & (renders[0].opacity > 0.5), np.abs(renders[0].surface - capture.depth(index, "cam01")), 0)
        heat = np.stack([np.clip(error / 0.01, 0, 1), np.zeros_like(error), np.zeros_like(error)], axis=2)
        rows.append(np.concatenate([capture.image(index, "cam01")] + [np.clip(r.rgb, 0, 1) for r in renders] + [heat], 1))
    picture = (np.concatenate(rows, 0) * 255).round().astype(np.uint8)
    Image.fromarray(picture).resize((picture.shape[1] * 2, picture.shape[0] * 2), Image.NEAREST).save(out)
    print(out)


if __name__ == "__main__":
    main()
