"""The demo end to end at toy size: every stage runs and the report carries real numbers."""

import json
import re

import pytest

from neuralbody.cli.main import main


@pytest.mark.slow
@pytest.mark.anny
def test_demo_runs_every_stage_and_reports(tmp_path, anny_body, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--res", "64", "--frames", "6", "--views", "6", "--minutes", "0.05",
            "--eval-frames", "1", "--orbit", "2", "--no-progress"]
    assert main(argv) == 0
    report = (out / "report.html").read_text()
    for kind in ("neuralbody", "frame_nerf"):
        metrics = json.loads((out / "runs" / kind / "eval" / "metrics.json").read_text())
        psnr = metrics["novel_view"]["means"]["psnr_box"]
        assert 0 < psnr < 60
        assert f"{psnr:.2f}" in report  # the table shows the evaluated figure
    assert list((out / "orbit").glob("*.gif"))
    mesh = json.loads((out / "mesh" / "neuralbody.json").read_text())
    assert mesh["volumetric_iou"] >= 0
    assert re.search(r"<polyline[^>]+points=\"[0-9]", report)  # a loss curve was drawn
    printed = capsys.readouterr().out
    assert "report:" in printed and str(out / "report.html") in printed

    # a second run reuses the capture and the finished runs instead of starting over
    metrics_path = out / "runs" / "neuralbody" / "eval" / "metrics.json"
    annots_mtime = (out / "capture" / "annots.npy").stat().st_mtime_ns
    first_step = json.loads(metrics_path.read_text())["step"]
    assert first_step >= 1
    assert main(argv) == 0
    assert (out / "capture" / "annots.npy").stat().st_mtime_ns == annots_mtime
    assert json.loads(metrics_path.read_text())["step"] == first_step  # the budget was spent: no extra steps
