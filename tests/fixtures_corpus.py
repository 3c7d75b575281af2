"""Session-scoped corpus fixture (owned by the synth layer's corpus).

``tiny_corpus``: the path of a small multi-person corpus (:mod:`neuralbody.synth.corpus`) rendered
once per session from the ``anny_body`` fixture: 3 people (the last held out), 2 frames each (the
second in a held-out motion), 3 views, 48 x 48 pixels, 1500 occupancy samples a frame. Treat it
as read-only.
"""

from __future__ import annotations

import pytest

TINY_CORPUS = dict(subjects=3, frames=2, heldout_pose_frames=1, heldout_people=0.34, views=3, resolution=48, supersample=1)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, anny_body):
    """Path to a tiny corpus (3 people x 2 frames x 3 views, 48 x 48)."""
    from neuralbody.synth.corpus import CorpusConfig, generate_corpus
    from neuralbody.synth.occupancy import OccupancySampling

    root = tmp_path_factory.mktemp("tiny_corpus")
    config = CorpusConfig(**TINY_CORPUS, sampling=OccupancySampling(near=1200, uniform=300))
    return generate_corpus(root, config, body=anny_body, progress=False)
