"""The field and its renderer: view pooling does not depend on view order, samples stay in the box,
the visual hull empties what a view's mask excludes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.keypoint_nerf.model import KeypointNeRF, KeypointNeRFConfig
from neuralbody.keypoint_nerf.render import ConditionedInputs, box_samples, render_rays
from neuralbody.recon.views import ViewInputs

TINY = dict(num_keypoints=3, input_size=16, channels=8, stacks=1, depth=2, view_mlp=(16,), density_mlp=(8,), blend_mlp=(8,))


def _views(num_views: int, generator: torch.Generator, full_masks: bool = True) -> ViewInputs:
    """Cameras on a ring around the origin at 3 m looking at it, 16 px crops."""
    images = torch.rand(1, num_views, 4, 16, 16, generator=generator)
    images[:, :, 3] = 1.0 if full_masks else 0.0
    R, T = [], []
    for k in range(num_views):
        angle = 2 * np.pi * k / num_views
        centre = np.array([3 * np.cos(angle), 3 * np.sin(angle), 0.0])
        z = -centre / 3
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        rotation = np.stack([x, np.cross(z, x), z])
        R.append(rotation)
        T.append(-rotation @ centre)
    K = torch.tensor([[20.0, 0, 7.5], [0, 20.0, 7.5], [0, 0, 1]]).expand(1, num_views, 3, 3)
    as_t = lambda a: torch.tensor(np.stack(a), dtype=torch.float32)[None]  # noqa: E731
    return ViewInputs(images, K.clone(), as_t(R), as_t(T), torch.zeros(1, num_views, 5))


def _permute(views: ViewInputs, order: list[int]) -> ViewInputs:
    return ViewInputs(views.images[:, order], views.K[:, order], views.R[:, order], views.T[:, order], views.D[:, order])


@pytest.mark.parametrize("encoding", ["relative", "global"])
def test_view_pooling_is_invariant_to_view_order(encoding):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = KeypointNeRF(KeypointNeRFConfig(encoding=encoding, **TINY)).eval()
    views = _views(3, generator)
    keypoints = torch.randn(1, 3, 3, generator=generator) * 0.2
    points = torch.randn(1, 20, 3, generator=generator) * 0.3
    with torch.no_grad():
        sigma, rgb = model.query(model.encode(views.images), views, keypoints, points)
        permuted = _permute(views, [2, 0, 1])
        sigma2, rgb2 = model.query(model.encode(permuted.images), permuted, keypoints, points)
    assert sigma.shape == (1, 20) and rgb.shape == (1, 20, 3) and (sigma >= 0).all()
    assert torch.allclose(sigma, sigma2, atol=1e-5) and torch.allclose(rgb, rgb2, atol=1e-5)
    # the colour is a convex blend of the views' colours at the point
    assert (rgb >= -1e-6).all() and (rgb <= 1 + 1e-6).all()


def test_box_samples_lie_inside_the_box_and_misses_are_dropped():
    box_min, box_max = torch.tensor([-0.5, -0.3, -1.0]), torch.tensor([0.5, 0.3, 1.0])
    generator = torch.Generator().manual_seed(0)
    targets = (torch.rand(50, 3, generator=generator) - 0.5) * torch.tensor([1.0, 0.6, 2.0])
    origins = torch.tensor([3.0, 0.5, 0.2]).expand(50, 3).clone()
    directions = torch.nn.functional.normalize(targets - origins, dim=1)
    rays_o = torch.cat([origins, torch.tensor([[3.0, 0.0, 0.0]])])
    rays_d = torch.cat([directions, torch.tensor([[1.0, 0.0, 0.0]])])  # away from the box
    samples, hit = box_samples(rays_o, rays_d, box_min, box_max, num_samples=16, perturb=True, generator=generator)
    assert hit[:50].all() and not hit[50]
    assert samples.points.shape == (50, 16, 3)
    assert (samples.points >= box_min - 1e-5).all() and (samples.points <= box_max + 1e-5).all()
    assert (samples.t[:, 1:] >= samples.t[:, :-1]).all()


def test_render_outside_the_hull_is_background():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2)
    model = KeypointNeRF(KeypointNeRFConfig(**TINY)).eval()
    background = torch.tensor([0.2, 0.4, 0.6])
    rays_o = torch.tensor([[3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    rays_d = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    for full, expect_empty in ((False, True), (True, False)):
        views = _views(3, generator, full_masks=full)
        inputs = ConditionedInputs(views, model.encode(views.images), torch.zeros(1, 3, 3),
                                   torch.full((3,), -0.5), torch.full((3,), 0.5))  # fmt: skip
        with torch.no_grad():
            out = render_rays(model, inputs, rays_o, rays_d, num_samples=8, background=background)
        assert torch.allclose(out.rgb[1], background) and out.opacity[1] == 0  # misses the box
        if expect_empty:
            assert torch.allclose(out.rgb[0], background) and out.opacity[0] == 0
        else:
            assert out.opacity[0] > 0


def test_front_to_back_rendering_matches_the_reference():
    from neuralbody.keypoint_nerf.render import render_rays_front_to_back

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(3)
    model = KeypointNeRF(KeypointNeRFConfig(**TINY)).eval()
    with torch.no_grad():  # an opaque field: rays stop early
        model.density_mlp[-1].bias.fill_(3.0)
    views = _views(3, generator)
    inputs = ConditionedInputs(views, model.encode(views.images), torch.randn(1, 3, 3, generator=generator) * 0.2,
                               torch.full((3,), -0.5), torch.full((3,), 0.5))  # fmt: skip
    targets = (torch.rand(40, 3, generator=generator) - 0.5) * 0.8
    rays_o = torch.tensor([3.0, 0.2, 0.1]).expand(40, 3).clone()
    rays_d = torch.nn.functional.normalize(targets - rays_o, dim=1)
    background = torch.tensor([0.1, 0.2, 0.3])
    with torch.no_grad():
        reference = render_rays(model, inputs, rays_o, rays_d, num_samples=24, background=background)
        exact = render_rays_front_to_back(model, inputs, rays_o, rays_d, num_samples=24, background=background,
                                          segment=5, min_transmittance=0.0)  # fmt: skip
        early = render_rays_front_to_back(model, inputs, rays_o, rays_d, num_samples=24, background=background,
                                          segment=4, min_transmittance=1e-2)  # fmt: skip
    assert reference.opacity.max() > 0.99
    assert torch.allclose(exact.rgb, reference.rgb, atol=1e-5) and torch.allclose(exact.opacity, reference.opacity, atol=1e-5)
    assert (early.rgb - reference.rgb).abs().max() <= 1e-2 + 1e-5
