"""CSV training logs: one header, rows appended in order, read back as written."""

from __future__ import annotations

import csv

from neuralbody.io.csv_log import append_csv_row


def test_rows_append_under_one_header(tmp_path):
    path = tmp_path / "log.csv"
    fields = ("step", "loss")
    for step, loss in [(10, 0.5), (20, 0.25), (30, 0.125)]:
        append_csv_row(path, fields, {"step": step, "loss": loss})
    text = path.read_text().splitlines()
    assert text[0] == "step,loss" and len(text) == 4
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["step"]), float(r["loss"])) for r in rows] == [(10, 0.5), (20, 0.25), (30, 0.125)]
