"""Session-scoped synthetic-capture fixtures (owned by the synth layer).

``tiny_capture``: the path of a small synthetic capture in ZJU-MoCap layout, rendered once
per session from the ``anny_body`` fixture: 6 cameras (train 0, 2, 3, 4 ... see
``neuralbody.json``), 8 frames, 64 x 64 pixels, lens distortion ON, seed 0, 'sway' motion.
Treat it as read-only; copy it if a test must modify it.
"""

from __future__ import annotations

import pytest

TINY_CAPTURE = dict(frames=8, views=6, resolution=64, motion="sway", seed=0, distortion=True)


@pytest.fixture(scope="session")
def tiny_capture(tmp_path_factory, anny_body):
    """Path to a tiny synthetic capture (6 views, 8 frames, 64 x 64, distortion on, seed 0)."""
    from neuralbody.synth.generate import SynthConfig, generate_capture

    root = tmp_path_factory.mktemp("tiny_capture")
    return generate_capture(root, SynthConfig(**TINY_CAPTURE), body=anny_body, progress=False)
