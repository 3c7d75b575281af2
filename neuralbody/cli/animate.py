"""``neuralbody animate RUN --motion SRC --out OUT``: a trained person in a new motion.

Works for the canonical avatar (``train --model avatar``: posed by the body-model poses) and
for Neural Body runs (posed by the body model's vertices; frames use the last training
frame's appearance code). ``SRC`` is a procedural motion by name, a motion file (``.npz``,
see docs/animation.md), a capture folder (e.g. another capture of the same person) or a
``params/`` / ``vertices/`` folder (:mod:`neuralbody.animation.sources`). Frames are rendered
for a camera of the run's capture (``--view``, ``--all-views``), an orbit that turns once
around the person over the animation (``--orbit``) or the source capture's cameras
(``--source-cameras``, with ``--with-truth``), as PNG frames plus a GIF (and MP4 with
imageio-ffmpeg) per camera.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from neuralbody.cli.arguments import choose_views, parse_index_list

HELP = "render a trained run (canonical avatar or Neural Body) in a new motion: PNG frames and GIF/MP4"

log = logging.getLogger("neuralbody.animate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by `neuralbody train`")
    parser.add_argument("--motion", required=True, metavar="SRC",
                        help="procedural motion name (e.g. squat), motion file (.npz), capture folder, or params/ or "
                             "vertices/ folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (PNG frames, GIF, MP4)")
    parser.add_argument("--length", type=int, default=40, help="frames of a procedural motion (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="phases of a procedural motion (default 0)")
    parser.add_argument("--source-frames", default=None,
                        help="frames of a capture, motion file or folder to play, e.g. 0:60:2 (default: all)")
    cameras = parser.add_mutually_exclusive_group()
    cameras.add_argument("--view", type=int, default=None, help="camera of the run's capture (default: a held-out one)")
    cameras.add_argument("--all-views", action="store_true", help="every camera of the run's capture")
    cameras.add_argument("--orbit", action="store_true", help="a camera turning once around the person")
    cameras.add_argument("--source-cameras", action="store_true", help="the cameras of the source capture")
    parser.add_argument("--with-truth", action="store_true", help="with --source-cameras: the source images beside")
    parser.add_argument("--keep-position", action="store_true",
                        help="play procedural motions and motion files where they are, not where the run's person stood")
    parser.add_argument("--save-motion", type=Path, default=None, metavar="FILE.npz",
                        help="also write the motion played as a motion file")
    parser.add_argument("--fps", type=float, default=None, help="GIF/MP4 frame rate (default: the motion's)")
    parser.add_argument("--res-scale", type=float, default=1.0, help="resolution relative to the run's images")
    parser.add_argument("--samples", type=int, default=None, help="samples per ray (default: as in training)")
    parser.add_argument("--body-model-path", default=None, help="the SMPL model file, for SMPL runs")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: the run's)")


def _check_arguments(args: argparse.Namespace) -> None:
    from neuralbody.io.paths import require_folder_path

    for flag, value in (("--length", args.length), ("--res-scale", args.res_scale), ("--fps", args.fps),
                        ("--samples", args.samples)):  # fmt: skip
        if value is not None and not value > 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    if args.with_truth and not args.source_cameras:
        raise ValueError("--with-truth needs --source-cameras (the truth is the source capture's images)")
    if args.save_motion is not None and args.save_motion.suffix.lower() != ".npz":
        raise ValueError(f"--save-motion {args.save_motion}: motion files end in .npz")
    require_folder_path(args.out, "--out")


def _reference_pose(loaded):
    """The run's person: the body pose of its first training frame (None without params)."""
    return loaded.capture.load_body(loaded.train_frames[0])


def _source(args, loaded, reference):
    """The motion (posed bodies), its name and frame rate."""
    from neuralbody.animation.motion_file import write_motion_file
    from neuralbody.animation.sources import load_motion_source, place_at, posed_bodies, procedural_source

    source = load_motion_source(args.motion)
    if not isinstance(source, str) and args.source_frames is not None:
        source = source.select(parse_index_list(args.source_frames, limit=source.num_frames, what="source-frames"))
    pose = reference.pose
    needs_body_model = isinstance(source, str) or (source.clip is not None and source.vertices is None)
    body_model = None
    if needs_body_model:
        if pose is None:
            raise ValueError(f"{loaded.config.data}: the run's capture has no params/ (body-model poses and shapes), "
                             "so its person cannot be posed in a new motion; animate with a vertices/ source")
        from neuralbody.body import load_body_model

        path = args.body_model_path or getattr(getattr(loaded.model, "config", None), "body_model_path", None)
        body_model = load_body_model(pose.model, model_path=path)
    shapes = None if pose is None else pose.shapes
    if isinstance(source, str):
        source = procedural_source(source, body_model, shapes, num_frames=args.length, seed=args.seed)
    if not args.keep_position:
        source = place_at(source, reference.Th)
    if args.save_motion is not None:
        if source.clip is None:
            raise ValueError(f"--save-motion: {args.motion} has vertices only, no poses to save")
        log.info("wrote %s", write_motion_file(args.save_motion, source.clip))
    is_avatar = loaded.config.model_kind == "avatar"
    bodies = posed_bodies(source, body_model=body_model, shapes=shapes, needs_pose=is_avatar)
    fps = args.fps or (source.clip.fps if source.clip is not None else 10.0)
    return source, bodies, fps


