"""The HTML report: the table carries the numbers, the SVG curve maps data to pixels."""

import re

from neuralbody.evaluation.report import Curve, Figure, MetricRow, Report, curves_svg, write_report


def test_report_contains_metrics_figures_and_curve(tmp_path):
    image = tmp_path / "imgs" / "a.png"
    image.parent.mkdir()
    image.write_bytes(b"\x89PNG")
    report = Report(
        title="demo",
        summary_lines=["trained 5 minutes"],
        metrics=[MetricRow("Neural Body", "novel view", 27.346, 0.9512, 33.1, 0.97, None, 12)],
        figures=[Figure(str(image), "render | ground truth")],
        curves=[Curve("Neural Body", [0, 10, 20], [10, 20, 25])],
        facts={"capture": "x"},
    )
    out = write_report(report, tmp_path / "report.html")
    text = out.read_text()
    assert "27.35" in text and "0.951" in text and "–" in text  # LPIPS missing shows a dash
    assert 'src="imgs/a.png"' in text  # relative to the report
    assert not (tmp_path / "report.html.tmp").exists()


def test_curve_svg_maps_extremes_to_plot_corners():
    svg = curves_svg([Curve("c", [0.0, 5.0, 10.0], [1.0, 2.0, 3.0])], x_label="t", y_label="y", width=200, height=100)
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    xy = [tuple(map(float, p.split(","))) for p in points]
    # left=60, right margin 20 -> x in [60, 180]; top=20, bottom margin 45 -> y in [20, 55]
    assert xy[0] == (60.0, 55.0)
    assert xy[-1] == (180.0, 20.0)
    assert xy[1] == (120.0, 37.5)


def test_curve_svg_without_data():
    assert "no curve data" in curves_svg([], x_label="t", y_label="y")
