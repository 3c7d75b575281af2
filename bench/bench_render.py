"""Seconds to render one image of a trained run, per renderer setting, and how far each image is from the first.

Usage::

    python bench/bench_render.py RUN [--res 512] [--frame 10] [--view 1] [--threads 1] [--repeats 2]
        [--setting density_grid_cell=0] [--setting density_grid_samples=8] ...

Each ``--setting`` is a comma-separated list of ``RenderSettings`` overrides; the default list
compares the model's own band with 32 samples (``density_grid_cell=0``) against the
defaults (density occupancy, 16 samples). Every setting compiles a fresh frame field
(``prepare s``: posing the codes, the sparse CNN and the inference folds, once per frame) and
renders the same camera 1 + ``repeats`` times: the first time includes building the frame's
density occupancy, the others reuse it (as an orbit or an evaluation of several cameras does;
the fastest is shown). A new frame of an animation costs prepare + first. Times are wall-clock
seconds (what a user waits; renders use ``workers`` threads, one per core by default) and, in
brackets, CPU seconds of this process (all threads; robust to other jobs on the machine).
PSNR is against the first setting's image.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch


def _parse(setting: str) -> dict:
    overrides = {}
    for item in filter(None, setting.split(",")):
        key, _, value = item.partition("=")
        overrides[key.strip()] = value.strip()
    return overrides


def main() -> None:
    from neuralbody.data.capture import read_capture
    from neuralbody.metrics import psnr_from_mse
    from neuralbody.rendering.render import frame_occupancy, render_view
    from neuralbody.training.checkpoint import load_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--res", type=int, default=512, help="image width in pixels (intrinsics scaled)")
    parser.add_argument("--frame", type=int, default=10)
    parser.add_argument("--view", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--setting", action="append", default=None)
    parser.add_argument("--repeats", type=int, default=2, help="renders after the first; the fastest is shown")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings_list = args.setting or ["density_grid_cell=0", ""]
    loaded = load_run(args.run)
    capture = read_capture(loaded.config.data)
    camera = capture.cameras[args.view]
    camera = camera.scaled(args.res / camera.width)
    model = loaded.model.eval()
    body = capture.load_body(args.frame)
    reference = None
    print(f"{'setting':44s} {'prepare s':>10s} {'first s (cpu)':>16s} {'again s (cpu)':>16s} {'PSNR vs first':>14s}")
    for setting in settings_list:
        settings = loaded.render_settings()
        for key, value in _parse(setting).items():
            settings = dataclasses.replace(settings, **{key: type(getattr(settings, key))(value)})
        start = time.perf_counter()
        field = model.compile_frame(args.frame, body)
        prepare = time.perf_counter() - start
        seconds, occupancy = [], None
        for _ in range(1 + args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            if occupancy is None:  # the first render of a frame builds its density occupancy
                occupancy = frame_occupancy(field, settings)
            image = render_view(field, camera, settings=settings, background=torch.zeros(3), occupancy=occupancy).rgb
            seconds.append((time.perf_counter() - start, time.process_time() - start_cpu))
        again = min(seconds[1:])
        first = f"{seconds[0][0]:.2f} ({seconds[0][1]:.2f})"
        again = f"{again[0]:.2f} ({again[1]:.2f})"
        reference = image if reference is None else reference
        mse = float(((image - reference) ** 2).mean())
        agreement = "-" if mse == 0 else f"{psnr_from_mse(mse):.1f} dB"
        print(f"{setting or '(defaults)':44s} {prepare:>10.2f} {first:>16s} {again:>16s} {agreement:>14s}")


if __name__ == "__main__":
    main()
