"""``neuralbody export RUN OUT.glb|.ply``: the canonical avatar as a rigged, coloured mesh.

The rest-pose surface of a canonical-avatar run (``train --model avatar``) by marching cubes
of its canonical density, with vertex colours and (in ``.glb``) the body model's skeleton and
four skinning weights per vertex (:mod:`neuralbody.animation.canonical_mesh`,
:mod:`neuralbody.animation.gltf`); Blender opens the ``.glb`` as an armature with a skinned
mesh. ``.ply`` holds the mesh with colours only.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "write a canonical-avatar run as a rigged glTF (.glb: mesh, colours, skeleton, skinning) or a coloured .ply"

log = logging.getLogger("neuralbody.export")

SUFFIXES = (".glb", ".ply")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder of `neuralbody train --model avatar`")
    parser.add_argument("out", type=Path, help="output file: .glb (rigged) or .ply (coloured mesh)")
    parser.add_argument("--voxel", type=float, default=0.006, help="marching-cubes grid spacing, metres (default 0.006)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="density of the surface, 1/metres (default: half the avatar's largest density)")
    parser.add_argument("--all-parts", action="store_true", help="keep every connected part, not only the largest")
    parser.add_argument("--up", choices=("auto", "z", "y"), default="auto",
                        help="the avatar's up axis, written as glTF's y (auto: z for Anny, y for SMPL)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: the run's)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.animation.canonical_mesh import canonical_surface, write_coloured_ply
    from neuralbody.animation.gltf import write_glb
    from neuralbody.training.checkpoint import load_run

    suffix = args.out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{args.out}: export writes .glb or .ply files")
    if not args.voxel > 0:
        raise ValueError(f"--voxel must be positive metres, got {args.voxel}")
    if args.out.is_dir():
        raise ValueError(f"{args.out} is a folder; give a file name ending in {' or '.join(SUFFIXES)}")
    loaded = load_run(args.run, device=args.device)
    if loaded.config.model_kind != "avatar":
        raise ValueError(f"{args.run} is a {loaded.config.model_kind} run, which has no canonical space; export a "
                         "run of `neuralbody train --model avatar`")
    mesh = canonical_surface(loaded.model, voxel_size=args.voxel, threshold=args.threshold, largest=not args.all_parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".ply":
        write_coloured_ply(args.out, mesh)
    else:
        up = args.up if args.up != "auto" else _up_axis(loaded)
        write_glb(args.out, mesh, up=up, name=args.run.name or "avatar")
    print(f"export: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, {len(mesh.joint_heads)} joints -> {args.out}")
    return 0


def _up_axis(loaded) -> str:
    """z for Anny (its rest pose stands along z), y for SMPL, from the run's capture."""
    pose = loaded.capture.load_body(loaded.train_frames[0]).pose
    return "y" if pose is not None and pose.model == "smpl" else "z"
