"""Parsing command-line values shared by several sub-commands (the library below takes lists)."""

from __future__ import annotations


def parse_index_list(text: str | None, *, limit: int, what: str) -> list[int] | None:
    """Indices from ``"0,2,4"``, ``"0:20"``, ``"0:20:2"`` or a mix (``"0,5:8"``); None for None.

    Slices follow Python's over ``range(limit)`` (``":"`` is all, ``"-3:"`` the last three).

    Args:
        text: the option's value.
        limit: indices must lie in ``[0, limit)`` (e.g. the capture's frame or camera count).
        what: the option's name without dashes, for the error message.

    Raises:
        ValueError: one line naming ``--what``, for text that is not indices or selects none,
            or an index outside ``[0, limit)``.
    """
    if text is None:
        return None
    values: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                pieces = [int(p) if p.strip() else None for p in part.split(":")]
                if len(pieces) > 3:
                    raise ValueError(part)
                values.extend(range(limit)[slice(*pieces)])
            else:
                values.append(int(part))
        except ValueError:
            raise ValueError(f"--{what} {text!r}: expected indices like 0,2,4 or 0:20 or 0:20:2") from None
    bad = [v for v in values if not 0 <= v < limit]
    if bad or not values:
        raise ValueError(f"--{what} {text!r}: indices must lie in [0, {limit}) (got {bad or 'none'})")
    return values
