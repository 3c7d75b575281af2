"""Shared test configuration.

Tests mirror the package: ``tests/<package>/test_*.py`` for ``neuralbody/<package>/``, and
``tests/test_<module>.py`` for a top-level module. Helpers shared by several folders stay here
(``fake_zju``, ``toy_fields``, ``shared_data``). Expensive fixtures are session-scoped and
live in one module per layer, loaded here as plugins: ``fixtures_body`` (the Anny model, built
once per machine and loaded once per session) and ``fixtures_capture`` (a tiny synthetic
capture, made once per session) and ``fixtures_corpus`` (a tiny multi-person corpus).
"""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("WARP_CACHE_PATH", os.path.join(os.path.expanduser("~"), ".cache", "warp"))

pytest_plugins = ["fixtures_body", "fixtures_capture", "fixtures_corpus"]

# Tests mirror the package (tests/<package>/test_*.py); some reuse another folder's helpers
# (``from test_eval_protocol import _hand_made_run``), so every folder is importable.
_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(folder) for folder in sorted(_HERE.iterdir()) if folder.is_dir() and folder.name.isidentifier()]


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one torch thread is faster, and immune to OpenMP spinning on a busy machine
    (``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` in a module that wants it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
