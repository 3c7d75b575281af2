"""Parsing command-line values shared by several sub-commands (the library below takes lists)."""

from __future__ import annotations

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
