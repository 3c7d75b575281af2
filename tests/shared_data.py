"""Where the shared, read-only test data lives: the ``shared`` folder beside the checkout.

The repository root is the nearest folder above this file that holds ``pyproject.toml`` (so
this keeps working when the tests move into sub-folders); the data is ``<root>/../shared``.
Tests that need it skip cleanly when it is absent (a fresh clone, CI)::

    from shared_data import POSE2SIM_DEMO, needs_shared

    @needs_shared(POSE2SIM_DEMO / "videos")
    def test_real_capture(): ...
"""

from __future__ import annotations

from pathlib import Path

import pytest


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: this file's folder) holding ``pyproject.toml``."""
    here = (start or Path(__file__)).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"no pyproject.toml above {here}: the tests must run from a checkout of neuralbody")


SHARED = repository_root().parent / "shared"
POSE2SIM_DEMO = SHARED / "data" / "pose2sim-demo"  # 4 real cameras: videos/, calibration/Calib.qca.txt


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip the test unless ``path`` (a file or folder under :data:`SHARED`) exists."""
    try:
        shown = f"../shared/{path.relative_to(SHARED).as_posix()}"
    except ValueError:
        shown = str(path)
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared test data {shown} beside the checkout")
