"""The README's "bring your own capture" pictures, from a detected + fitted capture and a trained run.

    python docs/make_capture_figures.py DATA RUN --frame 48 --view 3 --out docs

writes ``capture_fit.png`` (the fitted body's mesh edges and keypoints on every view of one frame,
on the images as imported, cropped around the person) and ``capture_heldout_<camera>.png`` (the held-out
camera: Neural Body's render beside the real frame, cropped to the person's box).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from neuralbody.data import images as image_io
from neuralbody.data.cameras import project_points


def person_crop(camera, vertices: np.ndarray, margin: float = 0.12) -> tuple[int, int, int, int]:
    """Pixel box around the projected vertices (V, 3) world metres, grown by ``margin`` of its size."""
    uv, _ = project_points(camera, vertices)
    x0, y0 = uv.min(axis=0)
    x1, y1 = uv.max(axis=0)
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    return (max(0, int(x0 - pad_x)), max(0, int(y0 - pad_y)),
            min(camera.width, int(x1 + pad_x)), min(camera.height, int(y1 + pad_y)))  # fmt: skip


def panel(array: np.ndarray, box, height: int) -> Image.Image:
    x0, y0, x1, y1 = box
    image = Image.fromarray(np.asarray(array)[y0:y1, x0:x1])
    return image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS)


def side_by_side(panels: list[Image.Image], gap: int = 4) -> Image.Image:
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    out = Image.new("RGB", (width, panels[0].height), (255, 255, 255))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("--frame", type=int, default=48, help="frame index (must have a fit)")
    parser.add_argument("--view", type=int, default=3, help="held-out camera")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--height", type=int, default=320, help="panel height, pixels")
    args = parser.parse_args()

    import torch

    from neuralbody.body import load_body_model
    from neuralbody.capture_import.detect import source_image_path
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting import report
    from neuralbody.fitting.keypoints import keypoint_regressor_for
    from neuralbody.rendering.render import render_view
    from neuralbody.training.checkpoint import load_run

    torch.set_num_threads(1)
    capture = read_capture(args.data)
    frame = args.frame
    vertices = capture.load_vertices(frame)
    body = load_body_model("anny")
    regressor = keypoint_regressor_for(body)
    originals = [image_io.read_image(source_image_path(capture, frame, v), dtype=np.uint8) for v in range(capture.num_views)]
    keypoints = np.load(capture.root / "keypoints2d" / f"{capture.frame_ids[frame]}.npy")
    fitted = regressor(torch.as_tensor(vertices, dtype=regressor.weights.dtype)).numpy()
    overlay = report.draw_overlay(originals, capture.cameras, vertices=vertices, faces=body.faces.cpu().numpy(),
                                  keypoints2d=keypoints, fitted_keypoints=fitted, max_edges=2500)  # fmt: skip
    panels, x = [], 0
    for camera in capture.cameras:
        panels.append(panel(overlay[:, x : x + camera.width], person_crop(camera, vertices), args.height))
        x += camera.width
    args.out.mkdir(parents=True, exist_ok=True)
    fit_path = args.out / "capture_fit.png"
    side_by_side(panels).save(fit_path)

    run = load_run(args.run)
    model = run.model.eval()
    camera = capture.cameras[args.view]
    field = model.compile_frame(frame, capture.load_body(frame).to(run.device))
    rendered = render_view(field, camera, settings=run.render_settings(), background=run.background)
    render = (rendered.rgb.float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    truth = (capture.load_image(frame, args.view) * 255).round().astype(np.uint8)
    box = person_crop(camera, vertices)
    heldout_path = args.out / f"capture_heldout_{camera.name or args.view}.png"
    side_by_side([panel(render, box, args.height), panel(truth, box, args.height)]).save(heldout_path)
    print(f"wrote {fit_path} and {heldout_path}")


if __name__ == "__main__":
    main()