def _cameras(args, loaded, source, bodies) -> dict[str, tuple[list, int | None]]:
    """Per output sequence name: one camera per frame, and the source camera whose images are the truth."""
    from neuralbody.evaluation.orbit import orbit_cameras

    capture = loaded.capture
    scale = args.res_scale
    scaled = [camera if scale == 1.0 else camera.scaled(scale) for camera in capture.cameras]
    count = len(bodies)
    if args.source_cameras:
        if source.capture is None:
            raise ValueError(f"--source-cameras: --motion {args.motion} is not a capture folder")
        cameras = [c if scale == 1.0 else c.scaled(scale) for c in source.capture.cameras]
        return {f"source{v:02d}": ([cameras[v]] * count, v) for v in range(len(cameras))}
    if args.orbit:
        views = []
        for index, body in enumerate(bodies):
            vertices = body.vertices.detach().cpu().numpy().astype(np.float64)
            target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0
            views.append(orbit_cameras(scaled, target, num_steps=count).cameras[index])
        return {"orbit": (views, None)}
    chosen = choose_views(args, capture, loaded.train_views)
    return {f"view{v:02d}": ([scaled[v]] * count, None) for v in chosen}


def run(args: argparse.Namespace) -> int:
    from neuralbody.training.checkpoint import load_run

    _check_arguments(args)
    loaded = load_run(args.run, device=args.device)
    reference = _reference_pose(loaded)
    source, bodies, fps = _source(args, loaded, reference)
    expected = loaded.model.num_vertices
    if expected is not None and bodies[0].vertices.shape[0] != expected:
        raise ValueError(f"--motion {args.motion}: bodies have {bodies[0].vertices.shape[0]} vertices, the run's model "
                         f"{expected}; animate with the run's body model")
    sequences = _cameras(args, loaded, source, bodies)
    args.out.mkdir(parents=True, exist_ok=True)
    written, seconds = _render_all(args, loaded, source, bodies, sequences)
    for name, images in written.items():
        _write_videos(args.out / name, images, fps)
    log.info("%d frames x %d cameras in %.1f s (%.2f s a frame and camera)", len(bodies), len(sequences),
             sum(seconds), sum(seconds) / max(len(seconds), 1) / max(len(sequences), 1))
    print(f"animate: {source.name}, {len(bodies)} frames x {len(sequences)} cameras -> {args.out}")
    return 0


def _render_all(args, loaded, source, bodies, sequences):
    """Render every frame for every sequence; returns {name: images} and seconds per frame."""
    from neuralbody.evaluation.orbit import to_uint8
    from neuralbody.io.progress import progress_bar
    from neuralbody.rendering.render import frame_occupancy, render_view

    overrides = {"num_samples": args.samples, "density_grid_samples": args.samples} if args.samples else {}
    settings = loaded.render_settings(**overrides)
    model, background = loaded.model, loaded.background
    first_unseen = max(loaded.train_frames) + 1  # Neural Body: frames after training take the last appearance code
    images: dict[str, list[np.ndarray]] = {name: [] for name in sequences}
    seconds = []
    for index in progress_bar(range(len(bodies)), desc="animate", unit="frame"):
        started = time.perf_counter()
        field = model.compile_frame(first_unseen + index, bodies[index].to(loaded.device))
        occupancy = frame_occupancy(field, settings)
        for name, (cameras, truth_view) in sequences.items():
            image = render_view(field, cameras[index], settings=settings, background=background,
                                occupancy=occupancy).rgb.float().cpu().numpy()
            if args.with_truth:
                image = np.concatenate([image, _truth(source, index, truth_view, image.shape)], axis=1)
            images[name].append(to_uint8(image))
        seconds.append(time.perf_counter() - started)
        for name in sequences:
            _save_png(args.out / f"{name}_frame{index:04d}.png", images[name][-1])
    return images, seconds


def _truth(source, index: int, view: int, shape) -> np.ndarray:
    from neuralbody.data.images import resize_image

    frame = source.frames[index] if source.frames is not None else index
    truth = source.capture.load_image(frame, view)
    return truth if truth.shape == shape else resize_image(truth, (shape[1], shape[0]))


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def _write_videos(stem: Path, images: list[np.ndarray], fps: float) -> None:
    from neuralbody.evaluation.orbit import write_gif, write_mp4

    print(write_gif(images, stem.with_suffix(".gif"), fps=fps))
    mp4 = write_mp4(images, stem.with_suffix(".mp4"), fps=fps)
    if mp4 is not None:
        print(mp4)
