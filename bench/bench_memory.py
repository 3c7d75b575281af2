"""Peak resident memory (ru_maxrss) of short training runs: the demo capture, and a ZJU-MoCap-sized stand-in.

Usage::

    neuralbody synth /tmp/memcap --frames 30 --views 8 --res 256
    neuralbody synth /tmp/bigcap --frames 2 --views 23 --res 512 --train-views 23 --supersample 1
    python bench/bench_memory.py --demo /tmp/memcap --big /tmp/bigcap [--steps 20]

Each measurement runs in a fresh subprocess (``ru_maxrss`` is a per-process high-water mark):

* ``demo``: ``neuralbody train`` defaults (auto image source: preloaded) on the demo capture.
* ``big``: a stand-in of ZJU-MoCap's size, 23 cameras x 300 frames at 512 x 512, all 23
  cameras training: the small capture's frames are reused (frame i reads frame i mod n from
  disk; body fits likewise), so no disk space is needed. Streaming (forced; the automatic
  choice streams too, since the decoded estimate is ~22 GB).

Prints one line per run: mode, images, steps, seconds, peak RSS (GB), cache bound and the
largest number of cached images.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time

log = logging.getLogger("bench_memory")


class RepeatedFramesCapture:
    """A capture with ``num_frames`` frames whose frame i is the wrapped capture's frame i mod n."""

    def __init__(self, capture, num_frames: int) -> None:
        self._capture = capture
        self.cameras = capture.cameras
        self.num_frames = int(num_frames)
        self.num_views = capture.num_views
        self.meta = {
            "background": (capture.meta or {}).get("background", [0.0, 0.0, 0.0]),
            "frames": {"train": [0, self.num_frames]},
            "train_cameras": list(range(capture.num_views)),
            "test_cameras": [],
        }

    def load_image(self, frame: int, view: int):
        return self._capture.load_image(frame % self._capture.num_frames, view)

    def load_mask(self, frame: int, view: int):
        return self._capture.load_mask(frame % self._capture.num_frames, view)

    def load_body(self, frame: int):
        return self._capture.load_body(frame % self._capture.num_frames)


def peak_rss_gb() -> float:
    """Peak resident set size of this process, GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def measure(kind: str, data: str, *, steps: int, frames: int) -> dict:
    """Train ``steps`` steps in this process; the figures as a dict."""
    import torch

    from neuralbody.data.capture import read_capture
    from neuralbody.training.config import TrainConfig
    from neuralbody.training.trainer import Trainer

    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    capture = read_capture(data)
    source = "auto"
    if kind == "big":
        capture = RepeatedFramesCapture(capture, frames)
        source = "stream"
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig.from_preset(
            "fast", data=data, out=os.path.join(out, "run"), steps=steps, val_every=0, ckpt_every=10**9,
            device="cpu", image_source=source,
        )
        started = time.perf_counter()
        trainer = Trainer(config, progress=False, capture=capture)
        trainer.run()
        seconds = time.perf_counter() - started
    images = len(config.train_frames) * len(config.train_views)
    cache = trainer.sampler.source
    held = list(cache.images.values()) if hasattr(cache, "images") else cache.entries()
    mean_bytes = sum(image.nbytes for image in held) / max(len(held), 1)
    return {
        "kind": kind, "mode": "stream" if trainer.sampler.streaming else "preload", "images": images,
        "resolution": f"{capture.cameras[0].width}x{capture.cameras[0].height}", "steps": steps,
        "seconds": round(seconds, 1), "peak_rss_gb": round(peak_rss_gb(), 3),
        "cache_capacity": getattr(cache, "capacity", images), "cache_max_held": getattr(cache, "max_held", images),
        "decoded_mb_per_image": round(mean_bytes / 1e6, 3), "all_images_decoded_gb": round(mean_bytes * images / 1e9, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", help="demo capture folder (neuralbody synth ... --frames 30 --views 8 --res 256)")
    parser.add_argument("--big", help="23-view 512x512 capture whose frames are reused up to --frames")
    parser.add_argument("--frames", type=int, default=300, help="frames of the ZJU-sized stand-in (default 300)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run (default 20)")
    parser.add_argument("--one", choices=("demo", "big"), help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.one:
        data = args.demo if args.one == "demo" else args.big
        print(json.dumps(measure(args.one, data, steps=args.steps, frames=args.frames)))
        return 0
    rows = []
    for kind, data in (("demo", args.demo), ("big", args.big)):
        if not data:
            continue
        log.info("measuring %s (%s), %d steps", kind, data, args.steps)
        command = [sys.executable, __file__, "--one", kind, f"--{kind}", data, "--steps", str(args.steps),
                   "--frames", str(args.frames)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log.error("%s run failed:\n%s", kind, result.stderr[-3000:])
            return 1
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(f"{'run':6} {'mode':8} {'images':>7} {'res':>8} {'steps':>5} {'s':>7} {'peak RSS GB':>11} "
          f"{'cache held/bound':>16} {'all decoded GB':>14}")
    for row in rows:
        print(f"{row['kind']:6} {row['mode']:8} {row['images']:7d} {row['resolution']:>8} {row['steps']:5d} "
              f"{row['seconds']:7.1f} {row['peak_rss_gb']:11.3f} {row['cache_max_held']:8d}/{row['cache_capacity']:<7d} "
              f"{row['all_images_decoded_gb']:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
