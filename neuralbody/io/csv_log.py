"""Training logs as CSV files: one row appended per logged step."""

from __future__ import annotations

import csv
from pathlib import Path


def append_csv_row(path: Path, fields: tuple[str, ...], row: dict) -> None:
    """Append ``row`` (keys: ``fields``) to the CSV file ``path``, writing the header first when
    the file is new. A log grows row by row (a crash loses at most the row being written); runs
    that resume trim it to their checkpoint's step (``training.trainer``)."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)
