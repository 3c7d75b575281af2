"""Inference folds of Neural Body's decoder: the same numbers as the layer-by-layer computation."""

from __future__ import annotations

import pytest
import torch

from neuralbody.models.inference_fold import fold_colour_chain, fuse_first_layer, fused_first_layer
from neuralbody.models.sparse_conv import SparseVolume, sort_coords
from neuralbody.models.sparse_grid import CORNERS, trilinear_lookup


def _levels(generator, dtype=torch.float64):
    """Random sparse volumes at strides 1, 2, 4 over a blob of active voxels."""
    coords = torch.randint(0, 12, (250, 3), generator=generator)
    levels = []
    for stride, channels in ((1, 3), (2, 4), (4, 5)):
        level_coords, _ = sort_coords(torch.div(coords, stride, rounding_mode="floor"))
        features = torch.randn(level_coords.shape[0], channels, generator=generator, dtype=dtype)
        levels.append(SparseVolume(level_coords, features, stride))
    return levels


def test_fused_first_layer_equals_lookups_then_layer():
    generator = torch.Generator().manual_seed(0)
    levels = _levels(generator)
    layer = torch.nn.Linear(12, 7).double()
    fused = fuse_first_layer(levels, levels[0].coords, layer, dilation=2)
    positions = torch.rand(3000, 3, generator=generator, dtype=torch.float64) * 20 - 4  # inside and beyond the blob
    values, missing = fused_first_layer(fused, positions)
    expected = layer(torch.cat([trilinear_lookup(level, positions) for level in levels], dim=1)).detach()
    assert 0 < missing.numel() < 0.7 * positions.shape[0]  # some cells are covered, some not
    complete = torch.ones(positions.shape[0], dtype=torch.bool)
    complete[missing] = False
    torch.testing.assert_close(values[complete], expected[complete], rtol=0, atol=1e-12)
    assert values.shape == expected.shape and torch.isfinite(values).all()
    # the points reported missing are exactly those with a corner beyond the stored ones
    corners = torch.floor(positions)[:, None, :].long() + torch.tensor(CORNERS)[None]
    stored = {tuple(c) for c in fused.coords.tolist()}
    really_missing = [i for i, cell in enumerate(corners.tolist()) if any(tuple(c) not in stored for c in cell)]
    assert missing.tolist() == really_missing
    # a point far from the blob has no stored corners
    far_values, far_missing = fused_first_layer(fused, torch.tensor([[40.0, 40.0, 40.0]], dtype=torch.float64))
    assert far_missing.tolist() == [0] and far_values.shape == (1, 7)


def test_fold_colour_chain_equals_the_three_layers():
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    feature_fc, latent_fc, view_fc = torch.nn.Linear(16, 8), torch.nn.Linear(8 + 5, 8), torch.nn.Linear(8 + 6, 4)
    for layer in (feature_fc, latent_fc, view_fc):
        layer.double()
    hidden = torch.randn(50, 16, generator=generator, dtype=torch.float64)
    rest = torch.randn(50, 6, generator=generator, dtype=torch.float64)
    appearance = torch.randn(5, generator=generator, dtype=torch.float64)
    features = latent_fc(torch.cat([feature_fc(hidden), appearance.expand(50, -1)], dim=1))
    expected = view_fc(torch.cat([features, rest], dim=1))
    weight_hidden, weight_rest, bias = fold_colour_chain(view_fc, latent_fc, feature_fc, appearance)
    torch.testing.assert_close(hidden @ weight_hidden.T + rest @ weight_rest.T + bias, expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="appearance"):
        fold_colour_chain(view_fc, latent_fc, feature_fc, appearance[:4])


def test_guards():
    generator = torch.Generator().manual_seed(2)
    levels = _levels(generator)
    with pytest.raises(ValueError, match="active_coords"):
        fuse_first_layer(levels, levels[0].coords[:, :2], torch.nn.Linear(12, 3).double(), dilation=1)
    with pytest.raises(ValueError, match="channels"):
        fuse_first_layer(levels, levels[0].coords, torch.nn.Linear(10, 3).double(), dilation=1)
    with pytest.raises(ValueError, match="dilation"):
        fuse_first_layer(levels, levels[0].coords, torch.nn.Linear(12, 3).double(), dilation=-1)
    fused = fuse_first_layer(levels, levels[0].coords, torch.nn.Linear(12, 3).double(), dilation=1)
    with pytest.raises(ValueError, match="positions"):
        fused_first_layer(fused, torch.zeros(4, 2, dtype=torch.float64))


TINY = {"voxel_size": 0.03, "level_channels": [8, 8, 8, 8], "stage_layers": [1, 1, 0, 0, 0], "code_dim": 8,
        "density_width": 32, "density_layers": 2, "feature_width": 32, "color_width": 16, "appearance_dim": 4}


