"""Masks judged against the posed bodies: known answers on discs and on a rendered capture."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from test_train_e2e import make_ellipsoid_capture

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _disc(size: int, radius: float, centre=None) -> np.ndarray:
    cy, cx = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    v, u = np.mgrid[0:size, 0:size]
    return (u - cx) ** 2 + (v - cy) ** 2 <= radius * radius


@pytest.mark.parametrize("change_px", [-2.0, 0.0, 3.0])
def test_agreement_reads_a_known_erosion_or_dilation(change_px):
    from neuralbody.training.mask_trust import mask_agreement

    silhouette = _disc(64, 20.0)
    mask = _disc(64, 20.0 + change_px)
    agreement = mask_agreement(mask, silhouette)
    assert agreement.offset_px == pytest.approx(change_px, abs=0.6)
    assert agreement.spread_px < 0.75
    assert agreement.holes == 0.0 and agreement.border_pixels > 80


def test_agreement_counts_holes_and_ignores_them_for_the_outline():
    from neuralbody.training.mask_trust import CORE_ERODE_PX, mask_agreement

    silhouette = _disc(64, 20.0)
    hole = _disc(64, 4.0, centre=(31.5, 31.5))
    agreement = mask_agreement(silhouette & ~hole, silhouette)
    core = _disc(64, 20.0 - CORE_ERODE_PX)  # the silhouette eroded by the core's disc
    assert agreement.holes == pytest.approx(hole.sum() / core.sum(), rel=0.1)
    assert agreement.offset_px == 0.0  # the hole's rim is not part of the outline


@pytest.mark.parametrize("offset, spread, limit, expected", [
    (0.5, 0.7, math.inf, 0.0),          # exact masks: below the estimate's own noise
    (-2.0, 0.5, math.inf, 2.0),         # eroded 2 px
    (0.0, 1.25, math.inf, 2.0),         # ragged: 2 sqrt(1.25^2 - 0.75^2) = 2
    (3.0, 1.25, math.inf, 5.0),
    (3.0, 1.25, 4.0, 4.0),              # a wider disagreement is capped
])  # fmt: skip
def test_trust_band_known_answers(offset, spread, limit, expected):
    from neuralbody.training.mask_trust import trust_band

    assert trust_band(offset, spread, limit_px=limit) == pytest.approx(expected)


def test_fill_small_holes_fills_shallow_holes_only():
    from neuralbody.training.mask_trust import fill_small_holes

    truth = _disc(80, 25.0)
    small, large = _disc(80, 2.0, centre=(30, 40)), _disc(80, 8.0, centre=(50, 40))
    filled = fill_small_holes(truth & ~small & ~large, 3.0)
    assert filled[small].all() and not filled[large].any()
    np.testing.assert_array_equal(filled[~small], (truth & ~large)[~small])
    np.testing.assert_array_equal(fill_small_holes(truth & ~small, 0.0), truth & ~small)


def test_outline_band_is_the_pixels_near_the_outline():
    from neuralbody.training.mask_trust import outline_band

    mask = _disc(48, 15.0)
    assert not outline_band(mask, 0.0).any()
    band = outline_band(mask, 2.0)
    distance = np.where(mask, ndimage.distance_transform_edt(mask), ndimage.distance_transform_edt(~mask))
    np.testing.assert_array_equal(band, distance <= 2.0)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    from neuralbody.data.capture import read_capture

    return read_capture(make_ellipsoid_capture(tmp_path_factory.mktemp("trust"), frames=2, views=4, res=96,
                                               vertices_per_part=600))  # fmt: skip


class _ErodedMasks:
    """A capture whose masks are eroded by ``pixels`` (everything else passed through)."""

    def __init__(self, capture, pixels: float) -> None:
        self.capture, self.pixels = capture, pixels
        self.cameras = capture.cameras

    def load_body(self, frame):
        return self.capture.load_body(frame)

    def load_mask(self, frame, view):
        mask = np.asarray(self.capture.load_mask(frame, view), dtype=bool)
        return ndimage.distance_transform_edt(mask) > self.pixels


def test_vertex_silhouette_matches_the_rendered_mask(capture):
    from neuralbody.training.mask_trust import mask_agreement, vertex_silhouette

    for view in range(4):  # thin parts a few pixels wide: the outline agrees to a pixel, the area to ~20 %
        mask = np.asarray(capture.load_mask(0, view), dtype=bool)
        silhouette = vertex_silhouette(capture.cameras[view], capture.load_body(0).vertices.double().numpy())
        assert (mask & silhouette).sum() / (mask | silhouette).sum() > 0.75
        assert abs(mask_agreement(mask, silhouette).offset_px) < 0.75


def test_estimate_reads_exact_masks_as_exact_and_a_known_erosion(capture):
    from neuralbody.training.mask_trust import estimate_mask_quality

    exact = estimate_mask_quality(capture, frames=[0, 1], views=[0, 1, 2, 3])
    assert exact.exact and exact.images == 8
    eroded = estimate_mask_quality(_ErodedMasks(capture, 2.0), frames=[0, 1], views=[0, 1, 2, 3])
    assert eroded.offset_px == pytest.approx(-2.0, abs=0.6)
    assert 1.0 <= eroded.band_px <= 3.5 and not eroded.exact


def test_sampler_with_trust_supervises_opacity_everywhere_and_colour_off_the_band(capture):
    from neuralbody.training.mask_trust import MaskQuality, fill_small_holes, outline_band
    from neuralbody.training.rays import RaySampler

    trust = MaskQuality(offset_px=-1.0, spread_px=1.0, holes=0.0, band_px=2.0, images=1)
    sampler = RaySampler(capture, frames=[0], views=[1], trust=trust, progress=False)
    image = sampler.source.get(0, 1)
    target = fill_small_holes(np.asarray(capture.load_mask(0, 1), dtype=bool), 3.0)
    np.testing.assert_array_equal(image.mask.numpy(), target.reshape(-1))
    np.testing.assert_array_equal(image.inside_ids.numpy(), np.flatnonzero(target))  # nothing left out
    np.testing.assert_array_equal(image.colour_trust.numpy(), ~outline_band(target, 2.0).reshape(-1))
    batch = sampler.sample(0, 400, np.random.default_rng(0))
    ids = torch.cat([image.inside_ids, image.box_ids])
    assert batch.colour_weight.shape == (400,) and 0 < batch.colour_weight.sum() < 400
    assert set(batch.colour_weight.unique().tolist()) <= {0.0, 1.0} and len(ids) > 0
    plain = RaySampler(capture, frames=[0], views=[1], border_px=0, progress=False)
    plain = plain.sample(0, 50, np.random.default_rng(0))
    assert bool(plain.colour_weight.all())
    assert math.isclose(float(plain.mask[:25].min()), 1.0)


def test_training_judges_undeclared_masks_and_keeps_the_judgement_on_resume(capture, tmp_path, monkeypatch):
    """Masks eroded 2 px on disk, no exact_masks flag: the run stores a band > 0 and a resume reuses it."""
    import json
    import shutil

    from PIL import Image
    from test_train_e2e import _config

    from neuralbody.data.capture import read_capture
    from neuralbody.training import trainer as trainer_module

    data = Path(shutil.copytree(capture.root, tmp_path / "capture"))
    copied = read_capture(data)
    for frame in range(copied.num_frames):
        for view in range(copied.num_views):
            path = copied.mask_path(frame, view)
            values = np.asarray(Image.open(path))
            eroded = ndimage.distance_transform_edt(values > 0) > 2.0
            Image.fromarray(np.where(eroded, values.max(), 0).astype(values.dtype)).save(path)
    out = tmp_path / "run"
    trainer_module.Trainer(_config(data, out, steps=2, ckpt_every=2), progress=False).run()
    stored = json.loads((out / "config.json").read_text())["mask_trust"]
    assert stored["band_px"] >= 1.0 and stored["offset_px"] < -1.0

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run must reuse its stored judgement")

    monkeypatch.setattr(trainer_module, "estimate_mask_quality", refuse)
    resumed = trainer_module.Trainer(trainer_module.TrainConfig.from_json(out / "config.json"), resume=True,
                                     progress=False)  # fmt: skip
    assert resumed.config.mask_trust == stored
