"""Splitting inference over CPU threads: the worker count and an order-keeping parallel map."""

from __future__ import annotations

import threading

import pytest
import torch

from neuralbody.workers import cpu_workers, map_in_threads


def test_cpu_workers(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("NEURALBODY_THREADS", raising=False)
    assert cpu_workers(3, cpu) == 3
    assert cpu_workers(0, cpu) >= 1
    assert cpu_workers(0, torch.device("cuda")) == 1 and cpu_workers(4, torch.device("cuda")) == 1
    monkeypatch.setenv("NEURALBODY_THREADS", "5")
    assert cpu_workers(0, cpu) == 5 and cpu_workers(2, cpu) == 2
    monkeypatch.setenv("NEURALBODY_THREADS", "two")
    with pytest.raises(ValueError, match="NEURALBODY_THREADS"):
        cpu_workers(0, cpu)


def test_map_in_threads_keeps_order_and_restores_torch_threads():
    torch_threads = torch.get_num_threads()
    seen = set()

    def square(x: int) -> tuple[int, bool, int]:
        seen.add(threading.get_ident())
        return x * x, torch.is_grad_enabled(), torch.get_num_threads()

    results = map_in_threads(square, list(range(40)), workers=3)
    assert [r[0] for r in results] == [x * x for x in range(40)]
    assert not any(r[1] for r in results)  # no gradients in the workers
    assert all(r[2] == 1 for r in results)  # one torch thread each while they run
    assert threading.get_ident() not in seen
    assert torch.get_num_threads() == torch_threads
    serial = map_in_threads(square, [2, 3], workers=1)  # one worker: the calling thread
    assert [r[0] for r in serial] == [4, 9] and not serial[0][1]
    assert map_in_threads(square, [], workers=2) == []
