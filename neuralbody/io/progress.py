"""Progress bars on the terminal: THE one way to show one, and the one switch that hides them all.

Every bar in the package is made by :func:`progress_bar`. A bar is shown only when its caller
asks for it (``enabled``, usually the ``progress`` argument of the function drawing it) and
progress is on in the current context. The context setting is a :class:`contextvars.ContextVar`,
on by default; :func:`progress_setting` changes it for the duration of a ``with`` block (the
``neuralbody`` command does so for ``--no-progress``), and a nested block can turn bars off but
never back on. Threads started inside the block do not inherit it (Python's rule for context
variables): draw bars from the thread that set it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator

from tqdm.auto import tqdm

_PROGRESS = contextvars.ContextVar("neuralbody_progress", default=True)


def progress_enabled() -> bool:
    """Whether progress bars are on in the current context (on unless :func:`progress_setting` turned them off)."""
    return _PROGRESS.get()


@contextlib.contextmanager
def progress_setting(enabled: bool) -> Iterator[None]:
    """Within the block, show progress bars only if ``enabled`` (and the enclosing context shows them).

    Args:
        enabled: False hides every bar made by :func:`progress_bar` inside the block; True keeps
            the enclosing setting (a block cannot turn on what an outer block turned off).
    """
    if not isinstance(enabled, bool):
        raise ValueError(f"progress_setting: enabled must be a bool, got {enabled!r}")
    token = _PROGRESS.set(_PROGRESS.get() and enabled)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **tqdm_options) -> tqdm:
    """A tqdm bar (on stderr) over ``iterable``, disabled unless ``enabled`` and :func:`progress_enabled`.

    Args:
        iterable: what to iterate over; None for a bar advanced by hand with ``update``.
        enabled: the caller's own switch (e.g. a ``progress`` argument).
        **tqdm_options: passed to tqdm (``desc``, ``total``, ``unit``, ``leave``, ``bar_format``...);
            a ``disable`` given here (``None``: only on a terminal) applies when the bar is on.
    """
    if not (enabled and progress_enabled()):
        tqdm_options["disable"] = True
    return tqdm(iterable, **tqdm_options)
