"""PIFu and the multi-view multi-scale model: shapes, gradients, bilinear sampling, view symmetry, depth reference."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from neuralbody.recon.model import (
    PRESETS,
    PixelAlignedOccupancy,
    ReconModelConfig,
    crop_grid,
    fuse,
    relative_depth,
    sample_maps,
)
from neuralbody.recon.views import ViewInputs

SMALL = dict(input_size=32, channels=8, stacks=1, depth=2, view_mlp=(16,), decoder_mlp=(8,))


def _views(batch: int, count: int, size: int = 32) -> ViewInputs:
    generator = torch.Generator().manual_seed(0)
    angles = torch.arange(count) * (6.2832 / max(count, 1))
    R = torch.zeros(count, 3, 3)
    for k, a in enumerate(angles):  # cameras on a ring at 3 m, looking at the origin (x right, y down, z forward)
        c, s = torch.cos(a), torch.sin(a)
        R[k] = torch.tensor([[-s, c, 0.0], [0.0, 0.0, -1.0], [-c, -s, 0.0]])
    T = torch.tensor([0.0, 0.0, 3.0]).expand(count, 3)
    K = torch.tensor([[40.0, 0.0, size / 2 - 0.5], [0.0, 40.0, size / 2 - 0.5], [0.0, 0.0, 1.0]]).expand(count, 3, 3)
    images = torch.rand(batch, count, 4, size, size, generator=generator)
    expand = lambda x: x.expand(batch, *x.shape).contiguous()  # noqa: E731
    return ViewInputs(images, expand(K), expand(R), expand(T), torch.zeros(batch, count, 5))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_output_shape_and_gradients_reach_every_used_layer(name):
    config = dataclasses.replace(PRESETS[name], **SMALL, scales=tuple(s.replace("s32", "s16") for s in PRESETS[name].scales))
    model = PixelAlignedOccupancy(config)
    views = _views(2, 1 if name == "pifu" else 3)
    points = torch.randn(2, 50, 3) * 0.3
    body = torch.rand(2, 50, len(config.body_scales)) if config.body_scales else None
    logits = model(views, torch.zeros(2, 3), points, body)
    assert logits.shape == (2, 50) and torch.isfinite(logits).all()
    logits.sum().backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)}
    assert not unused, unused


def test_bilinear_sampling_reads_pixel_centres():
    ramp = torch.arange(8, dtype=torch.float32).repeat(8, 1)[None, None]  # value = column index u
    uv = torch.tensor([[[0.0, 0.0], [3.0, 5.0], [3.5, 2.0], [7.0, 7.0]]])  # pixel coordinates, centres at integers
    values = sample_maps([ramp, 2 * ramp], crop_grid(uv, 8))
    torch.testing.assert_close(values[0, :, 0], torch.tensor([0.0, 3.0, 3.5, 7.0]))
    torch.testing.assert_close(values[0, :, 1], torch.tensor([0.0, 6.0, 7.0, 14.0]))
    # a coarser map of the same crop: its pixel j covers crop pixels 2j, 2j + 1 (centre 2j + 0.5)
    coarse = torch.arange(4, dtype=torch.float32).repeat(4, 1)[None, None]
    torch.testing.assert_close(sample_maps([coarse], crop_grid(torch.tensor([[[2.5, 2.5]]]), 8))[0, 0], torch.tensor([1.0]))


def test_multiview_fusion_is_symmetric_in_the_views():
    config = ReconModelConfig(**SMALL, scales=("s2", "s4", "s16"))
    model = PixelAlignedOccupancy(config).eval()
    views = _views(1, 3)
    order = torch.tensor([2, 0, 1])
    permuted = ViewInputs(*(getattr(views, f.name)[:, order] for f in dataclasses.fields(ViewInputs)))
    points = torch.randn(1, 40, 3) * 0.3
    with torch.no_grad():
        torch.testing.assert_close(model(views, torch.zeros(1, 3), points), model(permuted, torch.zeros(1, 3), points))
    embeddings = torch.randn(2, 1, 5, 7)
    fused = fuse(embeddings, "mean_var")
    torch.testing.assert_close(fused[..., :7], embeddings[:, 0])  # one view: the mean is the view, the variance 0
    torch.testing.assert_close(fused[..., 7:], torch.zeros(2, 5, 7))


def test_relative_depth_is_zero_at_the_centre_and_metric_along_the_axis():
    views = _views(1, 2)
    centre = torch.tensor([[0.1, -0.2, 0.3]])
    camera_z = views.R[0, 0, 2]  # camera 0's forward axis in world coordinates
    points = torch.stack([centre[0], centre[0] + 0.25 * camera_z])[None]
    _, depth = relative_depth(points, centre, views)
    torch.testing.assert_close(depth[0, 0], torch.tensor([0.0, 0.25]), atol=1e-6, rtol=0)


def test_config_guards():
    with pytest.raises(ValueError, match="scales must be among"):
        ReconModelConfig(scales=("s8",))
    with pytest.raises(ValueError, match="divisible"):
        ReconModelConfig(input_size=100)
    with pytest.raises(ValueError, match="unknown model options"):
        ReconModelConfig.from_dict({"width": 3})
    model = PixelAlignedOccupancy(ReconModelConfig(**SMALL, scales=("s4",)))
    with pytest.raises(ValueError, match="images must be"):
        model.encode(torch.zeros(1, 1, 4, 16, 16))
