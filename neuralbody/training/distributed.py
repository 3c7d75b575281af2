"""Data-parallel training across processes (``torchrun --nproc_per_node N -m neuralbody.cli.main train ...``).

Every rank holds a full copy of the model and draws its own rays (ray seed ``seed + rank``).
After each backward pass the gradients are averaged across ranks with one ``all_reduce`` of
a flat buffer (a parameter without a gradient counts as zeros, so all ranks take the same
Adam step)::

    g <- (1 / world_size) * sum_r g_r

which is what ``DistributedDataParallel`` does; it is done by hand because Neural Body's
forward is split in ``prepare_frame`` / ``query`` calls. BatchNorm layers normalise with
their own rank's batch statistics; their running statistics (and any other buffers) are
copied from rank 0 after every step, like DDP's default ``broadcast_buffers=True``, so all
ranks hold identical state. Rank 0 alone writes checkpoints, logs and validation renders.

The process group is initialised from the torchrun environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): backend ``nccl`` with device
``cuda:LOCAL_RANK`` when CUDA is used, ``gloo`` on the CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a data-parallel run (world_size 1: a plain single-process run)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """Whether the environment names a multi-process run (torchrun sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_name: str = "auto") -> DistributedContext:
    """Join the process group described by the torchrun environment.

    Backend ``nccl`` when ``device_name`` asks for CUDA (or is "auto" and CUDA is available;
    the rank then uses ``cuda:LOCAL_RANK``, see :func:`rank_device`), else ``gloo``. Without a
    multi-process environment: a single-process context and no process group.
    """
    if not launched_by_torchrun():
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    world_size = int(os.environ["WORLD_SIZE"])
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {device_name}: CUDA is not available on rank {rank}; use --device cpu")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    log.info("rank %d of %d (local rank %d), backend %s", rank, world_size, local_rank, backend)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size)


def rank_device(device: torch.device, context: DistributedContext) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for a CUDA run with several ranks, else ``device``."""
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def shutdown_distributed() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()


def average_gradients(parameters, context: DistributedContext) -> None:
    """Replace every parameter's ``.grad`` by its mean over ranks (missing gradients count as 0)."""
    if not context.enabled:
        return
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        return
    flat = torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in parameters
    ])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= context.world_size
    offset = 0
    for parameter in parameters:
        count = parameter.numel()
        parameter.grad = flat[offset: offset + count].view_as(parameter).clone()
        offset += count


def broadcast_state(module: torch.nn.Module, context: DistributedContext, *, parameters: bool = True) -> None:
    """Copy rank 0's buffers (and parameters unless ``parameters=False``) to every rank, in place."""
    if not context.enabled:
        return
    with torch.no_grad():
        tensors = list(module.buffers())
        if parameters:
            tensors += list(module.parameters())
        for tensor in tensors:
            if tensor.dtype == torch.bool:  # gloo has no bool collectives
                staged = tensor.data.to(torch.uint8)
                dist.broadcast(staged, src=0)
                tensor.data.copy_(staged.bool())
            else:
                dist.broadcast(tensor.data, src=0)


def broadcast_float(value: float, context: DistributedContext, *, device) -> float:
    """Rank 0's value of a float on every rank (e.g. the elapsed time, so all ranks stop together)."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def gather_objects(value, context: DistributedContext) -> list:
    """Every rank's picklable ``value``, in rank order (a one-element list without a group)."""
    if not context.enabled:
        return [value]
    out = [None] * context.world_size
    dist.all_gather_object(out, value)
    return out
