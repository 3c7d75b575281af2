"""Reading captures in ZJU-MoCap layout: values, numbering variants, masks, scaling, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fake_zju import HEIGHT, WIDTH, make_capture, rewrite_annots
from neuralbody.data.cameras import project_points
from neuralbody.data.capture import read_capture
from neuralbody.data.images import read_image, read_mask, resize_image, resize_mask, write_png
from neuralbody.models.base import FrameBody


def test_standard_layout_reads_back_what_was_written(tmp_path):
    fake = make_capture(tmp_path / "cap")
    capture = read_capture(fake.root)
    assert capture.num_views == 6 and capture.num_frames == 3
    assert capture.camera_names == [f"Camera_B{k}" for k in range(1, 7)]
    assert capture.frame_ids == [0, 1, 2] and capture.frame_offset == 0
    assert capture.meta == {}
    for view, camera in enumerate(capture.cameras):
        np.testing.assert_array_equal(camera.K, fake.K[view])
        np.testing.assert_array_equal(camera.R, fake.R[view])
        np.testing.assert_array_equal(camera.T, fake.T_mm[view].reshape(3) / 1000.0)
        np.testing.assert_array_equal(camera.D, fake.D[view].reshape(5))
        assert (camera.width, camera.height) == (WIDTH, HEIGHT)
    for (frame, view), written in fake.images.items():
        assert capture.image_path(frame, view) == fake.root / fake.image_relpaths[frame][view]
        image = capture.load_image(frame, view)
        assert image.dtype == np.float32 and image.shape == (HEIGHT, WIDTH, 3)
        assert np.abs(image * 255 - written).max() <= 4  # JPEG, smooth content
        assert capture.mask_path(frame, view) == fake.root / "mask_cihp" / fake.image_relpaths[frame][view].replace(
            ".jpg", ".png"
        )
        np.testing.assert_array_equal(capture.load_mask(frame, view), fake.masks[frame, view])
    for frame in range(3):
        np.testing.assert_array_equal(capture.load_vertices(frame), fake.vertices[frame])
        params = capture.load_params(frame)
        assert set(params) == {"poses", "Rh", "Th", "shapes"}
        np.testing.assert_array_equal(params["poses"], fake.params[frame]["poses"])
        body = capture.load_body(frame)
        assert isinstance(body, FrameBody) and body.vertices.dtype == torch.float32 and body.Rh.shape == (3,)
        np.testing.assert_array_equal(body.Rh.numpy(), fake.params[frame]["Rh"].reshape(3))
        np.testing.assert_array_equal(body.Th.numpy(), fake.params[frame]["Th"].reshape(3))


def test_camera_centres_are_in_metres(tmp_path):
    fake = make_capture(tmp_path / "cap")
    capture = read_capture(fake.root)
    for view, camera in enumerate(capture.cameras):
        assert np.linalg.norm(camera.center[:2]) == pytest.approx(3.0)
        assert camera.center[2] == pytest.approx(1.2 + 0.1 * view)
        # the person (around z = 1 at the origin) is in front of every camera and in the image
        uv, depth = project_points(camera, np.array([[0.0, 0.0, 1.0]]))
        assert depth[0] > 2.5 and 0 <= uv[0, 0] < WIDTH and 0 <= uv[0, 1] < HEIGHT


def test_scale_halves_images_masks_and_intrinsics(tmp_path):
    fake = make_capture(tmp_path / "cap", num_frames=1)
    full, half = read_capture(fake.root), read_capture(fake.root, scale=0.5)
    for view in range(6):
        assert (half.cameras[view].width, half.cameras[view].height) == (WIDTH // 2, HEIGHT // 2)
        np.testing.assert_allclose(half.cameras[view].K[:2, :2], full.cameras[view].K[:2, :2] / 2)
        image, small = full.load_image(0, view), half.load_image(0, view)
        assert small.shape == (HEIGHT // 2, WIDTH // 2, 3)
        np.testing.assert_allclose(small, image.reshape(HEIGHT // 2, 2, WIDTH // 2, 2, 3).mean(axis=(1, 3)), atol=1e-6)
        np.testing.assert_array_equal(half.load_mask(0, view), full.load_mask(0, view)[1::2, 1::2])


def test_zju_313_numbering_and_mask_folder(tmp_path):
    fake = make_capture(tmp_path / "313", style="313")
    capture = read_capture(fake.root)
    assert capture.camera_names == [f"Camera ({k})" for k in range(1, 7)]
    assert capture.frame_offset == 1 and capture.frame_ids == [1, 2, 3]
    np.testing.assert_array_equal(capture.cameras[2].T, fake.T_mm[2] / 1000.0)
    for frame in range(3):
        np.testing.assert_array_equal(capture.load_vertices(frame), fake.vertices[frame + 1])
        np.testing.assert_array_equal(capture.load_params(frame)["shapes"], fake.params[frame + 1]["shapes"])
        path = capture.mask_path(frame, 4)
        assert path.parent == fake.root / "mask" / "Camera (5)"
        assert path.name == f"CoreView_313_Camera_(5)_{frame + 1:04d}_2019-08-23_16-08-50.592.png"
        np.testing.assert_array_equal(capture.load_mask(frame, 4), fake.masks[frame, 4])
    assert "Camera (1)/CoreView_313_Camera_(1)_0001_" in str(capture.image_path(0, 0))


def test_mask_lookup_order_and_extension_variants(tmp_path):
    fake = make_capture(tmp_path / "cap", num_frames=1)
    rel = fake.image_relpaths[0][5]  # Camera_B6/000000.jpg
    cihp_png = fake.root / "mask_cihp" / rel.replace(".jpg", ".png")
    other = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    other[:4, :4] = 1  # any non-zero value is the person
    # a mask under mask/ only is found there
    (fake.root / "mask" / rel).parent.mkdir(parents=True)
    cihp_png.rename(fake.root / "mask" / rel.replace(".jpg", ".png"))
    assert read_capture(fake.root).mask_path(0, 5) == fake.root / "mask" / rel.replace(".jpg", ".png")
    # the image's own extension is looked up too (mask_cihp before mask)
    Image.fromarray(other).save(fake.root / "mask_cihp" / rel, format="PNG")
    capture = read_capture(fake.root)
    assert capture.mask_path(0, 5) == fake.root / "mask_cihp" / rel
    np.testing.assert_array_equal(capture.load_mask(0, 5), other != 0)
    # no mask at all: None, and loading names every place looked at
    (fake.root / "mask_cihp" / rel).unlink()
    (fake.root / "mask" / rel.replace(".jpg", ".png")).unlink()
    assert capture.mask_path(0, 5) is None
    with pytest.raises(FileNotFoundError, match="mask/Camera_B6/000000.png"):
        capture.load_mask(0, 5)


def test_without_params_the_body_frame_is_centred_on_the_vertices(tmp_path):
    fake = make_capture(tmp_path / "cap", with_params=False)
    capture = read_capture(fake.root)
    assert not capture.has_params and capture.has_vertices and capture.load_params(1) is None
    body = capture.load_body(1)
    np.testing.assert_array_equal(body.Rh.numpy(), np.zeros(3))
    np.testing.assert_allclose(body.Th.numpy(), fake.vertices[1].mean(axis=0), atol=1e-6)


def test_meta_frame_offset_overrides_detection(tmp_path):
    fake = make_capture(tmp_path / "cap", num_frames=3)
    np.save(fake.root / "vertices" / "3.npy", np.zeros((50, 3), dtype=np.float32))
    (fake.root / "neuralbody.json").write_text(json.dumps({"frame_offset": 1, "held_out_cameras": [1, 2]}))
    capture = read_capture(fake.root)
    assert capture.frame_ids == [1, 2, 3] and capture.meta["held_out_cameras"] == [1, 2]
    np.testing.assert_array_equal(capture.load_vertices(0), fake.vertices[1])
    np.testing.assert_array_equal(capture.load_vertices(2), np.zeros((50, 3)))


def test_summary_reports_what_exists(tmp_path):
    fake = make_capture(tmp_path / "cap", num_vertices=37)
    summary = read_capture(fake.root).summary(sample_frames=2)
    assert summary.num_views == 6 and summary.num_frames == 3 and summary.sampled_frames == [0, 2]
    assert summary.vertex_count == 37 and summary.has_params and summary.has_masks and summary.frame_ids == (0, 2)
    centre = fake.vertices[0].mean(axis=0)
    for view, row in enumerate(summary.views):
        assert (row.name, row.width, row.height) == (f"Camera_B{view + 1}", WIDTH, HEIGHT)
        assert row.focal == (45.0 + view, 46.0 + view)
        expected = np.mean([fake.masks[f, view].mean() for f in (0, 2)])
        assert row.mask_coverage == pytest.approx(expected)
        center = -fake.R[view].T @ fake.T_mm[view].reshape(3) / 1000.0
        assert row.distance == pytest.approx(np.linalg.norm(center - centre))
    bare = make_capture(tmp_path / "bare", with_params=False, with_vertices=False)
    shutil.rmtree(bare.root / "mask_cihp")
    summary = read_capture(bare.root).summary()
    assert summary.vertex_count is None and not summary.has_params and not summary.has_masks
    assert all(row.distance is None and row.mask_coverage is None for row in summary.views)


def test_missing_annots_is_not_a_capture_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a ZJU-MoCap capture folder: .*annots\.npy not found"):
        read_capture(tmp_path)


def test_missing_image_is_reported_with_its_exact_path(tmp_path):
    fake = make_capture(tmp_path / "cap")
    missing = fake.root / fake.image_relpaths[1][3]
    missing.unlink()
    capture = read_capture(fake.root)  # frame 1 is only looked at when loaded
    with pytest.raises(FileNotFoundError, match=str(missing).replace("(", r"\(")):
        capture.load_image(1, 3)
    first = fake.root / fake.image_relpaths[0][2]
    first.unlink()  # frame 0 gives the image sizes: read_capture reports it
    with pytest.raises(FileNotFoundError, match=str(first)):
        read_capture(fake.root)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a["cams"]["K"].__setitem__(2, np.zeros((3, 4))), r"\['K'\]\[2\] has shape \(3, 4\)"),
        (lambda a: a["cams"]["R"][1].__setitem__((0, 0), np.nan), r"\['R'\]\[1\] contains NaN"),
        (lambda a: a["cams"]["T"].__setitem__(0, np.zeros(4)), r"\['T'\]\[0\] has shape \(4,\)"),
        (lambda a: a["cams"]["R"].__setitem__(3, 2 * np.eye(3)), r"camera 3: .*not a rotation"),
        (lambda a: a["cams"]["D"].pop(), r"one entry per camera"),
        (lambda a: a["ims"][1].__setitem__("ims", a["ims"][1]["ims"][:5]), r"frame 1 lists 5 images .* 6 cameras"),
        (lambda a: a.pop("ims"), r"keys 'cams' and 'ims'"),
    ],
)
def test_bad_annots_raise_naming_the_file(tmp_path, edit, message):
    fake = make_capture(tmp_path / "cap", num_frames=2)
    rewrite_annots(fake.root, edit)
    with pytest.raises(ValueError, match=message) as info:
        read_capture(fake.root)
    assert str(fake.root / "annots.npy") in str(info.value)


def test_bad_body_files_and_indices(tmp_path):
    fake = make_capture(tmp_path / "cap")
    np.save(fake.root / "vertices" / "1.npy", np.zeros((5, 2)))
    (fake.root / "vertices" / "2.npy").unlink()
    capture = read_capture(fake.root)
    with pytest.raises(ValueError, match=r"vertices/1\.npy.*\(V, 3\)"):
        capture.load_vertices(1)
    with pytest.raises(FileNotFoundError, match=r"vertices/2\.npy"):
        capture.load_body(2)
    with pytest.raises(IndexError, match="out of range"):
        capture.image_path(3, 0)
    with pytest.raises(ValueError, match="scale"):
        read_capture(fake.root, scale=0)
    (fake.root / "neuralbody.json").write_text("{not json")
    with pytest.raises(ValueError, match="neuralbody.json"):
        read_capture(fake.root)


def test_image_helpers(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    write_png(tmp_path / "a" / "x.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "a" / "x.png", dtype=np.uint8), rgb)
    np.testing.assert_allclose(read_image(tmp_path / "a" / "x.png"), rgb / 255.0, atol=1e-7)
    write_png(tmp_path / "m.png", np.eye(4, dtype=bool))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), np.eye(4, dtype=bool))
    with pytest.raises(ValueError, match="dtype"):
        write_png(tmp_path / "bad.png", np.zeros((4, 4), dtype=np.int32))
    image = rgb.astype(np.float32) / 255
    np.testing.assert_allclose(resize_image(image, (6, 4)), image.reshape(4, 2, 6, 2, 3).mean(axis=(1, 3)), atol=1e-6)
    constant = np.full((9, 10, 3), 0.25, dtype=np.float32)
    for size in ((7, 5), (13, 11)):  # non-integer down- and upscaling keep a constant image
        out = resize_image(constant, size)
        assert out.shape == (size[1], size[0], 3) and np.allclose(out, 0.25, atol=1e-6)
    mask = np.zeros((6, 6), dtype=bool)
    mask[1, 1] = mask[3, 5] = True
    np.testing.assert_array_equal(resize_mask(mask, (3, 3)), mask[1::2, 1::2])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        resize_mask(np.zeros((2, 2, 3)), (1, 1))
