"""User-facing input errors: one line naming the file (or frame, or argument), what is wrong and the fix.

Loaders turn low-level failures (an undecodable image, a truncated checkpoint, invalid JSON,
a refused pickle) into :class:`InputError` at their boundary; ``neuralbody`` prints its
message as one line and exits non-zero. Checks that find several things wrong at once
collect :class:`Problem` records (``neuralbody check`` prints each on its own line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

SEVERITIES = ("error", "warning")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    Attributes:
        subject: the file (its path as text), or what else is wrong ("frame 3", "--frames").
        problem: what is wrong.
        fix: what to do about it ("" when obvious).
        severity: "error" (unusable as is) or "warning" (usable, but probably not meant so).
    """

    subject: str
    problem: str
    fix: str = ""
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Problem severity must be one of {SEVERITIES}, got {self.severity!r}")

    def __str__(self) -> str:
        text = f"{self.subject}: {self.problem}"
        return one_line(f"{text}; {self.fix}" if self.fix else text)


class InputError(ValueError):
    """Bad user input (a data file or an argument), as one line: ``subject: problem; fix``.

    A ValueError, so code that handles ValueError keeps working. ``problems`` holds every
    :class:`Problem` behind the error (one for a plain error; several from
    :meth:`from_problems`, whose message shows the first and counts the rest).
    """

    def __init__(self, subject: object, problem: str, fix: str = "") -> None:
        self.problems: tuple[Problem, ...] = (Problem(str(subject), problem, fix),)
        super().__init__(str(self.problems[0]))

    @classmethod
    def from_problems(cls, problems: Iterable[Problem], *, more: str = "") -> "InputError":
        """One error for several problems: the first in full, then how many more (and ``more``, a hint)."""
        problems = tuple(problems)
        if not problems:
            raise ValueError("InputError.from_problems needs at least one problem")
        first = problems[0]
        error = cls(first.subject, first.problem, first.fix)
        error.problems = problems
        if len(problems) > 1:
            extra = f" ({len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}"
            error.args = (str(first) + extra + (f"; {more})" if more else ")"),)
        return error


def one_line(text: object) -> str:
    """``text`` with its lines joined by "; " (blank lines dropped), for one-line messages."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())
