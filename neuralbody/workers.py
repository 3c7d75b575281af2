"""Inference work split over the CPU's cores: one Python thread per core, one torch thread each.

Torch's CPU kernels release the GIL, so independent chunks (of rays, of grid points) run in
parallel on threads; on two cores this is 1.9x for rendering, where torch's own intra-op threads
gain little on the many small products of a ray chunk. On CUDA the device is the parallelism:
one worker.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def cpu_workers(requested: int, device: torch.device) -> int:
    """Threads to use: ``requested`` if > 0, else ``$NEURALBODY_THREADS``, else one per CPU core
    available to the process; always 1 off the CPU."""
    if device.type != "cpu":
        return 1
    if requested > 0:
        return requested
    override = os.environ.get("NEURALBODY_THREADS")
    if override:
        try:
            return max(1, int(override))
        except ValueError:
            raise ValueError(f"NEURALBODY_THREADS must be a whole number of threads, got {override!r}") from None
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def map_in_threads(function: Callable[[Item], Result], items: list[Item], workers: int) -> list[Result]:
    """``[function(item) for item in items]`` on ``workers`` threads, without gradients, one torch thread each.

    Torch's own thread pool is set to one thread meanwhile (restored after) so the cores are not
    oversubscribed. With one worker or one item it runs in the calling thread.
    """
    if workers <= 1 or len(items) <= 1:
        with torch.no_grad():
            return [function(item) for item in items]

    def call(item):
        with torch.no_grad():  # grad mode is per thread
            return function(item)

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return list(pool.map(call, items))
    finally:
        torch.set_num_threads(torch_threads)
