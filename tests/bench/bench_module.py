"""Loading a script of bench/ as a module for its tests."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"  # tests/bench/ -> the repository root


@contextlib.contextmanager
def bench_module(name: str):
    """``bench/NAME.py`` imported as the module ``NAME`` for the duration (dataclasses look their module up
    in ``sys.modules``, so it is registered there, and removed after)."""
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
