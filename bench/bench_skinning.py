"""Forward-skinning correspondence search on Anny: convergence near the body and time per 100,000 points.

Usage::

    python bench/bench_skinning.py [--points 100000] [--threads 1,2] [--candidates 1,2,3,4] [--repeats 3]

For Anny (104 bones) with its skinning-weight grid initialised from the mesh (2.5 cm nodes):

* **Convergence.** In each pose (frames of the procedural 'sway', 'wave' and 'walk' motions,
  and a strongly bent pose: left elbow folded 2.5 rad, right elbow and both knees at 90
  degrees, left hip flexed 90 degrees), ``--points`` posed points are drawn uniformly on the
  posed surface and moved by a random vector of length up to 5 cm. A point has converged when
  at least one of its K candidates is valid (residual below 0.01 mm, inside the grid's box).
  Also: the share of candidates that converged, of points with several distinct valid
  candidates, of points with several inside the canonical body (where the maximum over
  candidates decides: elsewhere the extra ones lie in empty canonical space), and the mean
  Broyden steps per candidate.
* **Round trip.** Canonical points within 2 cm (per axis) of the rest surface are skinned
  forward by the grid and searched back: the share whose own canonical point is among the
  valid candidates (within 1 mm).
* **Time** of ``correspondences`` for ``--points`` points in the bent pose (no gradients),
  wall-clock and CPU seconds (``time.process_time``: the machine may be shared), median of
  ``--repeats``, per thread count and K; plus the per-frame setup (the blended-transform field,
  once per frame) and one row with gradients on (search, then backward of a sum to the grid
  and the bone transforms).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import torch

log = logging.getLogger("bench_skinning")


def timed(function, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``function()`` over repeats, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def surface_samples(vertices, faces, count: int, generator) -> torch.Tensor:
    """(count, 3) points uniform on a triangle mesh (area-weighted faces, uniform barycentrics)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    areas = torch.linalg.cross(b - a, c - a).norm(dim=1)
    picked = torch.multinomial(areas, count, replacement=True, generator=generator)
    u, v = torch.rand(count, 1, generator=generator), torch.rand(count, 1, generator=generator)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    return a[picked] + u * (b - a)[picked] + v * (c - a)[picked]


def near_surface(vertices, faces, count: int, radius: float, generator) -> torch.Tensor:
    """(count, 3) surface points moved by random vectors of length uniform in [0, radius]."""
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=1)
    lengths = radius * torch.rand(count, 1, generator=generator)
    return surface_samples(vertices, faces, count, generator) + directions * lengths


def poses(body):
    """(name, poses (1, P), Rh (1, 3), Th (1, 3)) of the benchmark poses."""
    from neuralbody.synth.motion import anatomical_poses, make_motion

    result = []
    for name in ("sway", "wave", "walk"):
        motion = make_motion(name, body=body, num_frames=30, seed=0)
        for frame in (5, 20):
            result.append((f"{name} {frame}", motion.poses[frame : frame + 1], motion.Rh[frame : frame + 1],
                           motion.Th[frame : frame + 1]))
    program = {
        "lowerarm01.L": [("flex", 2.5)],
        "lowerarm01.R": [("flex", 1.57)],
        "upperleg01.L": [("flex", 1.57)],
        "lowerleg01.L": [("flex", -1.57)],
        "lowerleg01.R": [("flex", -1.57)],
    }
    bent, _ = anatomical_poses(body, program, num_frames=1)
    result.append(("bent", torch.tensor(bent, dtype=torch.float32), torch.zeros(1, 3), torch.zeros(1, 3)))
    return result


