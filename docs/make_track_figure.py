"""Figure of a tracked head capture: the video frame, the fitted Anny head drawn over it, the mask.

    python docs/make_track_figure.py CAPTURE OUT.png [--frames 0,30,60,89] [--run RUN ...]

CAPTURE is a folder written by ``neuralbody track-head``. Each row is a frame: the capture's
image (black outside the mask), the fitted head (grey, shaded, rendered by the frame's camera
with the tracked parameters) blended over it, the mask and, for each ``--run`` (a ``train-head``
run on CAPTURE), its avatar rendered by the same camera with the same parameters. The panels
are cut to where the head is in any of the frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.images import write_png
from neuralbody.head.capture import read_head_capture
from neuralbody.head.evaluation import render_image
from neuralbody.head.frame import head_frame
from neuralbody.head.mesh_render import render_mesh
from neuralbody.head.rig import pose_head
from neuralbody.head.training import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", default="0,30,60,89")
    parser.add_argument("--run", type=Path, action="append", default=[], help="a train-head run on CAPTURE (repeatable)")
    args = parser.parse_args()
    capture = read_head_capture(args.capture)
    rig = capture.rig
    albedo = torch.full_like(rig.rest_vertices, 0.7)
    avatars = [load_run(run)[0] for run in args.run]
    rows, masks = [], []
    for frame in (int(f) for f in args.frames.split(",")):
        params = capture.params(frame)
        vertices, _ = pose_head(rig, torch.tensor(params.expression)[None], torch.tensor(params.pose)[None])
        camera = capture.camera(frame, "cam00")
        view = render_mesh(camera, vertices[0], rig.faces, albedo, supersample=2)
        image = capture.image(frame, "cam00")
        over = np.where(view.mask[..., None], 0.35 * image + 0.65 * view.image, image)
        mask = np.repeat(capture.mask(frame, "cam00")[..., None].astype(np.float32), 3, axis=2)
        rows.append([image, over, mask])
        rows[-1] += [render_image(avatar, head_frame(rig, params), camera).rgb for avatar in avatars]
        masks.append(mask[..., 0] > 0)
    rows_at, cols_at = np.nonzero(np.any(masks, axis=0))  # zoom on where the head is in any of the frames
    pad = 8
    y0, y1 = max(0, rows_at.min() - pad), rows_at.max() + pad + 1
    x0, x1 = max(0, cols_at.min() - pad), cols_at.max() + pad + 1
    zoom = max(1, 256 // max(y1 - y0, x1 - x0))
    grid = [np.concatenate([p[y0:y1, x0:x1] for p in row], axis=1) for row in rows]
    picture = np.concatenate(grid, axis=0).repeat(zoom, axis=0).repeat(zoom, axis=1)
    write_png(args.out, np.round(picture * 255.0).astype(np.uint8))


if __name__ == "__main__":
    main()
