"""``neuralbody generate RUN --n 8 [--motion NAME] --out OUT``: new people from a trained gDNA model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "new clothed people from a gDNA run: meshes with normals (canonical and posed), normal renders, an interpolation"

log = logging.getLogger("neuralbody.generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralbody.synth.motion import MOTIONS

    parser.add_argument("run", type=Path, help="run folder of `neuralbody train-gen`")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument("--n", type=int, default=8, help="new people (default 8)")
    parser.add_argument("--motion", choices=MOTIONS, default=None, help="also pose them in frames of this motion")
    parser.add_argument("--motion-frames", type=int, default=3, help="frames of the motion (default 3)")
    parser.add_argument("--interpolation", type=int, default=5,
                        help="meshes between person 0 and person 1 (default 5; 0: none)")
    parser.add_argument("--voxel", type=float, default=0.02, help="marching-cubes spacing, metres (default 0.02)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the people drawn (default 0)")
    parser.add_argument("--coarse-surface", action="store_true",
                        help="write the coarse network's surface (the detail normals only as vertex normals) "
                             "instead of the surface refined by the detail normals")
    parser.add_argument("--screening-length", type=float, default=None,
                        help="how far the detail normals are integrated into the surface, metres (default "
                             "RefineOptions: 0.05)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.gdna.detail_surface import RefineOptions
    from neuralbody.gdna.generate import GenerateSettings, generate
    from neuralbody.gdna.run_files import load_run
    from neuralbody.io.paths import require_folder_path

    require_folder_path(args.out, "--out")
    if args.n < 1 or args.motion_frames < 1 or args.interpolation < 0 or not args.voxel > 0:
        raise ValueError(f"--n and --motion-frames must be >= 1, --interpolation >= 0, --voxel > 0; got {args.n}, "
                         f"{args.motion_frames}, {args.interpolation}, {args.voxel}")
    if args.screening_length is not None and not args.screening_length > 0:
        raise ValueError(f"--screening-length must be positive metres, got {args.screening_length}")
    refine = RefineOptions() if args.screening_length is None else RefineOptions(args.screening_length)
    settings = GenerateSettings(count=args.n, motion=args.motion, motion_frames=args.motion_frames,
                                interpolation_steps=args.interpolation, voxel=args.voxel, seed=args.seed,
                                detail_geometry=None if args.coarse_surface else refine)
    loaded = load_run(args.run)
    result = generate(loaded, settings, args.out, progress=not args.no_progress)
    print(f"generate: {args.n} people, {len(result.meshes)} meshes, {len(result.images)} images in "
          f"{result.seconds:.1f} s -> {args.out}")
    return 0
