"""The surface-render figure of docs/head-avatar.md: ground truth, IMAvatar's volume render and its surface render.

Usage (after ``python bench/bench_head.py --work WORK``)::

    python docs/make_head_surface_figure.py WORK docs/head_surface.png

Rows: a training-like held-out frame and two strong-expression frames, seen by the evaluation
camera cam01; columns: ground truth, the volume render (``animate-head --renderer volume``), the
surface render (the default), and |surface - volume| x 4.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    from neuralbody.head.capture import read_head_capture
    from neuralbody.head.fast_render import render_image_fast
    from neuralbody.head.frame import head_frame
    from neuralbody.head.surface_level import choose_level
    from neuralbody.head.surface_render import render_surface
    from neuralbody.head.training import load_run

    capture = read_head_capture(work / "data")
    avatar, rig, _, _ = load_run(work / "run_imavatar")
    surface = choose_level(avatar, rig, workers=1).surface
    rows = []
    for index in (capture.split("test")[0], *capture.split("strong")[:2]):
        frame = head_frame(rig, capture.params(index))
        camera = capture.camera(index, "cam01")
        volume = np.clip(render_image_fast(avatar, frame, camera, workers=1).rgb, 0, 1)
        shown = np.clip(render_surface(avatar, surface, frame, camera, workers=1).rgb, 0, 1)
        difference = np.clip(np.abs(shown - volume) * 4.0, 0, 1)
        rows.append(np.concatenate([capture.image(index, "cam01"), volume, shown, difference], 1))
    picture = (np.concatenate(rows, 0) * 255).round().astype(np.uint8)
    Image.fromarray(picture).resize((picture.shape[1] * 2, picture.shape[0] * 2), Image.NEAREST).save(out)
    print(out)


if __name__ == "__main__":
    main()