@pytest.mark.parametrize("preset", ["fast", "faithful"])
@pytest.mark.parametrize("activation", ["softplus", "relu"])
@pytest.mark.parametrize("dilation", [4, 0])
def test_compiled_frame_equals_the_training_field(preset, activation, dilation, monkeypatch):
    """``compile_frame`` (folds on, no gradients) gives what ``prepare_frame`` gives, for every preset and
    density activation (each preset at small sizes, keeping what distinguishes it: voxels, occupancy,
    input level, canonical colour, texture); with no dilation most points take the unfused path."""
    from neuralbody.models import FrameBody, build_model
    from neuralbody.models import neural_body

    monkeypatch.setattr(neural_body, "FUSE_DILATION", dilation)
    torch.manual_seed(0)
    options = {"preset": preset, **TINY, "density_activation": activation}
    if preset == "faithful":
        options["voxel_size"] = 0.02
    model = build_model("neuralbody", num_vertices=400, num_frames=3, options=options).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # a trained-looking density: positive in the body for either activation
        model.density_out.bias.fill_(0.5)
    unit = torch.nn.functional.normalize(torch.randn(400, 3, generator=generator), dim=1)
    vertices = unit * torch.tensor([0.2, 0.12, 0.8]) + torch.tensor([0.0, 0.0, 0.9])
    body = FrameBody(vertices, torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.5, 0.0, -0.1]))
    model.set_reference(FrameBody(vertices + 0.01, body.Rh, body.Th))
    points = body.vertices[:300] + 0.05 * torch.randn(300, 3, generator=generator)
    dirs = torch.nn.functional.normalize(torch.randn(300, 3, generator=generator), dim=1)
    training = model.prepare_frame(1, body)
    assert training.fused is None
    sigma, rgb = training.query(points, dirs)
    (sigma.sum() + rgb.sum()).backward()  # the training field is differentiable
    assert model.codes_per_vertex.weight.grad.abs().sum() > 0
    compiled = model.compile_frame(1, body)
    assert compiled.fused is not None and compiled.fused.coords.shape[0] > 0
    with torch.no_grad():  # a compiled field is queried without gradients (as render_view does)
        sigma_fast, rgb_fast = compiled.query(points, dirs)
        density = compiled.density(points)  # density then colour, as the renderer asks, gives the same
        rgb_split = compiled.colour(density, torch.arange(300), dirs)
    assert (sigma > 0).float().mean() > 0.3
    torch.testing.assert_close(sigma_fast, sigma.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rgb_fast, rgb.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rgb_split, rgb_fast)


def test_the_colour_chain_is_composed_once_per_field_and_trains_the_three_layers():
    """The field folds the colour chain once; gradients reach feature_fc, latent_fc, view_fc and the appearance code."""
    from neuralbody.models import FrameBody, build_model

    torch.manual_seed(1)
    model = build_model("neuralbody", num_vertices=200, num_frames=2, options=TINY)
    generator = torch.Generator().manual_seed(4)
    vertices = torch.randn(200, 3, generator=generator) * 0.2 + torch.tensor([0.0, 0.0, 0.9])
    field = model.prepare_frame(1, FrameBody(vertices, torch.zeros(3), torch.zeros(3)))
    weight_hidden, _, _ = field.colour_fold
    assert weight_hidden.shape == (model.view_fc.out_features, model.feature_fc.in_features)
    _, rgb = field.query(vertices[:50], torch.nn.functional.normalize(torch.ones(50, 3), dim=1))
    rgb.sum().backward()
    for layer in (model.feature_fc, model.latent_fc, model.view_fc):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert model.appearance.weight.grad[1].abs().sum() > 0 and model.appearance.weight.grad[0].abs().sum() == 0


def test_fusing_stays_within_its_memory_budget_and_chunks_give_the_same_values():
    generator = torch.Generator().manual_seed(5)
    levels = _levels(generator)
    layer = torch.nn.Linear(12, 7).double()
    whole = fuse_first_layer(levels, levels[0].coords, layer, dilation=2)
    chunked = fuse_first_layer(levels, levels[0].coords, layer, dilation=2, chunk_points=100)
    assert torch.equal(whole.coords, chunked.coords)
    torch.testing.assert_close(chunked.features, whole.features, rtol=0, atol=1e-12)
    needed = whole.features.numel() * 8
    assert fuse_first_layer(levels, levels[0].coords, layer, dilation=2, max_bytes=needed - 1) is None
    assert fuse_first_layer(levels, levels[0].coords, layer, dilation=2, max_bytes=needed) is not None
