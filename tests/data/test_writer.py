"""CaptureWriter: ZJU-MoCap layout on disk, exact round trips, reproducible bytes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neuralbody.data.cameras import Camera
from neuralbody.data.writer import CaptureWriter, depth_relpath, mask_relpath, read_depth_png
from neuralbody.geometry.rotations import look_at_rotation


def _cameras(count: int = 3, size: int = 16) -> list[Camera]:
    rng = np.random.default_rng(5)
    cameras = []
    for i in range(count):
        center = np.array([3.0 * np.cos(i), 3.0 * np.sin(i), 1.2])
        R = look_at_rotation(center, np.array([0.0, 0.0, 0.9]))
        K = np.array([[20.0 + i, 0, 7.5], [0, 21.0, 7.4], [0, 0, 1]])
        cameras.append(
            Camera(
                K=K, R=R, T=-R @ center, D=rng.uniform(-0.05, 0.05, 5), width=size, height=size, name=f"Camera_{i:02d}"
            )
        )
    return cameras


def _frame(rng: np.random.Generator, count: int, size: int) -> dict:
    masks = rng.uniform(size=(count, size, size)) > 0.5
    return dict(
        images=rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8),
        masks=masks,
        depths=np.where(masks, rng.uniform(2.0, 4.0, size=(count, size, size)), 0.0).astype(np.float32),
        params={
            "poses": rng.normal(size=12),
            "Rh": rng.normal(size=3),
            "Th": rng.normal(size=3),
            "shapes": rng.uniform(size=6),
        },
        vertices=rng.normal(size=(10, 3)).astype(np.float32),
        faces=rng.integers(0, 10, size=(7, 3)),
    )


def _write(root, frames: int = 2, seed: int = 0):
    cameras = _cameras()
    rng = np.random.default_rng(seed)
    data = [_frame(rng, len(cameras), cameras[0].width) for _ in range(frames)]
    writer = CaptureWriter(root, cameras, {"seed": seed, "train_cameras": [0], "test_cameras": [1, 2]})
    for frame in data:
        writer.add_frame(**frame)
    writer.close()
    return cameras, data


def test_layout_matches_zju(tmp_path):
    cameras, data = _write(tmp_path)
    annots = np.load(tmp_path / "annots.npy", allow_pickle=True).item()
    cams = annots["cams"]
    assert set(cams) == {"K", "D", "R", "T"}
    for i, camera in enumerate(cameras):
        np.testing.assert_array_equal(cams["K"][i], camera.K)
        np.testing.assert_array_equal(cams["R"][i], camera.R)
        assert cams["D"][i].shape == (5, 1) and cams["T"][i].shape == (3, 1)
        np.testing.assert_allclose(cams["T"][i][:, 0], camera.T * 1000.0)  # millimetres on disk
        np.testing.assert_array_equal(cams["D"][i][:, 0], camera.D)
    assert len(annots["ims"]) == 2
    for f, frame in enumerate(data):
        paths = annots["ims"][f]["ims"]
        assert paths == [f"{c.name}/{f:06d}.png" for c in cameras]
        for v, path in enumerate(paths):
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / path)), frame["images"][v])
            mask = np.asarray(Image.open(tmp_path / mask_relpath(path)))
            assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
            np.testing.assert_array_equal(mask != 0, frame["masks"][v])
            depth = read_depth_png(tmp_path / depth_relpath(path))
            np.testing.assert_allclose(depth, frame["depths"][v], atol=0.5e-3 + 1e-6)
        params = np.load(tmp_path / "params" / f"{f}.npy", allow_pickle=True).item()
        for key in ("poses", "Rh", "Th", "shapes"):
            assert params[key].shape == (1, np.asarray(frame["params"][key]).size)
            np.testing.assert_allclose(params[key][0], frame["params"][key], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.load(tmp_path / "vertices" / f"{f}.npy"), frame["vertices"])
        mesh = np.load(tmp_path / "gt_meshes" / f"{f}.npz")
        np.testing.assert_array_equal(mesh["vertices"], frame["vertices"])
        np.testing.assert_array_equal(mesh["faces"], frame["faces"])
    assert not list(tmp_path.glob("*.tmp"))


def test_reader_reads_back_what_was_written(tmp_path):
    capture_module = pytest.importorskip("neuralbody.data.capture")
    if not hasattr(capture_module, "read_capture"):
        pytest.skip("neuralbody.data.capture.read_capture not written yet")
    cameras, data = _write(tmp_path)
    capture = capture_module.read_capture(tmp_path)
    assert capture.num_frames == 2 and capture.num_views == 3
    for got, want in zip(capture.cameras, cameras):
        np.testing.assert_allclose(got.K, want.K)
        np.testing.assert_allclose(got.R, want.R)
        np.testing.assert_allclose(got.T, want.T, atol=1e-12)  # mm -> m
        np.testing.assert_allclose(got.D, want.D)
        assert (got.width, got.height) == (want.width, want.height)
    for f, frame in enumerate(data):
        for v in range(3):
            image = capture.load_image(f, v)
            np.testing.assert_allclose(image, frame["images"][v] / 255.0, atol=1e-6)
            np.testing.assert_array_equal(capture.load_mask(f, v), frame["masks"][v])
        body = capture.load_body(f)
        np.testing.assert_allclose(body.vertices.numpy(), frame["vertices"], atol=1e-7)
        np.testing.assert_allclose(body.Rh.numpy().reshape(3), frame["params"]["Rh"], atol=1e-6)
        np.testing.assert_allclose(body.Th.numpy().reshape(3), frame["params"]["Th"], atol=1e-6)
    assert capture.meta["train_cameras"] == [0] and capture.meta["test_cameras"] == [1, 2]


def test_same_input_same_bytes(tmp_path):
    _write(tmp_path / "a")
    _write(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    # annots + json, (image, mask, depth) x views x frames, (params, vertices, mesh) x frames
    assert len(files) == 2 + 2 * 3 * 3 + 3 * 2
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_writer_rejects_bad_input(tmp_path):
    cameras = _cameras()
    frame = _frame(np.random.default_rng(0), 3, 16)
    writer = CaptureWriter(tmp_path, cameras, {})
    with pytest.raises(ValueError, match="images must have shape"):
        writer.add_frame(**{**frame, "images": frame["images"][:2]})
    with pytest.raises(ValueError, match="uint8"):
        writer.add_frame(**{**frame, "images": frame["images"].astype(np.float32)})
    with pytest.raises(ValueError, match="params lacks"):
        writer.add_frame(**{**frame, "params": {"poses": np.zeros(3)}})
    with pytest.raises(ValueError, match="gt_colours"):
        writer.add_frame(**{**frame, "gt_colours": np.zeros((len(frame["vertices"]) + 1, 3), np.uint8)})
    with pytest.raises(ValueError, match="no frames"):
        writer.close()
    with pytest.raises(ValueError, match="unique"):
        CaptureWriter(tmp_path, [cameras[0], cameras[0]], {})
