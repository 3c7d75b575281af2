"""gDNA's detail geometry: what the refinement by the detail normals costs and how it looks.

Usage::

    python bench/bench_gdna_detail.py --run RUN [--n 8] [--seed 0] [--voxel 0.02] [--screening-length L] \
        [--figure detail.png] [--figure-person 0] [--size 200]

For ``--n`` new people drawn from the run (as ``generate --seed``), the coarse canonical surface
with the detail network's normals (:func:`neuralbody.gdna.generate.person_mesh` with
``detail_geometry=None``) is refined by them (:mod:`neuralbody.gdna.detail_surface`); printed: the
vertices, the wall time of the refinement alone, the vertices' motion (mean and 99th percentile
of ``|v' - v|``), the share of vertices whose detail normal was used, and how well the surface's own
normals agree with the detail normals before and after (mean ``<m, n>``). ``--figure`` writes one
person's canonical surface, front view, shaded by the surface's own normals: the coarse surface,
the refined surface, and (right) the detail normals the coarse surface wears.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_gdna_detail")


def own_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    from neuralbody.geometry.normals import vertex_normals

    return vertex_normals(torch.as_tensor(vertices), torch.as_tensor(faces)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--n", type=int, default=8, help="people (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the people drawn (default 0)")
    parser.add_argument("--voxel", type=float, default=0.02, help="marching cubes, metres (default 0.02)")
    parser.add_argument("--screening-length", type=float, default=None, help="metres (default RefineOptions's)")
    parser.add_argument("--motion", choices=("free", "normal"), default="free", help="RefineOptions.motion")
    parser.add_argument("--figure", type=Path, default=None, help="write the coarse / refined / worn PNG here")
    parser.add_argument("--figure-person", type=int, default=0, help="the person of the figure (default 0)")
    parser.add_argument("--size", type=int, default=200, help="side of each render, pixels (default 200)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(int(os.environ.get("NEURALBODY_THREADS", "1")))
    from neuralbody.data.images import write_png
    from neuralbody.gdna.detail_surface import RefineOptions, refine_along_normals
    from neuralbody.gdna.generate import person_mesh, sample_people
    from neuralbody.gdna.meshing import NormalMesh
    from neuralbody.gdna.normal_render import contact_sheet, render_normals
    from neuralbody.gdna.run_files import load_run

    length = RefineOptions().screening_length if args.screening_length is None else args.screening_length
    options = RefineOptions(length, args.motion)
    loaded = load_run(args.run)
    print(f"\nrefinement by the detail normals, l = {options.screening_length:g} m, motion {options.motion}, "
          f"voxel {args.voxel:g} m\n")
    print("| person | vertices | refine s | mean motion mm | p99 motion mm | normals used | <m, n> coarse | "
          "<m, n> refined |\n|---|---|---|---|---|---|---|---|")
    seconds = []
    for i, person in enumerate(sample_people(loaded, args.n, args.seed)):
        mesh, _ = person_mesh(loaded, person, args.voxel, detail_geometry=None)
        started = time.perf_counter()
        refined = refine_along_normals(mesh.vertices, mesh.faces, mesh.normals, options)
        seconds.append(time.perf_counter() - started)
        after = (own_normals(refined.vertices, mesh.faces) * mesh.normals).sum(axis=1).mean()
        before = (refined.coarse_normals * mesh.normals).sum(axis=1).mean()
        d = 1e3 * np.linalg.norm(refined.displacement, axis=1)
        print(f"| {i} | {len(mesh.vertices)} | {seconds[-1]:.2f} | {d.mean():.1f} | {np.percentile(d, 99):.1f} | "
              f"{100 * refined.kept.mean():.0f} % | {before:.3f} | {after:.3f} |")
        if args.figure and i == args.figure_person:
            low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
            centre, half = 0.5 * (low + high), 0.55 * float((high - low)[[0, 2]].max())
            views = [NormalMesh(mesh.vertices, mesh.faces, own_normals(mesh.vertices, mesh.faces)),
                     NormalMesh(refined.vertices, mesh.faces, own_normals(refined.vertices, mesh.faces)),
                     NormalMesh(mesh.vertices, mesh.faces, mesh.normals)]
            write_png(args.figure, contact_sheet([render_normals(v, args.size, centre, half) for v in views], 3))
    print(f"\nrefinement: {sum(seconds):.2f} s for {args.n} people ({np.mean(seconds):.2f} s a person)")


if __name__ == "__main__":
    main()
