"""The README's colour-calibration picture: the colour balance of a trained run along an orbit.

Renders ``--steps`` cameras orbiting the person (frame ``--frame``, in the colours of the capture's first camera,
half resolution) for each run, takes the mean colour of the pixels the person covers
(opacity > 0.5), and plots its R/G and B/G ratios against the orbit angle, one line per run,
with the capture's cameras marked on the angle axis. A camera whose colour response differs
from the others shows up as a bump where the orbit passes it (the view-dependent colour head
learns that camera's colours in its direction); after ``neuralbody calibrate-colour`` the lines
are flat but for what the body's own colours and lighting change.

    python docs/make_colour_orbit_figure.py RUN_AS_RECORDED RUN_CALIBRATED --labels "as recorded" \\
        "calibrate-colour" --out docs/capture_colour_orbit.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from neuralbody.evaluation.orbit import orbit_cameras
from neuralbody.rendering.render import frame_occupancy, render_view
from neuralbody.training.checkpoint import load_run

COLOURS = [(220, 60, 60), (40, 120, 220), (40, 170, 80), (200, 140, 20)]


def orbit_colour_ratios(run: Path, *, frame: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps,) orbit angles (degrees), (steps, 2) R/G and B/G of the person's mean colour, and the
    capture cameras' angles (degrees) on the same circle."""
    loaded = load_run(run, device="cpu")
    capture = loaded.capture
    body = capture.load_body(frame)
    field = loaded.model.compile_frame(frame, body)
    settings = loaded.render_settings()
    occupancy = frame_occupancy(field, settings)
    vertices = body.vertices.detach().cpu().numpy().astype(np.float64)
    target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0
    cameras = [camera.scaled(0.5) for camera in capture.cameras]
    path = orbit_cameras(cameras, target, num_steps=steps, reference=0)
    ratios = []
    for camera in path.cameras:  # in the colours of camera 0 (the orbit's reference), calibrated or not
        image = render_view(field, camera, settings=settings, background=loaded.background, occupancy=occupancy)
        mean = image.rgb[image.acc > 0.5].double().mean(dim=0).numpy()
        ratios.append([mean[0] / mean[1], mean[2] / mean[1]])
    e1 = path.cameras[0].center - target
    e1 -= (e1 @ path.up) * path.up
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(path.up, e1)
    marks = []
    for camera in capture.cameras:
        offset = camera.center - target
        angle = math.degrees(math.atan2(offset @ e2, offset @ e1)) % 360.0
        marks.append(0.0 if angle > 359.5 else angle)
    return np.arange(steps) * 360.0 / steps, np.asarray(ratios), np.asarray(marks)


def draw_chart(angles, series: list[np.ndarray], labels: list[str], marks, names, *, size=(900, 520)) -> Image.Image:
    """Two stacked panels (R/G, B/G) of one line per run against the orbit angle."""
    width, height = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right, top = 70, 20, 40
    panel_height = (height - top - 50) // 2
    for panel, title in enumerate(("R/G", "B/G")):
        y0 = top + panel * (panel_height + 20)
        values = np.concatenate([s[:, panel] for s in series])
        low, high = float(values.min()), float(values.max())
        pad = 0.08 * (high - low + 1e-6)
        low, high = low - pad, high + pad

        def to_xy(angle, value, y0=y0, low=low, high=high):
            x = left + (width - left - right) * angle / 360.0
            return x, y0 + panel_height * (1.0 - (value - low) / (high - low))

        draw.rectangle([left, y0, width - right, y0 + panel_height], outline=(0, 0, 0))
        draw.text((8, y0 + panel_height // 2 - 6), title, fill=(0, 0, 0))
        for value in (low + pad, high - pad):
            _, y = to_xy(0.0, value)
            draw.text((left - 44, y - 6), f"{value:.2f}", fill=(90, 90, 90))
        for mark, name in zip(marks, names, strict=True):
            x, _ = to_xy(mark, low)
            draw.line([x, y0, x, y0 + panel_height], fill=(200, 200, 200))
            if panel == 0:
                draw.text((x - 14, y0 - 14), name, fill=(90, 90, 90))
        for k, values_k in enumerate(series):
            points = [to_xy(a, v) for a, v in zip(np.append(angles, 360.0), np.append(values_k[:, panel], values_k[0, panel]))]
            draw.line(points, fill=COLOURS[k % len(COLOURS)], width=2)
    legend_y = height - 24
    draw.text((left, legend_y), "orbit angle 0-360 degrees (grey: the capture's cameras);", fill=(0, 0, 0))
    x = left + 340
    for k, label in enumerate(labels):
        draw.line([x, legend_y + 6, x + 24, legend_y + 6], fill=COLOURS[k % len(COLOURS)], width=3)
        draw.text((x + 30, legend_y), label, fill=(0, 0, 0))
        x += 40 + 7 * len(label)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="trained runs of the same capture")
    parser.add_argument("--labels", nargs="+", default=None, help="one label per run")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("docs/capture_colour_orbit.png"))
    args = parser.parse_args()
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f"--labels: {len(labels)} labels for {len(args.runs)} runs")
    series, angles, marks = [], None, None
    for run, label in zip(args.runs, labels, strict=True):
        angles, ratios, marks = orbit_colour_ratios(run, frame=args.frame, steps=args.steps)
        series.append(ratios)
        print(f"{label}: R/G {ratios[:, 0].min():.3f}-{ratios[:, 0].max():.3f} (std {ratios[:, 0].std():.3f}), "
              f"B/G {ratios[:, 1].min():.3f}-{ratios[:, 1].max():.3f} (std {ratios[:, 1].std():.3f})")  # fmt: skip
    names = [camera.name for camera in load_run(args.runs[0], device="cpu").capture.cameras]
    draw_chart(angles, series, labels, marks, names).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
