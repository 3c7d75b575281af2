"""Initialise NVIDIA Warp once, quietly.

``wp.init`` is idempotent. Warp's info messages (greeting, kernel compile times) are hidden
through its log level. On a machine without a CUDA driver, the common case on laptops and CI,
Warp's native library writes ``Warp CUDA warning: Could not find or load the NVIDIA CUDA
driver`` straight to the process's stderr (file descriptor 2, below Python), on every command;
when PyTorch sees no CUDA device either, that one line is dropped (logged at debug level) and
anything else Warp wrote there is passed on to ``sys.stderr`` unchanged.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import torch
import warp as wp

log = logging.getLogger(__name__)

NO_DRIVER_MESSAGE = "Could not find or load the NVIDIA CUDA driver"


def init_warp() -> None:
    """Initialise Warp (idempotent): info messages hidden, warnings kept, the no-driver warning
    dropped where no CUDA device is expected."""
    if hasattr(wp, "LOG_WARNING"):
        wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
    else:  # pragma: no cover - warp < 1.10
        wp.config.quiet = True
    if torch.cuda.is_available():
        wp.init()
        return
    written = _stderr_of(wp.init)
    kept = [line for line in written.splitlines(keepends=True) if NO_DRIVER_MESSAGE not in line]
    if len(kept) < len(written.splitlines()):
        log.debug("Warp: no CUDA driver on this machine (CPU only)")
    if kept:
        sys.stderr.write("".join(kept))


def _stderr_of(function) -> str:
    """Run ``function()`` with file descriptor 2 sent to a temporary file; return what it wrote."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            function()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode("utf-8", errors="replace")
