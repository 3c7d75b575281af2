"""Parsing command-line values shared by several sub-commands (the library below takes lists)."""

from __future__ import annotations

import json

from neuralbody.io.errors import InputError


def _parse_range(part: str, limit: int, flag: str) -> range:
    """``"a:b"`` or ``"a:b:s"`` (a defaults to 0, b to ``limit``, s to 1) -> the range; never clamped."""
    pieces = [int(p) if p.strip() else None for p in part.split(":")]
    if len(pieces) > 3:
        raise ValueError(part)
    start, stop, step = (pieces + [None, None])[:3]
    start, stop, step = 0 if start is None else start, limit if stop is None else stop, 1 if step is None else step
    if step < 1 or not 0 <= start < stop <= limit:
        raise InputError(flag, f"range {part!r} is not within 0..{limit - 1} ({limit} available, ranges end exclusive)",
                         f"pass e.g. {flag} 0:{limit}")  # fmt: skip
    return range(start, stop, step)


def parse_index_list(text: str | None, *, limit: int, what: str) -> list[int] | None:
    """Indices from ``"0,2,4"``, ``"0:20"``, ``"0:20:2"`` or a mix (``"0,5:8"``); None for None.

    Every index must lie in ``0 .. limit - 1`` and every range end at most at ``limit``:
    nothing is clamped (``--frames 0:50`` on a 6-frame capture is an error naming the flag).

    Args:
        text: the option's value.
        limit: indices must lie in ``[0, limit)`` (e.g. the capture's frame or camera count).
        what: the option's name without dashes, for the error message.

    Raises:
        InputError: one line naming ``--what``, for text that is not indices or selects none,
            or an index or range outside ``[0, limit)``.
    """
    if text is None:
        return None
    flag, values = f"--{what}", []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.extend(_parse_range(part, limit, flag) if ":" in part else [int(part)])
        except ValueError as error:
            if isinstance(error, InputError):
                raise
            raise InputError(f"{flag} {text!r}", "expected indices like 0,2,4 or ranges like 0:20 or 0:20:2",
                             f"valid indices are 0..{limit - 1}") from None  # fmt: skip
    bad = [v for v in values if not 0 <= v < limit]
    if bad or not values:
        raise InputError(f"{flag} {text!r}", f"indices must lie in 0..{limit - 1} (got {bad or 'none'})",
                         f"{limit} available")  # fmt: skip
    return values


def parse_options(items: list[str], *, example: str = "voxel_size=0.008") -> dict:
    """``--option KEY=VALUE`` items -> a dict; each VALUE is read as JSON, else kept as a string.

    Raises:
        InputError: naming ``--option`` and the item when it has no ``=``.
    """
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--option {item!r}", "expected KEY=VALUE", f"e.g. --option {example}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def choose_views(args, capture, train_views: list[int]) -> list[int]:
    """Cameras a command renders: ``--all-views``, ``--view V``, else the first held-out camera.

    Args:
        args: the parsed arguments (``all_views``: bool, ``view``: int or None).
        capture: the capture (its ``num_views`` and ``meta``).
        train_views: the run's training cameras (not held out).
    """
    from neuralbody.evaluation.protocol import held_out_views

    if args.all_views:
        return list(range(capture.num_views))
    if args.view is not None:
        if not 0 <= args.view < capture.num_views:
            raise InputError(f"--view {args.view}", f"cameras are 0..{capture.num_views - 1}",
                             f"pass --view between 0 and {capture.num_views - 1}")  # fmt: skip
        return [args.view]
    held = held_out_views(capture.meta or {}, capture.num_views, train_views)
    return [held[0] if held else 0]


BUDGET_FLAGS = ("steps", "minutes", "cpu_minutes")
TIMED_STEPS_CAP = 10**9


def resume_budget(config, args) -> None:
    """On ``--resume``: the budget flags given now (``--steps``, ``--minutes``, ``--cpu-minutes``) replace
    the saved run configuration's."""
    for flag in BUDGET_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            setattr(config, flag, value)


def steps_for_budget(args, default: int | None = None) -> int | None:
    """``--steps`` as given; else, with a time budget alone (``--minutes`` / ``--cpu-minutes``), a cap of
    :data:`TIMED_STEPS_CAP` steps (no limit in practice); else ``default``."""
    if args.steps is not None:
        return args.steps
    timed = getattr(args, "minutes", None) is not None or getattr(args, "cpu_minutes", None) is not None
    return TIMED_STEPS_CAP if timed else default
