"""Session-scoped body-model fixtures (owned by the body layer).

``anny_body``: :func:`neuralbody.body.anny.load_anny` (float32, CPU), so a session pays
Anny's one-time cache build at most once and its load once. Tests that use it are marked
``@pytest.mark.anny``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anny_body():
    """The default Anny body model (float32, CPU), loaded once per session."""
    pytest.importorskip("anny")
    from neuralbody.body.anny import load_anny

    return load_anny()
