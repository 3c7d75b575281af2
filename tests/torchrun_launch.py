"""Launching a script on two CPU ranks with torchrun, for the data-parallel tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def launch_two_ranks(args: list[str], *, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node 2 ARGS`` with one thread per rank and
    this checkout first on the path; asserts it succeeded (its output's tail in the message)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NEURALBODY_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