def convergence_table(body, grid, groups, rest, count: int) -> None:
    from neuralbody.geometry.queries import WarpMesh
    from neuralbody.models.skinning_deformer import ForwardSkinningDeformer

    canonical_mesh = WarpMesh(rest.rest_vertices[0], body.faces)
    generator = torch.Generator().manual_seed(0)
    print(f"\nconvergence, {count} points within 5 cm of the posed surface, K = 3")
    print(f"{'pose':10s} {'converged %':>12s} {'candidates %':>13s} {'several %':>10s} {'in body %':>10s} "
          f"{'steps':>6s} {'round trip %':>13s}")
    for name, pose, Rh, Th in poses(body):
        out = body(pose, Rh=Rh, Th=Th)
        deformer = ForwardSkinningDeformer.for_frame(grid, groups, out.bone_transforms[0])
        points = near_surface(out.vertices[0], body.faces, count, 0.05, generator)
        with torch.no_grad():
            result = deformer.correspondences(points)
            canonical = surface_samples(rest.rest_vertices[0], body.faces, count, generator)
            canonical = canonical + 0.02 * (2 * torch.rand(count, 3, generator=generator) - 1)
            back = deformer.correspondences(deformer.field.skin(canonical))
        found = (((back.points - canonical[:, None]).norm(dim=2) < 1e-3) & back.valid).any(dim=1)
        in_body = canonical_mesh.inside(result.points.reshape(-1, 3)).reshape(result.valid.shape) & result.valid
        print(f"{name:10s} {100 * result.valid.any(1).float().mean():12.2f} "
              f"{100 * result.converged.float().mean():13.2f} {100 * (result.valid.sum(1) > 1).float().mean():10.2f} "
              f"{100 * (in_body.sum(1) > 1).float().mean():10.2f} {result.iterations.float().mean():6.2f} "
              f"{100 * found.float().mean():13.2f}")


def timing_table(body, grid, groups, count: int, threads: list[int], candidates: list[int], repeats: int) -> None:
    from neuralbody.models.skinning_deformer import ForwardSkinningDeformer, SearchOptions

    name, pose, Rh, Th = poses(body)[-1]
    out = body(pose, Rh=Rh, Th=Th)
    bones = out.bone_transforms[0]
    points = near_surface(out.vertices[0], body.faces, count, 0.05, torch.Generator().manual_seed(1))
    print(f"\ntime for {count} points within 5 cm of the posed surface ({name} pose), median of {repeats}")
    print(f"{'threads':>7s} {'K':>3s} {'what':28s} {'wall s':>8s} {'cpu s':>8s} {'converged %':>12s}")
    for thread_count in threads:
        torch.set_num_threads(thread_count)
        with torch.no_grad():
            wall, cpu, _ = timed(lambda: grid.field(bones), repeats)
        print(f"{thread_count:7d} {'':>3s} {'frame setup (field)':28s} {wall:8.3f} {cpu:8.3f}")
        for k in candidates:
            deformer = ForwardSkinningDeformer.for_frame(grid, groups, bones, SearchOptions(num_candidates=k))
            with torch.no_grad():
                wall, cpu, result = timed(lambda: deformer.correspondences(points), repeats)
            rate = 100 * float(result.valid.any(1).float().mean())
            print(f"{thread_count:7d} {k:3d} {'search':28s} {wall:8.3f} {cpu:8.3f} {rate:12.2f}")

        def with_gradients():
            grid.zero_grad()
            transforms = bones.clone().requires_grad_(True)
            result = ForwardSkinningDeformer.for_frame(grid, groups, transforms).correspondences(points)
            result.points[result.valid].sum().backward()
            return result

        wall, cpu, _ = timed(with_gradients, repeats)
        print(f"{thread_count:7d} {3:3d} {'setup + search + backward':28s} {wall:8.3f} {cpu:8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--candidates", default="1,2,3,4", help="comma-separated K (starts per point)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from neuralbody.body.anny import load_anny
    from neuralbody.skinning.initial_guesses import bone_groups
    from neuralbody.skinning.weight_grid import weight_grid_from_mesh

    torch.set_num_threads(1)
    body = load_anny()
    with torch.no_grad():
        rest = body(torch.zeros(1, body.pose_dim))
    wall, cpu, grid = timed(lambda: weight_grid_from_mesh(rest.rest_vertices[0], body.faces, body.lbs_weights), 1)
    groups = bone_groups(body.parents, rest.rest_joints[0])
    log.info("load average before: %s (2 cores, shared)", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    log.info("Anny: %d bones in %d groups; weight grid %s nodes x %d bones built in %.1f s (%.1f s CPU)",
             body.num_joints, groups.num_groups, "x".join(map(str, grid.logits.shape[:3])), grid.num_bones, wall, cpu)
    with torch.no_grad():
        convergence_table(body, grid, groups, rest, args.points)
    timing_table(body, grid, groups, args.points, [int(t) for t in args.threads.split(",")],
                 [int(k) for k in args.candidates.split(",")], args.repeats)
    log.info("load average after: %s", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
