"""``neuralbody render RUN``: images of any camera and frame (unseen poses too) and orbit videos."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from neuralbody.cli.arguments import choose_views, parse_index_list

HELP = "render a trained run: any camera and frame (unseen poses too), or an orbit around the person as GIF/MP4"

log = logging.getLogger("neuralbody.render")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody train`")
    parser.add_argument("--frame", default=None,
                        help="frame index, list or range (e.g. 5, 0,10,20 or 0:40:2); frames after training are unseen "
                             "poses (default: the middle training frame)")
    views = parser.add_mutually_exclusive_group()
    views.add_argument("--view", type=int, default=None, help="camera index (default: the first held-out camera)")
    views.add_argument("--all-views", action="store_true", help="render every camera")
    parser.add_argument("--orbit", type=int, default=None, metavar="N",
                        help="also render N cameras orbiting the person (GIF, and MP4 with imageio-ffmpeg)")
    parser.add_argument("--fps", type=float, default=15.0, help="frames per second of GIF/MP4 (default 15)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default RUN/render)")
    parser.add_argument("--res-scale", type=float, default=1.0, help="resolution relative to the run's images (default 1)")
    parser.add_argument("--samples", type=int, default=None, help="samples per ray (default: as in training)")
    parser.add_argument("--with-truth", action="store_true", help="put the ground-truth image beside each render")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: the run's)")


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    from neuralbody.evaluation.orbit import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)


def _check_arguments(args: argparse.Namespace) -> Path:
    """The output folder; ValueError / InputError for arguments no render can use (before the run is loaded)."""
    from neuralbody.io.paths import require_folder_path

    for flag, value in (("--res-scale", args.res_scale), ("--fps", args.fps), ("--samples", args.samples),
                        ("--orbit", args.orbit)):  # fmt: skip
        if value is not None and not value > 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    return require_folder_path(args.out or args.run / "render", "--out")


def run(args: argparse.Namespace) -> int:
    from neuralbody.data.checks import validate_frames
    from neuralbody.evaluation.orbit import orbit_cameras, write_gif, write_mp4
    from neuralbody.io.progress import progress_bar
    from neuralbody.rendering.render import frame_occupancy, render_view
    from neuralbody.training.checkpoint import load_run

    out_dir = _check_arguments(args)
    loaded = load_run(args.run, device=args.device)
    capture = loaded.capture
    frames = parse_index_list(args.frame, limit=capture.num_frames, what="frame") or [
        loaded.train_frames[len(loaded.train_frames) // 2]
    ]
    views = [] if args.orbit and not args.all_views and args.view is None else (
        choose_views(args, capture, loaded.train_views))
    validate_frames(capture, frames, views, expected_count=loaded.model.num_vertices, masks=False)
    cameras = [camera if args.res_scale == 1.0 else camera.scaled(args.res_scale) for camera in capture.cameras]
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides = {"num_samples": args.samples, "density_grid_samples": args.samples} if args.samples else {}
    settings = loaded.render_settings(**overrides)
    model, background = loaded.model, loaded.background
    last_trained = max(loaded.train_frames)
    written: list[Path] = []
    per_view_sequence: dict[int, list[np.ndarray]] = {view: [] for view in views}
    rule = model.unseen_frame_rule()
    for frame in frames:
        if frame > last_trained and rule is not None:
            log.info("frame %d is an unseen pose (trained on frames up to %d; %s)", frame, last_trained, rule)
        body = capture.load_body(frame)
        field = model.compile_frame(frame, body.to(loaded.device))
        occupancy = frame_occupancy(field, settings)
        for view in views:
            image = render_view(field, cameras[view], settings=settings, background=background,
                                occupancy=occupancy).rgb.float().cpu().numpy()
            per_view_sequence[view].append(image)
            if args.with_truth:
                from neuralbody.data.images import resize_image

                truth = capture.load_image(frame, view)
                if truth.shape[:2] != image.shape[:2]:
                    truth = resize_image(truth, (image.shape[1], image.shape[0]))
                image = np.concatenate([image, truth], axis=1)
            path = out_dir / f"frame{frame:04d}_view{view:02d}.png"
            _save_png(path, image)
            written.append(path)
        if args.orbit:
            vertices = body.vertices.detach().cpu().numpy().astype(np.float64)
            target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0
            reference = views[0] if views else 0
            path_cams = orbit_cameras(cameras, target, num_steps=args.orbit, reference=reference)
            log.info("orbit: %d cameras, radius %.2f m, height %+.2f m around (%.2f, %.2f, %.2f)",
                     args.orbit, path_cams.radius, path_cams.height, *target)
            images = [
                render_view(field, camera, settings=settings, background=background,
                            occupancy=occupancy).rgb.float().cpu().numpy()
                for camera in progress_bar(path_cams.cameras, desc=f"orbit frame {frame}", unit="view")
            ]
            stem = out_dir / f"frame{frame:04d}_orbit{args.orbit}"
            written.append(write_gif(images, stem.with_suffix(".gif"), fps=args.fps))
            mp4 = write_mp4(images, stem.with_suffix(".mp4"), fps=args.fps)
            if mp4 is not None:
                written.append(mp4)
    if len(frames) > 1:
        for view, images in per_view_sequence.items():
            stem = out_dir / f"view{view:02d}_frames{frames[0]:04d}-{frames[-1]:04d}"
            written.append(write_gif(images, stem.with_suffix(".gif"), fps=args.fps))
            mp4 = write_mp4(images, stem.with_suffix(".mp4"), fps=args.fps)
            if mp4 is not None:
                written.append(mp4)
    for path in written:
        print(path)
    return 0
