"""The frame-conditioned NeRF baseline: shapes, determinism, gradients, unseen-frame fallback."""

from __future__ import annotations

import pytest
import torch

from neuralbody.models import build_model
from neuralbody.body.frame_body import FrameBody
from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig

SMALL = FrameNerfConfig(latent_dim=8, width=32, depth=4, color_width=16)


def _body(seed: int = 0, num_vertices: int = 40) -> FrameBody:
    generator = torch.Generator().manual_seed(seed)
    vertices = torch.randn(num_vertices, 3, generator=generator) * torch.tensor([0.2, 0.15, 0.5]) + torch.tensor([0.1, 0.0, 1.0])
    return FrameBody(vertices=vertices, Rh=torch.zeros(3), Th=vertices.mean(dim=0))


def _points(n: int = 50, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(n, 3, generator=generator) * 0.3 + torch.tensor([0.1, 0.0, 1.0])
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=1)
    return points, dirs


def test_shapes_ranges_and_box():
    torch.manual_seed(0)
    model = FrameNerf(5, SMALL)
    body = _body()
    field = model.prepare_frame(2, body)
    assert torch.allclose(field.box_min, body.vertices.min(dim=0).values - 0.05)
    assert torch.allclose(field.box_max, body.vertices.max(dim=0).values + 0.05)
    points, dirs = _points()
    sigma, rgb = field.query(points, dirs)
    assert sigma.shape == (50,) and rgb.shape == (50, 3)
    assert torch.all(sigma >= 0) and torch.all((rgb >= 0) & (rgb <= 1))


def test_deterministic_and_frame_dependent():
    torch.manual_seed(0)
    model = FrameNerf(5, SMALL)
    points, dirs = _points()
    field = model.prepare_frame(1, _body())
    first = field.query(points, dirs)
    second = model.prepare_frame(1, _body()).query(points, dirs)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    other = model.prepare_frame(3, _body()).query(points, dirs)
    assert not torch.allclose(first[1], other[1])


def test_unseen_frame_uses_last_code():
    torch.manual_seed(0)
    model = FrameNerf(4, SMALL)
    points, dirs = _points()
    body = _body()
    last = model.prepare_frame(3, body).query(points, dirs)
    beyond = model.prepare_frame(17, body).query(points, dirs)
    assert torch.equal(last[0], beyond[0]) and torch.equal(last[1], beyond[1])
    assert model.prepare_frame(17, body).frame_index == 17
    with pytest.raises(ValueError, match="frame_index"):
        model.prepare_frame(-1, body)


def test_gradients_reach_the_frame_code_and_mlps():
    torch.manual_seed(0)
    model = FrameNerf(3, SMALL)
    points, dirs = _points()
    sigma, rgb = model.prepare_frame(1, _body()).query(points, dirs)
    (sigma.mean() + rgb.mean()).backward()
    grad = model.frame_codes.weight.grad
    assert grad[1].abs().sum() > 0
    assert grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_shape_guards():
    model = FrameNerf(2, SMALL)
    field = model.prepare_frame(0, _body())
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        field.query(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="viewdirs"):
        field.query(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="vertices"):
        model.prepare_frame(0, FrameBody(torch.zeros(0, 3), torch.zeros(3), torch.zeros(3)))
    with pytest.raises(ValueError, match="unknown frame_nerf options"):
        FrameNerfConfig.from_options({"widht": 3})
    with pytest.raises(ValueError, match="density_activation"):
        FrameNerfConfig(density_activation="tanh")


def test_built_by_factory_and_state_dict_round_trip():
    model = build_model("frame_nerf", num_vertices=40, num_frames=3, options={"width": 32, "depth": 4, "latent_dim": 8})
    assert isinstance(model, FrameNerf) and model.config.width == 32
    clone = FrameNerf(3, FrameNerfConfig(width=32, depth=4, latent_dim=8))
    clone.load_state_dict(model.state_dict())
    points, dirs = _points()
    a = model.prepare_frame(2, _body()).query(points, dirs)
    b = clone.prepare_frame(2, _body()).query(points, dirs)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_default_budget_is_comparable_to_fast_neural_body():
    model = FrameNerf(300)
    count = sum(p.numel() for p in model.parameters() if p is not model.frame_codes.weight)
    assert 50_000 < count < 400_000


def test_baseline_skips_empty_space_like_neural_body():
    import torch

    from neuralbody.body.frame_body import FrameBody
    from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig
    from neuralbody.models.occupancy import occupancy_grid, points_occupied

    vertices = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5]])
    grid = occupancy_grid(vertices, cell=0.02, margin=0.06)
    near = vertices + torch.tensor([0.05, 0.0, 0.0])
    far = vertices + torch.tensor([0.3, 0.0, 0.0])
    assert points_occupied(grid, near).all()
    assert not points_occupied(grid, far).any()

    model = FrameNerf(2, FrameNerfConfig())
    field = model.prepare_frame(0, FrameBody(vertices, torch.zeros(3), torch.zeros(3)))
    points = torch.cat([near, far])
    sigma, rgb = field.query(points, torch.nn.functional.normalize(torch.ones_like(points), dim=1))
    assert (sigma[2:] == 0).all() and (sigma[:2] > 0).all()
    assert rgb.shape == (4, 3)
