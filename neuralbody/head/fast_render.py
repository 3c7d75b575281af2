"""Rendering a head avatar's whole image for animation: :func:`neuralbody.head.evaluation.render_image`'s picture, sooner.

:func:`render_image_fast` computes the same rays, samples and compositing as ``render_image``
(the slow path, kept as the test oracle); what changes is only how the work is arranged:

1. **per-frame folds** (``avatar.fold(frame)``, computed once a frame instead of once a query):
   IMAvatar's contraction ``E psi + Pc theta`` of the 241-channel deformation grid to 7 channels
   (:func:`neuralbody.head.deformation.frame_grid`, which the slow path redoes for every block of
   samples of every chunk); nerf-expr's first MLP layer on the frame's constant code,
   ``W [f; c] + b = W_f f + (W_c c + b)``;
2. **only rays that hit the frame's posed box** are handed out (the others are black, empty and
   at depth 0 in both paths), in large chunks, so a chunk's many small tensor operations
   (Broyden's steps) are paid for fewer times;
3. **the chunks run on the CPU's cores** (:func:`neuralbody.workers.map_in_threads`, one torch
   thread each): rays are independent. The rays are dealt round-robin, so every chunk holds
   its share of the costly rays through the face and of the cheap ones beside it.

IMAvatar keeps the slow path's forward-mapped occupancy (:mod:`neuralbody.head.occupancy`,
built once a frame and counted in the time) and front-to-back stopping. Rays, root finding
and compositing are per ray and per sample, so the result equals the slow path's up to float
rounding of batched kernels (the tests hold it to 1e-4 per pixel).
"""

from __future__ import annotations

import time

import torch

from neuralbody.data.cameras import Camera, pixel_rays, ray_box_intersection
from neuralbody.head.avatar import ImAvatar, NerfExpr
from neuralbody.head.evaluation import RenderedImage
from neuralbody.head.frame import HeadFrame
from neuralbody.head.occupancy import posed_occupancy
from neuralbody.head.raymarch import RayColours, render_rays
from neuralbody.workers import cpu_workers, map_in_threads


def render_image_fast(avatar: ImAvatar | NerfExpr, frame: HeadFrame, camera: Camera, *, samples: int = 32,
                      chunk: int = 16384, workers: int = 0) -> RenderedImage:
    """Render a camera's whole image of a frame (no gradients): the module docstring's arrangement.

    Args:
        avatar: a trained :class:`ImAvatar` or :class:`NerfExpr`.
        frame: the frame's parameters and posed box.
        camera: the camera (world-to-camera, OpenCV axes).
        samples: samples a ray (as ``render_image``).
        chunk: most rays a task; the box's rays are dealt round-robin into a multiple of the threads of tasks.
        workers: threads (0: ``$NEURALBODY_THREADS``, else one per core; :func:`neuralbody.workers.cpu_workers`).
    """
    if samples < 2 or chunk < 1 or workers < 0:
        raise ValueError(f"render_image_fast: samples >= 2, chunk >= 1, workers >= 0 needed, got {samples}, {chunk}, "
                         f"{workers}")
    start = time.perf_counter()
    threads = cpu_workers(workers, torch.device("cpu"))
    with torch.no_grad():
        occupancy = posed_occupancy(avatar, frame) if isinstance(avatar, ImAvatar) else None
        values = avatar.fold(frame)
        o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
        forward = torch.tensor(camera.R[2], dtype=torch.float32)
        rows = torch.nonzero(ray_box_intersection(o, d, frame.box_min, frame.box_max)[2]).squeeze(1)
        pieces = threads * -(-rows.numel() // (chunk * threads))  # a multiple of the threads
        tasks = [rows[i::pieces] for i in range(pieces)]  # interleaved: head and background rays in each

        def render(part: torch.Tensor) -> RayColours:
            return render_rays(avatar, frame, o[part], d[part], forward, samples=samples, occupancy=occupancy,
                               frame_values=values)

        parts = map_in_threads(render, tasks, threads)
    count = o.shape[0]
    rgb, opacity, depth, surface = o.new_zeros(count, 3), o.new_zeros(count), o.new_zeros(count), o.new_zeros(count)
    for part, out in zip(tasks, parts):
        rgb[part], opacity[part], depth[part], surface[part] = out.rgb, out.opacity, out.depth, out.surface
    h, w = camera.height, camera.width
    return RenderedImage(rgb=rgb.reshape(h, w, 3).numpy(), opacity=opacity.reshape(h, w).numpy(),
                         depth=depth.reshape(h, w).numpy(), surface=surface.reshape(h, w).numpy(),
                         seconds=time.perf_counter() - start)
