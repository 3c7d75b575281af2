"""Streaming training images: same rays as preloading, bounded cache, automatic choice, CLI flags."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from test_train_e2e import TINY_MODEL, make_ellipsoid_capture


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory) -> Path:
    return make_ellipsoid_capture(tmp_path_factory.mktemp("stream_caps"), frames=4, views=6, res=40)


@pytest.fixture(scope="module")
def capture(capture_dir):
    from neuralbody.data.capture import read_capture

    return read_capture(capture_dir)


def _sampler(capture, mode: str, **kwargs):
    from neuralbody.training.rays import RaySampler

    return RaySampler(capture, frames=[0, 1, 2, 3], views=[0, 2, 4], border_px=2, progress=False,
                      image_source=mode, **kwargs)


def test_streamed_and_preloaded_draw_the_same_rays(capture):
    preloaded = _sampler(capture, "preload")
    streamed = _sampler(capture, "stream", cache_bytes=1)  # smallest cache: two frames' views
    assert not preloaded.streaming and streamed.streaming
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    for frame in [0, 2, 1, 3, 0, 3, 2]:
        a = preloaded.sample(frame, 101, rng_a)
        b = streamed.sample(frame, 101, rng_b)
        for name in ("rays_o", "rays_d", "rgb", "mask"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        for chunk in torch.split(a.mask, [34, 34, 33]):  # per view: first half on the person
            assert bool(chunk[: len(chunk) // 2].all())
        streamed.prefetch((frame + 1) % 4)
    assert streamed.source.max_held <= streamed.source.capacity == 6
    streamed.close()


def _chessboard_band(mask: np.ndarray, border_px: int) -> np.ndarray:
    """Independent band: Chebyshev distance to the other label (outside the image counts as background)."""
    padded = np.pad(mask, border_px + 1, constant_values=False)
    to_background = ndimage.distance_transform_cdt(padded, metric="chessboard")
    to_person = ndimage.distance_transform_cdt(~padded, metric="chessboard")
    band = np.where(padded, to_background <= border_px, to_person <= border_px)
    return band[border_px + 1: -border_px - 1, border_px + 1: -border_px - 1]


def test_decoded_regions_exclude_the_border_band(capture):
    from neuralbody.data.cameras import project_box_mask
    from neuralbody.geometry.box import body_box
    from neuralbody.training.image_source import DecodeSettings, decode_training_image

    body = capture.load_body(1)
    image = decode_training_image(capture, frame=1, view=2, body=body, settings=DecodeSettings(border_px=1))
    mask = capture.load_mask(1, 2)
    band = _chessboard_band(mask, 1)
    assert band.any() and (mask & ~band).any()
    box = project_box_mask(capture.cameras[2], *body_box(body.vertices.double().numpy(), 0.05))
    np.testing.assert_array_equal(image.inside_ids.numpy(), np.flatnonzero(mask & ~band))
    np.testing.assert_array_equal(image.box_ids.numpy(), np.flatnonzero(box & ~band))
    np.testing.assert_array_equal(image.mask.numpy(), mask.reshape(-1))
    target = np.round(capture.load_image(1, 2) * 255).reshape(-1, 3)
    np.testing.assert_array_equal(image.rgb.numpy(), target)


def test_decode_rejects_mismatched_sizes(capture):
    from neuralbody.training.image_source import DecodeSettings, decode_training_image

    class CroppedMasks:
        cameras = capture.cameras

        def load_image(self, frame, view):
            return capture.load_image(frame, view)

        def load_mask(self, frame, view):
            return capture.load_mask(frame, view)[:-1]

    with pytest.raises(ValueError, match="frame 0 camera 1: image"):
        decode_training_image(CroppedMasks(), frame=0, view=1, body=capture.load_body(0), settings=DecodeSettings())


def test_cache_never_exceeds_its_bound_and_evicts_least_recent(capture):
    from neuralbody.training.image_source import DecodeSettings, StreamingImages

    bodies = {f: capture.load_body(f) for f in range(4)}
    source = StreamingImages(capture, views=[0, 2], bodies=bodies, settings=DecodeSettings(), capacity=3)
    order = [(0, 0), (0, 2), (1, 0), (0, 0), (2, 0), (3, 2), (1, 0), (0, 2), (2, 2), (3, 0)]
    for step, (frame, view) in enumerate(order):
        image = source.get(frame, view)
        assert (image.frame, image.view) == (frame, view)
        source.prefetch(step % 4)
        assert len(source) <= 3
    source.close()
    assert source.max_held == 3
    # LRU without the thread: (0, 0) was used after (0, 2), so (0, 2) goes first
    source = StreamingImages(capture, views=[0, 2], bodies=bodies, settings=DecodeSettings(), capacity=2, background=False)
    source.get(0, 0), source.get(0, 2), source.get(0, 0), source.get(1, 0)
    assert source.decoded == 3
    source.get(0, 0)
    assert source.decoded == 3  # still cached
    source.get(0, 2)
    assert source.decoded == 4  # evicted, decoded again
    with pytest.raises(ValueError, match="capacity"):
        StreamingImages(capture, views=[0], bodies=bodies, settings=DecodeSettings(), capacity=0)


def test_auto_mode_preloads_small_and_streams_large(capture):
    from neuralbody.training.image_source import estimate_decoded_bytes

    estimate = estimate_decoded_bytes(capture, frames=[0, 1, 2, 3], views=[0, 2, 4])
    assert estimate == 13 * 40 * 40 * 12  # 13 bytes a pixel at most, 12 images of 40 x 40
    assert not _sampler(capture, "auto", preload_budget_bytes=estimate).streaming
    assert _sampler(capture, "auto", preload_budget_bytes=estimate - 1).streaming
    with pytest.raises(ValueError, match="auto, preload or stream"):
        _sampler(capture, "lazy")


def _config(data: Path, out: Path, **fields):
    from neuralbody.training.config import TrainConfig

    base = dict(
        data=str(data), out=str(out), model_options=dict(TINY_MODEL), steps=5, rays_per_step=96,
        num_samples=12, lr=5e-3, val_every=0, ckpt_every=100, log_every=1, device="cpu",
        train_frames=[0, 1, 2, 3], train_views=[0, 2, 4],
    )
    base.update(fields)
    return TrainConfig.from_preset("fast", **base)


def test_streamed_training_matches_preloaded_training(capture_dir, tmp_path):
    from neuralbody.training.trainer import Trainer

    runs = {}
    for mode in ("preload", "stream"):
        trainer = Trainer(_config(capture_dir, tmp_path / mode, image_source=mode, cache_gb=1e-9), progress=False)
        assert trainer.sampler.streaming == (mode == "stream")
        trainer.run()
        if mode == "stream":  # 4 frames x 3 views through a cache of 2 frames' views
            assert trainer.sampler.source.capacity == 6 and trainer.sampler.source.max_held <= 6
        losses = [float(r["loss"]) for r in csv.DictReader((tmp_path / mode / "log.csv").open())]
        runs[mode] = (losses, trainer.model.state_dict())
    assert len(runs["stream"][0]) == 5
    assert runs["stream"][0] == runs["preload"][0]
    for key, value in runs["preload"][1].items():
        assert torch.equal(runs["stream"][1][key], value), key


def test_cli_stream_and_preload_flags(capture_dir, tmp_path):
    import argparse

    from neuralbody.cli import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    base = [str(capture_dir), "--out", str(tmp_path / "r"), "--device", "cpu"]
    assert train_cli.build_config(parser.parse_args(base))[0].image_source == "auto"
    config = train_cli.build_config(parser.parse_args([*base, "--stream", "--cache-gb", "0.5"]))[0]
    assert (config.image_source, config.cache_gb) == ("stream", 0.5)
    assert train_cli.build_config(parser.parse_args([*base, "--preload"]))[0].image_source == "preload"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--preload", "--stream"])
