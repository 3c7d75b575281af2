"""``neuralbody animate-head RUN --params FILE --out OUT``: drive a trained head avatar, PNG frames and MP4/GIF."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "render a trained head avatar (train-head) through expression and pose parameters: PNG frames, MP4 and GIF"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder of neuralbody train-head")
    parser.add_argument("--params", type=Path, required=True,
                        help=".npz with expression (F, 52) and pose (F, 4, 3) (synth-head writes OUT/animation/*.npz)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--res", type=int, default=128, help="square image side in pixels (default 128)")
    parser.add_argument("--azimuth", type=float, default=0.0, help="camera azimuth, degrees (0: frontal)")
    parser.add_argument("--elevation", type=float, default=5.0, help="camera elevation, degrees (default 5)")
    parser.add_argument("--fps", type=float, default=8.0, help="video frame rate (default 8)")
    parser.add_argument("--threads", type=int, default=0,
                        help="rendering threads (default 0: $NEURALBODY_THREADS, else one per CPU core)")
    parser.add_argument("--renderer", choices=("auto", "surface", "volume"), default="auto",
                        help="surface: IMAvatar's canonical surface, forward-mapped and ray cast (fast); volume: root "
                             "finding per sample; auto (default): surface for IMAvatar, volume for nerf-expr")
    parser.add_argument("--level", type=float, default=0.0,
                        help="surface renderer: density of the canonical surface, 1/m (default 0: chosen to match "
                             "the volume render's silhouette)")
    parser.add_argument("--supersample", type=int, default=1,
                        help="surface renderer: rays a pixel along each axis (default 1)")


def run(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from neuralbody.data.writer import write_image
    from neuralbody.evaluation.orbit import write_gif, write_mp4
    from neuralbody.head.animation import read_params_file
    from neuralbody.head.animation_render import animation_renderer
    from neuralbody.head.camera_path import orbit_camera
    from neuralbody.head.frame import head_frame
    from neuralbody.head.surface_render import SurfaceSettings
    from neuralbody.head.training import load_run
    from neuralbody.io.progress import progress_bar

    if args.res < 16 or args.fps <= 0 or args.threads < 0 or args.supersample < 1:
        raise ValueError(f"--res must be >= 16, --fps > 0, --threads >= 0 and --supersample >= 1, got {args.res}, "
                         f"{args.fps}, {args.threads}, {args.supersample}")
    avatar, rig, _, checkpoint = load_run(args.run)
    if not checkpoint:
        raise ValueError(f"{args.run}: has no checkpoint.pt yet; train it first (neuralbody train-head)")
    frames = read_params_file(args.params, rig)
    camera = orbit_camera(math.radians(args.azimuth), math.radians(args.elevation), args.res, name="animate")
    renderer = animation_renderer(avatar, rig, camera, renderer=args.renderer, level=args.level,
                                  settings=SurfaceSettings(supersample=args.supersample), workers=args.threads)
    images, seconds = [], []
    for i, params in enumerate(progress_bar(frames, desc="animate-head", unit="frame")):
        rendered = renderer.render(head_frame(rig, params))
        seconds.append(rendered.seconds)
        image = np.round(np.clip(rendered.rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
        write_image(args.out / f"{i:06d}.png", image)
        images.append(image)
    print(write_gif(images, args.out / "animation.gif", fps=args.fps))
    mp4 = write_mp4(images, args.out / "animation.mp4", fps=args.fps)
    if mp4 is not None:
        print(mp4)
    print(f"animate-head: {len(images)} frames {args.res}x{args.res}, {renderer.name}, "
          f"{sum(seconds) / len(seconds):.2f} s a frame (+ {renderer.setup_seconds:.1f} s once) -> {args.out}")
    return 0
