"""A self-contained HTML report: renders beside ground truth, a metric table, loss curves.

No plotting library is needed: curves are drawn as inline SVG, images are referenced by
relative path so the report folder can be zipped and sent as it is.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from pathlib import Path

from neuralbody.io.atomic import atomic_write_text


@dataclasses.dataclass
class MetricRow:
    """One line of the metric table (PSNR in dB, SSIM in [0, 1], LPIPS lower is better)."""

    method: str
    split: str
    psnr_box: float
    ssim_box: float
    psnr_full: float
    ssim_full: float
    lpips: float | None = None
    images: int = 0


@dataclasses.dataclass
class Curve:
    """A training curve: ``x`` (seconds or steps) against ``y`` (e.g. PSNR in dB)."""

    label: str
    x: list[float]
    y: list[float]


@dataclasses.dataclass
class Figure:
    """An image in the report, path relative to the report's folder or absolute."""

    path: str
    caption: str


@dataclasses.dataclass
class Report:
    title: str
    summary_lines: list[str]
    metrics: list[MetricRow]
    figures: list[Figure]
    curves: list[Curve]
    curve_x_label: str = "training time (s)"
    curve_y_label: str = "training PSNR (dB)"
    facts: dict[str, str] = dataclasses.field(default_factory=dict)


_STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; } td:first-child, th:first-child, td:nth-child(2) { text-align: left; }
figure { display: inline-block; margin: 6px; vertical-align: top; } figure img { max-width: 520px; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; }
.summary li { margin: 0.2em 0; } code { background: #f3f3f3; padding: 1px 4px; }
"""


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def metric_table_html(rows: list[MetricRow]) -> str:
    head = (
        "<tr><th>method</th><th>split</th><th>images</th><th>PSNR box (dB)</th><th>SSIM box</th>"
        "<th>PSNR full (dB)</th><th>SSIM full</th><th>LPIPS</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(r.method)}</td><td>{html.escape(r.split)}</td><td>{r.images}</td>"
        f"<td>{_fmt(r.psnr_box, 2)}</td><td>{_fmt(r.ssim_box, 3)}</td><td>{_fmt(r.psnr_full, 2)}</td>"
        f"<td>{_fmt(r.ssim_full, 3)}</td><td>{_fmt(r.lpips, 3)}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def curves_svg(curves: list[Curve], *, x_label: str, y_label: str, width: int = 640, height: int = 300) -> str:
    """Line plot of several curves as an SVG string (linear axes, shared ranges)."""
    points = [(x, y) for c in curves for x, y in zip(c.x, c.y) if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return "<p>(no curve data)</p>"
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    y_min, y_max = min(p[1] for p in points), max(p[1] for p in points)
    x_max = x_max if x_max > x_min else x_min + 1
    y_max = y_max if y_max > y_min else y_min + 1
    left, right, top, bottom = 60, 20, 20, 45
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_min) / (x_max - x_min) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y_min) / (y_max - y_min)) * plot_h

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11">']
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for i in range(5):
        y = y_min + (y_max - y_min) * i / 4
        x = x_min + (x_max - x_min) * i / 4
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        parts.append(f'<text x="{sx(x):.1f}" y="{top + plot_h + 15}" text-anchor="middle">{x:.3g}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" transform="rotate(-90 14 {top + plot_h / 2})">'
        f"{html.escape(y_label)}</text>"
    )
    for index, curve in enumerate(curves):
        colour = colours[index % len(colours)]
        path = " ".join(
            f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(curve.x, curve.y) if math.isfinite(x) and math.isfinite(y)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(
            f'<text x="{left + 10}" y="{top + 15 + 14 * index}" fill="{colour}">{html.escape(curve.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def write_report(report: Report, path: str | os.PathLike) -> Path:
    """Write ``report`` as one HTML file at ``path`` (images referenced relative to it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in report.summary_lines)
    facts = "".join(
        f"<tr><td>{html.escape(k)}</td><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in report.facts.items()
    )
    figures = "".join(
        f'<figure><img src="{html.escape(_relative(f.path, path.parent))}" alt="{html.escape(f.caption)}">'
        f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
        for f in report.figures
    )
    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(report.title)}</h1>"
        f"<ul class='summary'>{summary}</ul>"
        f"<h2>Metrics (held-out cameras)</h2>{metric_table_html(report.metrics)}"
        "<p>PSNR box / SSIM box: Neural Body's protocol (pixels inside the projection of the body's 3D box; "
        "SSIM over its bounding rectangle). Full: the whole image.</p>"
        f"<h2>Training</h2>{curves_svg(report.curves, x_label=report.curve_x_label, y_label=report.curve_y_label)}"
        f"<h2>Renders beside ground truth</h2>{figures}"
        f"<h2>Run facts</h2><table>{facts}</table></body></html>"
    )
    return atomic_write_text(path, document)


def _relative(image_path: str, folder: Path) -> str:
    try:
        return os.path.relpath(image_path, folder)
    except ValueError:
        return str(image_path)
