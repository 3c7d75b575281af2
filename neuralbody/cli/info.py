"""``neuralbody info DATA``: what a capture holds, as a table, and a contact sheet of one frame.

The capture is checked as ``neuralbody check`` does, but images and masks only in the sampled
frames (body files and camera views in every frame); problems found are listed under the
table and make the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from neuralbody.data.capture import read_capture
from neuralbody.data.contact_sheet import make_contact_sheet
from neuralbody.data.images import write_png
from neuralbody.data.summary import CaptureSummary
from neuralbody.io.paths import require_file_path

HELP = "describe a capture (cameras, frames, body data, masks) and write a contact sheet of its views"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="capture folder in ZJU-MoCap layout (holds annots.npy)")
    parser.add_argument("--frame", type=int, default=0, help="frame index shown in the contact sheet (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="contact-sheet PNG (default DATA/contact_sheet.png)")
    parser.add_argument("--scale", type=float, default=1.0, help="image scale to read the capture at (default 1)")
    parser.add_argument("--tile-size", type=int, default=256, help="contact-sheet tile side in pixels (default 256)")
    parser.add_argument("--sample-frames", type=int, default=3, help="frames sampled for mask coverage (default 3)")
    parser.add_argument("--no-sheet", action="store_true", help="print the table only")


def _short(value, limit: int = 90) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _presence(present: bool, kind: str, summary: CaptureSummary, text: str = "yes") -> str:
    if kind in summary.problems and any(p.severity == "error" for p in summary.problems[kind]):
        return "damaged (see problems)"
    return text if present else "no"


def format_summary(summary: CaptureSummary) -> str:
    """The summary as a plain-text table (what ``neuralbody info`` prints), then the problems found."""
    vertices = str(summary.vertex_count)
    lines = [
        f"capture      {summary.root}",
        f"frames       {summary.num_frames} (on-disk numbers {summary.frame_ids[0]}..{summary.frame_ids[1]})",
        f"views        {summary.num_views}" + (f" (read at scale {summary.scale:g})" if summary.scale != 1.0 else ""),
        f"body         vertices: {_presence(summary.vertex_count is not None, 'vertices', summary, vertices)}, "
        f"params: {_presence(summary.has_params, 'params', summary)}",
        f"masks        {_presence(summary.has_masks, 'masks', summary)} "
        f"(coverage over frames {', '.join(str(f) for f in summary.sampled_frames)})",
        "",
    ]
    name_width = max(6, *(len(v.name) for v in summary.views))
    gains = any(view.colour_gain != (1.0, 1.0, 1.0) for view in summary.views)
    header = f"{'#':>3}  {'camera':<{name_width}}  {'size':>11}  {'fx':>8}  {'fy':>8}  {'dist (m)':>8}  {'mask %':>6}"
    header += f"  {'colour gain R/G/B':>17}" if gains else ""
    lines += [header, "-" * len(header)]
    for index, view in enumerate(summary.views):
        distance = f"{view.distance:8.3f}" if view.distance is not None else f"{'-':>8}"
        coverage = f"{100 * view.mask_coverage:6.1f}" if view.mask_coverage is not None else f"{'-':>6}"
        gain = f"  {' '.join(f'{g:.3f}' for g in view.colour_gain):>17}" if gains else ""
        lines.append(
            f"{index:>3}  {view.name:<{name_width}}  {f'{view.width}x{view.height}':>11}  "
            f"{view.focal[0]:8.1f}  {view.focal[1]:8.1f}  {distance}  {coverage}{gain}"
        )
    if summary.meta_extras:
        lines += ["", "neuralbody.json:"]
        key_width = max(len(k) for k in summary.meta_extras)
        for key in sorted(summary.meta_extras):
            lines.append(f"  {key:<{key_width}}  {_short(summary.meta_extras[key])}")
    problems = [problem for found in summary.problems.values() for problem in found]
    if problems:
        frames = ", ".join(str(f) for f in summary.sampled_frames)
        lines += ["", f"problems (images and masks of frames {frames} read; `neuralbody check {summary.root}` "
                  "reads them all):"]  # fmt: skip
        lines += [f"  {problem.severity}: {problem}" for problem in problems]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = require_file_path(args.out, "--out") if args.out is not None else Path(args.data) / "contact_sheet.png"
    capture = read_capture(args.data, scale=args.scale)
    if not 0 <= args.frame < capture.num_frames:
        raise ValueError(f"--frame {args.frame} out of range: {args.data} has frames 0..{capture.num_frames - 1}")
    if args.sample_frames < 1:
        raise ValueError(f"--sample-frames must be >= 1, got {args.sample_frames}")
    summary = capture.summary(sample_frames=args.sample_frames)
    print(format_summary(summary))
    errors = sum(p.severity == "error" for found in summary.problems.values() for p in found)
    if errors:
        log.error("error: %s: %d problem%s (listed above)", args.data, errors, "s" * (errors > 1))
        return 1
    if not args.no_sheet:
        log.info("drawing the contact sheet of frame %d (%d views)", args.frame, capture.num_views)
        sheet = make_contact_sheet(capture, args.frame, tile_size=args.tile_size)
        write_png(out, sheet)
        print(f"\ncontact sheet ({sheet.shape[1]}x{sheet.shape[0]}, frame {args.frame}): {out}")
    return 0
