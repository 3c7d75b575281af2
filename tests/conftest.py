"""Shared test configuration.

Expensive fixtures are session-scoped and live in one module per layer, loaded here as
plugins: ``fixtures_body`` (the Anny model, built once per machine and loaded once per
session), ``fixtures_capture`` (a tiny synthetic capture, made once per session) and
``fixtures_corpus`` (a tiny multi-person corpus, made once per session).
"""

import os

os.environ.setdefault("WARP_CACHE_PATH", os.path.join(os.path.expanduser("~"), ".cache", "warp"))

pytest_plugins = ["fixtures_body", "fixtures_capture", "fixtures_corpus"]
