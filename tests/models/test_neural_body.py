"""Neural Body model: factory, shapes, body-frame invariance, appearance codes, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from neuralbody.models import FrameBody, build_model
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.models.neural_body import NeuralBody, NeuralBodyConfig

SMALL = {"voxel_size": 0.03, "level_channels": [8, 8, 8, 8], "stage_layers": [1, 1, 0, 0, 0], "code_dim": 8,
         "density_width": 32, "density_layers": 2, "feature_width": 32, "color_width": 16, "appearance_dim": 4}


def _body(seed: int = 0, *, count: int = 400, rh=(0.0, 0.0, 0.0), th=(0.0, 0.0, 0.0)) -> tuple[FrameBody, torch.Tensor]:
    """A random ellipsoid-shell body, and its vertices in the body frame."""
    generator = torch.Generator().manual_seed(seed)
    unit = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=1)
    vertices_body = unit * torch.tensor([0.2, 0.12, 0.8]) + torch.tensor([0.0, 0.0, 0.9])
    rh, th = torch.tensor(rh), torch.tensor(th)
    vertices = vertices_body @ axis_angle_to_matrix(rh).T + th
    return FrameBody(vertices, rh, th), vertices_body


def _model(num_vertices: int = 400, num_frames: int = 3, **overrides) -> NeuralBody:
    torch.manual_seed(0)
    model = build_model("neuralbody", num_vertices=num_vertices, num_frames=num_frames, options={**SMALL, **overrides})
    return model.eval()


def test_axis_angle_matches_scipy():
    rotvec = np.array([0.3, -1.1, 0.7])
    expected = Rotation.from_rotvec(rotvec).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(torch.tensor(rotvec)).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(torch.zeros(3, dtype=torch.float64)).numpy(), np.eye(3))


def test_factory_and_config_validation():
    assert isinstance(_model(), NeuralBody)
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model("nerfies", num_vertices=10, num_frames=1)
    with pytest.raises(ValueError, match="unknown Neural Body options"):
        build_model("neuralbody", num_vertices=10, num_frames=1, options={"voxel": 0.01})
    faithful = NeuralBodyConfig.from_options({"preset": "faithful"})
    assert sum(faithful.level_channels) == 352 and faithful.density_width == 256 and faithful.appearance_dim == 128
    assert faithful.occupancy_margin == 0 and faithful.voxel_size == 0.005 and not faithful.keep_input_level


def test_query_shapes_ranges_and_guards():
    model = _model()
    body, _ = _body()
    field = model.prepare_frame(1, body)
    assert [level.stride for level in field.levels] == [1, 2, 4, 8, 16]
    assert torch.all(field.box_min < body.vertices.min(dim=0).values)
    points = body.vertices[:50] + 0.01
    dirs = torch.nn.functional.normalize(torch.randn(50, 3), dim=1)
    sigma, rgb = field.query(points, dirs)
    assert sigma.shape == (50,) and rgb.shape == (50, 3)
    assert torch.all(sigma >= 0) and torch.all((rgb >= 0) & (rgb <= 1))
    with pytest.raises(ValueError, match="points"):
        field.query(points[:, :2], dirs[:, :2])
    with pytest.raises(ValueError, match="vertices"):
        model.prepare_frame(0, FrameBody(body.vertices[:10], body.Rh, body.Th))


def test_samples_far_from_the_body_are_empty():
    model = _model(occupancy_margin=0.05, occupancy_cell=0.02)
    body, _ = _body()
    field = model.prepare_frame(0, body)
    far = torch.tensor([[1.5, 0.0, 0.9], [0.0, 0.0, 2.5]])
    sigma, rgb = field.query(far, torch.tensor([[0.0, 0.0, 1.0]] * 2))
    assert torch.all(sigma == 0) and torch.all(rgb == 0)


def test_global_rotation_and_translation_do_not_change_the_field():
    """The field is defined in the body frame: moving body and points together changes nothing."""
    model = _model()
    body_a, vertices_body = _body(rh=(0.0, 0.0, 0.0), th=(0.0, 0.0, 0.0))
    rh, th = torch.tensor([0.2, -0.4, 1.3]), torch.tensor([0.5, -1.0, 0.2])
    rotation = axis_angle_to_matrix(rh)
    body_b = FrameBody(vertices_body @ rotation.T + th, rh, th)
    generator = torch.Generator().manual_seed(1)
    points = vertices_body[:80] + 0.02 * torch.randn(80, 3, generator=generator)
    dirs = torch.nn.functional.normalize(torch.randn(80, 3, generator=generator), dim=1)
    sigma_a, rgb_a = model.prepare_frame(0, body_a).query(points, dirs)
    sigma_b, rgb_b = model.prepare_frame(0, body_b).query(points @ rotation.T + th, dirs @ rotation.T)
    torch.testing.assert_close(sigma_b, sigma_a, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rgb_b, rgb_a, rtol=1e-4, atol=1e-4)


def test_unseen_frames_use_the_last_appearance_code():
    model = _model(num_frames=3)
    with torch.no_grad():
        model.appearance.weight.normal_()
    body, _ = _body()
    points, dirs = body.vertices[:20], torch.nn.functional.normalize(torch.randn(20, 3), dim=1)
    rgb = {f: model.prepare_frame(f, body).query(points, dirs)[1] for f in (0, 2, 7)}
    torch.testing.assert_close(rgb[7], rgb[2])
    assert not torch.allclose(rgb[0], rgb[2])
    assert "appearance code" in model.unseen_frame_rule()  # what `neuralbody render` tells the user


def test_gradients_reach_vertex_codes_and_any_vertex_count_works():
    model = _model(num_vertices=1000)
    model.train()
    body, _ = _body(count=1000)
    field = model.prepare_frame(0, body)
    sigma, rgb = field.query(body.vertices[:100], torch.nn.functional.normalize(torch.randn(100, 3), dim=1))
    (sigma.sum() + rgb.sum()).backward()
    assert model.codes_per_vertex.weight.grad is not None
    assert model.codes_per_vertex.weight.grad.abs().sum() > 0
    assert model.appearance.weight.grad[0].abs().sum() > 0


def test_occupied_agrees_with_query_and_band_rendering_matches_dense_sampling():
    """Samples placed only in the occupancy band render what dense uniform sampling renders."""
    from neuralbody.rendering import RenderSettings, render_rays

    model = _model(occupancy_margin=0.05, occupancy_cell=0.02, density_scale=20.0)
    body, _ = _body(rh=(0.3, 0.1, -0.2), th=(0.1, 0.2, 0.0))
    field = model.prepare_frame(0, body)
    generator = torch.Generator().manual_seed(5)
    points = body.vertices[:50] + 0.2 * torch.randn(50, 3, generator=generator)
    occupied = field.occupied(points)
    sigma, _ = field.query(points, torch.nn.functional.normalize(torch.randn(50, 3, generator=generator), dim=1))
    assert occupied.any() and (~occupied).any()
    assert torch.all(sigma[~occupied] == 0)
    no_grid = _model(occupancy_margin=0.0)
    assert no_grid.prepare_frame(0, body).occupied(points) is None
    centre = body.vertices.mean(dim=0)
    rays_o = centre + torch.tensor([[0.0, -3.0, 0.0]]) + torch.randn(64, 3, generator=generator) * torch.tensor([0.15, 0.0, 0.5])
    rays_d = torch.nn.functional.normalize(centre - rays_o + 0.05 * torch.randn(64, 3, generator=generator), dim=1)
    background = torch.tensor([0.2, 0.3, 0.4])
    with torch.no_grad():
        band = render_rays(field, rays_o, rays_d, background=background,
                           settings=RenderSettings(num_samples=192, band_bins=512, early_stop_transmittance=0.0))
        dense = render_rays(field, rays_o, rays_d, background=background,
                            settings=RenderSettings(num_samples=2048, band_bins=0, early_stop_transmittance=0.0))
    assert dense.acc.max() > 0.3  # the rays do see the body
    torch.testing.assert_close(band.acc, dense.acc, atol=0.02, rtol=0)
    torch.testing.assert_close(band.rgb, dense.rgb, atol=0.02, rtol=0)


def test_canonical_points_follow_the_reference_pose():
    """Translation-only pose change: points are carried exactly; no active corner: unchanged."""
    from neuralbody.models.deformer import CarryDeformer, carried_points
    from neuralbody.models.sparse_conv import SparseVolume, sort_coords

    generator = torch.Generator().manual_seed(0)
    voxel = 0.01
    posed = torch.rand(300, 3, generator=generator, dtype=torch.float64) * 0.1  # metres, body frame
    shift = torch.tensor([0.3, -0.2, 0.05], dtype=torch.float64)
    coords = torch.round(posed / voxel).long()
    unique, inverse = sort_coords(coords)
    counts = torch.bincount(inverse).to(torch.float64)[:, None]
    pairs = torch.cat([posed, posed + shift, torch.ones(300, 1, dtype=torch.float64)], dim=1)
    pairs = torch.zeros(unique.shape[0], 7, dtype=torch.float64).index_add(0, inverse, pairs) / counts
    volume = SparseVolume(unique, pairs)
    inside = posed[:50] + 0.003
    far = torch.tensor([[1.0, 1.0, 1.0], [-0.5, 0.0, 0.0]], dtype=torch.float64)
    points = torch.cat([inside, far])
    carried, valid = carried_points(volume, points / voxel, points)
    torch.testing.assert_close(carried[:50], inside + shift)
    torch.testing.assert_close(carried[50:], far)
    assert valid.tolist() == [True] * 50 + [False] * 2
    canonical = CarryDeformer(volume, torch.zeros(3, dtype=torch.float64), voxel).to_canonical(points)
    assert canonical.points.shape == (52, 1, 3) and canonical.valid[:, 0].tolist() == valid.tolist()
    torch.testing.assert_close(canonical.points[:, 0], carried)


def test_reference_pose_is_stored_and_used_by_the_colour_head():
    """The reference is kept in the field dict, and moving it changes colour but not density."""
    body, _ = _body(3)
    model = _model()
    model.eval()
    model.set_reference(body)
    assert bool(model.has_reference)
    torch.testing.assert_close(model.reference_vertices, body.vertices.float())  # Rh = Th = 0
    copy = _model()
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy.reference_vertices, model.reference_vertices)
    points = body.vertices[:64].float() + 0.002
    dirs = torch.nn.functional.normalize(torch.ones_like(points), dim=1)
    with torch.no_grad():
        sigma_a, rgb_a = model.prepare_frame(0, body).query(points, dirs)
        moved = FrameBody(vertices=body.vertices + 0.1, Rh=body.Rh, Th=body.Th)
        model.set_reference(moved)
        sigma_b, rgb_b = model.prepare_frame(0, body).query(points, dirs)
    torch.testing.assert_close(sigma_a, sigma_b)
    assert (rgb_a - rgb_b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="vertices"):
        model.set_reference(FrameBody(vertices=body.vertices[:10], Rh=body.Rh, Th=body.Th))


def test_density_then_colour_equals_query_and_skipping_faint_samples_barely_changes_renders():
    """density + colour give query's values; the renderer's colour skip moves pixels by less than its threshold."""
    from neuralbody.data.cameras import Camera
    from neuralbody.rendering.render import RenderSettings, render_view

    body, _ = _body(5)
    model = _model()
    generator = torch.Generator().manual_seed(1)
    points = body.vertices[:200].float() + 0.03 * torch.randn(200, 3, generator=generator)
    points = torch.cat([points, torch.tensor([[5.0, 5.0, 5.0]])])  # one far outside the occupancy
    dirs = torch.nn.functional.normalize(torch.randn(201, 3, generator=generator), dim=1)
    with torch.no_grad():
        field = model.prepare_frame(0, body)
        sigma, rgb = field.query(points, dirs)
        density = field.density(points)
        rows = torch.arange(201)
        torch.testing.assert_close(density.sigma, sigma)
        torch.testing.assert_close(field.colour(density, rows, dirs), rgb)
        torch.testing.assert_close(field.colour(density, rows[::3], dirs[::3]), rgb[::3])
        assert torch.equal(field.colour(density, rows[-1:], dirs[-1:]), torch.zeros(1, 3))
        with pytest.raises(ValueError, match="rows"):
            field.colour(density, rows[:, None], dirs)
        K = np.array([[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]])
        R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # looking along +y, z up
        camera = Camera(K=K, R=R, T=-R @ np.array([0.0, -3.0, 0.9]), D=np.zeros(5), width=64, height=64)
        full = render_view(field, camera, settings=RenderSettings(num_samples=16, colour_weight_min=0),
                           background=torch.zeros(3))
        skipped = render_view(field, camera, settings=RenderSettings(num_samples=16), background=torch.zeros(3))
    assert full.acc.max() > 0.1  # the body is in view
    difference = (full.rgb - skipped.rgb).abs()
    assert difference.max() < 1e-2 and difference.mean() < 1e-4  # each skipped sample weighs < 1e-2
    torch.testing.assert_close(full.acc, skipped.acc)


def test_render_worker_threads_give_the_same_image():
    """Chunks of rays rendered on two threads compose the image one thread renders."""
    from neuralbody.data.cameras import Camera
    from neuralbody.rendering.render import RenderSettings, render_view

    body, _ = _body(6)
    model = _model()
    K = np.array([[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]])
    R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    camera = Camera(K=K, R=R, T=-R @ np.array([0.0, -3.0, 0.9]), D=np.zeros(5), width=64, height=64)
    threads = torch.get_num_threads()
    with torch.no_grad():
        field = model.prepare_frame(0, body)
        images = [render_view(field, camera, settings=RenderSettings(num_samples=16, chunk_rays=300, workers=n),
                              background=torch.zeros(3)) for n in (1, 2)]
    assert torch.get_num_threads() == threads  # restored after the threaded render
    assert images[0].acc.max() > 0.1
    torch.testing.assert_close(images[1].rgb, images[0].rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(images[1].depth, images[0].depth, rtol=0, atol=1e-5)
