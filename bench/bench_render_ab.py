"""Render time of two checkouts of neuralbody on the same trained run, alternating, in one run.

Usage::

    python bench/bench_render_ab.py RUN --tree before=PATH_A --tree after=PATH_B [--rounds 3] [--res 512]
        [--frame 10] [--view 1] [--threads 2]

Each round runs every tree once, in its own process (``python -c`` with the tree first on
``sys.path``), so both see the same machine load in turn; a process prepares the frame,
renders the held-out camera once ("first": with the frame's density occupancy built) and
twice more ("again": reusing it, the fastest shown). Printed per tree: the median over
rounds of prepare / first / again seconds, and the PSNR of its image against the first
tree's. Works across the model-protocol change of 2026-12-05 (``compile_frame`` and
``render_view(field, ...)`` after it, ``prepare_frame`` + ``render_view(model, state, ...)``
before), so a run trained before the change can be timed on both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WORKER = r"""
import json, sys, time
import numpy as np
import torch
from neuralbody.data.capture import read_capture
from neuralbody.rendering import render as render_module
from neuralbody.training.checkpoint import load_run

run, res, frame, view, threads, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.set_num_threads(threads)
loaded = load_run(run)
capture = read_capture(loaded.config.data)
camera = capture.cameras[view].scaled(res / capture.cameras[view].width)
model = loaded.model.eval()
body = capture.load_body(frame)
settings = loaded.render_settings()
start = time.perf_counter()
if hasattr(render_module, "frame_occupancy"):  # after the model-protocol change
    field = model.compile_frame(frame, body)
    prepare = time.perf_counter() - start
    times, occupancy = [], None
    for _ in range(3):
        start = time.perf_counter()
        if occupancy is None:
            occupancy = render_module.frame_occupancy(field, settings)
        image = render_module.render_view(field, camera, settings=settings, background=torch.zeros(3), occupancy=occupancy)
        times.append(time.perf_counter() - start)
else:
    with torch.no_grad():
        state = model.prepare_frame(frame, body)
    prepare = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        image = render_module.render_view(model, state, camera, settings=settings, background=torch.zeros(3))
        times.append(time.perf_counter() - start)
np.save(out + ".npy", image.rgb.float().cpu().numpy())
json.dump({"prepare": prepare, "first": times[0], "again": min(times[1:])}, open(out + ".json", "w"))
"""


def _run_tree(tree: Path, args, out: Path) -> dict:
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); exec({WORKER!r})"
    command = [sys.executable, "-c", code, str(args.run), str(args.res), str(args.frame), str(args.view),
               str(args.threads), str(out)]
    subprocess.run(command, check=True, cwd=tree)
    return json.loads(out.with_suffix(".json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a neuralbody checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--res", type=int, default=512)
    parser.add_argument("--frame", type=int, default=10)
    parser.add_argument("--view", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    trees = [(name, Path(path).resolve()) for name, _, path in (item.partition("=") for item in args.tree)]
    results: dict[str, list[dict]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as work:
        for round_index in range(args.rounds):
            for name, tree in trees:
                results[name].append(_run_tree(tree, args, Path(work) / f"{name}_{round_index}"))
        images = {name: np.load(Path(work) / f"{name}_0.npy") for name, _ in trees}
    first_name = trees[0][0]
    print(f"{'tree':12s} {'prepare s':>10s} {'first s':>10s} {'again s':>10s} {'PSNR vs ' + first_name:>16s}")
    for name, _ in trees:
        medians = {key: statistics.median(r[key] for r in results[name]) for key in ("prepare", "first", "again")}
        mse = float(np.mean((images[name] - images[first_name]) ** 2))
        agreement = "identical" if mse == 0 else f"{-10 * np.log10(mse):.1f} dB"
        print(f"{name:12s} {medians['prepare']:>10.2f} {medians['first']:>10.2f} {medians['again']:>10.2f} {agreement:>16s}")


if __name__ == "__main__":
    main()
