"""``neuralbody info``: the table and the contact sheet."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from fake_zju import make_capture
from neuralbody.cli.main import main
from neuralbody.data.cameras import project_points
from neuralbody.data.capture import read_capture
from neuralbody.data.contact_sheet import DOT_RGB, OUTLINE_RGB, make_contact_sheet, sheet_layout


def test_info_prints_every_camera_and_writes_the_contact_sheet(tmp_path, capsys):
    fake = make_capture(tmp_path / "cap")
    (fake.root / "neuralbody.json").write_text(
        json.dumps({"held_out_cameras": ["Camera_B2", "Camera_B5"], "cameras": [f"Camera_B{k}" for k in range(1, 7)]})
    )
    assert main(["info", str(fake.root)]) == 0
    out = capsys.readouterr().out
    for k in range(1, 7):
        assert f"Camera_B{k}" in out
    assert "held_out_cameras" in out and "frames       3" in out and "vertices: 50" in out and "params: yes" in out
    sheet_path = fake.root / "contact_sheet.png"
    with Image.open(sheet_path) as sheet:
        assert sheet.size == (3 * 256, 2 * 256)  # 6 views: 3 columns, 2 rows


def test_info_table_shows_mask_coverage_and_distance(tmp_path, capsys):
    fake = make_capture(tmp_path / "cap", num_views=2, num_frames=1)
    assert main(["info", str(fake.root), "--no-sheet"]) == 0
    out = capsys.readouterr().out
    assert not (fake.root / "contact_sheet.png").exists()
    row = next(line for line in out.splitlines() if "Camera_B2" in line).split()
    coverage = 100 * fake.masks[0, 1].mean()
    assert float(row[-1]) == round(coverage, 1)
    centre = fake.vertices[0].mean(axis=0)
    distance = np.linalg.norm(-fake.R[1].T @ fake.T_mm[1].reshape(3) / 1000.0 - centre)
    assert abs(float(row[-2]) - distance) < 1e-3


def test_info_frame_and_out_options(tmp_path, capsys):
    fake = make_capture(tmp_path / "cap", num_views=5)
    out_path = tmp_path / "sheets" / "f2.png"
    assert main(["info", str(fake.root), "--frame", "2", "--out", str(out_path), "--tile-size", "64"]) == 0
    with Image.open(out_path) as sheet:
        assert sheet.size == (3 * 64, 2 * 64)  # 5 views: 3 columns, 2 rows (one empty tile)
    assert main(["info", str(fake.root), "--frame", "3"]) == 1  # out of range: an error, no traceback
    assert main(["info", str(tmp_path / "nowhere")]) == 1


def test_contact_sheet_tiles_show_outline_dots_and_images(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=1, num_vertices=400)
    capture = read_capture(fake.root)
    sheet = make_contact_sheet(capture, 0, tile_size=80)
    assert sheet.shape == (160, 160, 3) and sheet_layout(4, tile_size=80).size == (160, 160)
    for view in range(4):
        row, col = divmod(view, 2)
        tile = sheet[row * 80 : (row + 1) * 80, col * 80 : (col + 1) * 80]
        assert np.all(tile == OUTLINE_RGB, axis=2).sum() > 20, view
        assert np.all(tile == DOT_RGB, axis=2).sum() > 20, view
        # the image fills the tile's width (40x32 -> 80x64, centred): the letterbox rows are background
        assert np.all(tile[-8:] == 24)  # (the top band holds the label)
        # every vertex lands where its projection says: pixel u -> (u + 0.5) * 2 - 0.5, 8 rows down
        uv, depth = project_points(capture.cameras[view], fake.vertices[0].astype(np.float64))
        cols = np.round((uv[:, 0] + 0.5) * 2 - 0.5).astype(int)
        rows = np.round((uv[:, 1] + 0.5) * 2 - 0.5).astype(int) + 8
        inside = (depth > 0) & (cols >= 0) & (cols < 80) & (rows >= 8) & (rows < 72) & (rows >= 20)  # below the label
        assert inside.sum() > 100
        assert np.all(tile[rows[inside], cols[inside]] == DOT_RGB)
        centre_pixel = tile[40, 70]  # right of the mask and the dots: the image itself
        expected = np.round(capture.load_image(0, view)[15:17, 35].mean(axis=0) * 255)
        assert np.abs(centre_pixel.astype(float) - expected).max() <= 6
