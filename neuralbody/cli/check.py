"""``neuralbody check DATA``: read every file of a capture and list every problem, one line each.

Reads ``annots.npy`` (safe unpickling, image paths inside the capture, cameras), decodes every
image and mask completely, reads every ``params`` and ``vertices`` file, and projects each
frame's body centre into every camera (see :mod:`neuralbody.data.checks`). Prints one line per
problem (``error:`` / ``warning:``, the file, what is wrong, the fix); exit status 1 when any
error was found, else 0 with a short summary.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "read every file of a capture (images, masks, body fits, cameras) and list every problem"

log = logging.getLogger("neuralbody.check")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder in ZJU-MoCap layout (holds annots.npy)")


def run(args: argparse.Namespace) -> int:
    from neuralbody.data.checks import check_capture_folder

    report = check_capture_folder(args.data, progress=not args.no_progress)
    for problem in report.problems:
        print(f"{problem.severity}: {problem}")
    errors, warnings = len(report.errors), len(report.warnings)
    if errors:
        log.error("error: %s: %d problem%s%s (listed above)", args.data, errors, "s" * (errors > 1),
                  f" and {warnings} warning{'s' * (warnings > 1)}" if warnings else "")  # fmt: skip
        return 1
    body = f", {report.vertex_count} vertices a frame" if report.vertex_count is not None else ", no vertices"
    print(f"OK: {args.data}: {report.num_frames} frames x {report.num_views} views read{body}"
          + (f" ({warnings} warning{'s' * (warnings > 1)} above)" if warnings else ""))  # fmt: skip
    return 0
