"""A contact sheet: every view of one frame on a grid, labelled, with mask outlines and body vertices.

Layout: ``cols = ceil(sqrt(V))`` tiles a row, ``rows = ceil(V / cols)``; each tile is
``tile_size`` x ``tile_size`` pixels with the view's image fitted inside (aspect kept,
centred, dark background). Overlays: the mask's outline (pixels inside the mask with an
outside 4-neighbour at tile resolution) in green, the projected body vertices as red one-pixel dots
(at most ``max_dots`` of them, distortion included), and the camera name at the top-left.
A tile's pixel ``u_t`` shows image pixel ``u`` with ``u_t = (u + 0.5) s - 0.5 + offset``
where ``s`` is the fitting scale (pixel-centre convention).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import binary_erosion

from neuralbody.data.cameras import project_points
from neuralbody.data.capture import Capture
from neuralbody.data.images import resize_image, resize_mask

OUTLINE_RGB = np.array([0, 255, 0], dtype=np.uint8)
DOT_RGB = np.array([255, 40, 40], dtype=np.uint8)
BACKGROUND_RGB = (24, 24, 24)


@dataclasses.dataclass(frozen=True)
class SheetLayout:
    """Grid geometry of a contact sheet: ``rows`` x ``cols`` tiles of ``tile_size`` pixels."""

    rows: int
    cols: int
    tile_size: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the sheet in pixels."""
        return self.cols * self.tile_size, self.rows * self.tile_size


def sheet_layout(num_views: int, *, tile_size: int = 256) -> SheetLayout:
    """The grid for ``num_views`` tiles (as square as possible, filled row by row)."""
    if num_views <= 0 or tile_size < 16:
        raise ValueError(f"need at least one view and tile_size >= 16, got {num_views} views, tile_size {tile_size}")
    cols = math.ceil(math.sqrt(num_views))
    return SheetLayout(rows=math.ceil(num_views / cols), cols=cols, tile_size=tile_size)


def _tile(
    capture: Capture, *, frame: int, view: int, tile_size: int, vertices: np.ndarray | None, max_dots: int
) -> np.ndarray:
    """(tile_size, tile_size, 3) uint8 tile of one view; vertices: (V, 3) world, metres, or None."""
    camera = capture.cameras[view]
    fit = min(tile_size / camera.width, tile_size / camera.height)
    width, height = max(1, round(camera.width * fit)), max(1, round(camera.height * fit))
    left, top = (tile_size - width) // 2, (tile_size - height) // 2
    tile = np.empty((tile_size, tile_size, 3), dtype=np.uint8)
    tile[:] = BACKGROUND_RGB
    image = resize_image(capture.load_image(frame, view), (width, height))
    region = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if capture.mask_path(frame, view) is not None:
        mask = resize_mask(capture.load_mask(frame, view), (width, height))
        outline = mask & ~binary_erosion(mask, border_value=0)
        region[outline] = OUTLINE_RGB
    tile[top : top + height, left : left + width] = region
    if vertices is not None and len(vertices):
        if len(vertices) > max_dots:  # a fixed random subset: even coverage whatever the vertex order
            vertices = vertices[np.random.default_rng(0).choice(len(vertices), max_dots, replace=False)]
        uv, depth = project_points(camera, vertices)
        uv = (uv + 0.5) * (width / camera.width) - 0.5
        cols, rows = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        keep = (depth > 0) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        tile[rows[keep] + top, cols[keep] + left] = DOT_RGB
    return tile


def make_contact_sheet(capture: Capture, frame: int = 0, *, tile_size: int = 256, max_dots: int = 800) -> np.ndarray:
    """All views of one frame on a labelled grid: (rows * tile_size, cols * tile_size, 3) uint8.

    Args:
        capture: the capture (images read at its scale, then fitted to the tiles).
        frame: frame index, 0 .. num_frames - 1.
        tile_size: tile side, pixels.
        max_dots: at most this many body vertices are drawn a view.
    """
    if not 0 <= frame < capture.num_frames:
        raise ValueError(f"frame {frame} out of range: {capture.root} has frames 0..{capture.num_frames - 1}")
    layout = sheet_layout(capture.num_views, tile_size=tile_size)
    vertices = capture.load_vertices(frame).astype(np.float64) if capture.vertices_path(frame).is_file() else None
    width, height = layout.size
    sheet = np.empty((height, width, 3), dtype=np.uint8)
    sheet[:] = BACKGROUND_RGB
    for view in range(capture.num_views):
        row, col = divmod(view, layout.cols)
        sheet[row * tile_size : (row + 1) * tile_size, col * tile_size : (col + 1) * tile_size] = _tile(
            capture, frame=frame, view=view, tile_size=tile_size, vertices=vertices, max_dots=max_dots
        )
    canvas = Image.fromarray(sheet)
    draw = ImageDraw.Draw(canvas)
    for view, name in enumerate(capture.camera_names):
        row, col = divmod(view, layout.cols)
        x, y = col * tile_size + 3, row * tile_size + 3
        label = f"{view}: {name}"
        box = draw.textbbox((x, y), label)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((x, y), label, fill=(255, 255, 255))
    return np.asarray(canvas)
