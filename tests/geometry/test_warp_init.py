"""Warp initialisation: quiet on CPU-only machines, other native messages passed on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neuralbody.geometry import warp_init

ROOT = Path(__file__).resolve().parents[2]


def test_stderr_of_captures_what_native_code_writes_to_descriptor_2(capfd):
    def native_like():
        os.write(2, b"first line\n")
        os.write(2, f"Warp CUDA warning: {warp_init.NO_DRIVER_MESSAGE}. GPU execution will not be available.\n".encode())

    written = warp_init._stderr_of(native_like)
    assert written.splitlines()[0] == "first line"
    assert warp_init.NO_DRIVER_MESSAGE in written.splitlines()[1]
    os.write(2, b"after\n")  # descriptor 2 is restored
    assert capfd.readouterr().err == "after\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the warning is only dropped where PyTorch sees no CUDA device")
def test_a_command_on_a_cpu_machine_prints_no_cuda_warning():
    code = ("from neuralbody.geometry.warp_init import init_warp; init_warp(); init_warp(); "
            "import warp as wp; print(wp.is_cpu_available())")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert "CUDA warning" not in result.stderr
