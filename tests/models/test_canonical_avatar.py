"""The canonical avatar on SMPL's 24-bone skeleton (a tube body in an SMPL model file): the posed density
is the canonical density at the correspondence, the shading turns with the pose, gradients reach the
canonical networks and the weight grid, compiled == prepared, checkpoints size the rig."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuralbody.body.frame_body import BodyPose, FrameBody
from neuralbody.body.smpl import load_smpl
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.models import build_model
from neuralbody.models.canonical_avatar import AvatarConfig, CanonicalAvatar
from neuralbody.models.canonical_body import bone_transforms, canonical_rig
from neuralbody.skinning.trilinear import trilinear
from tube_body import write_smpl_npz

TINY = {"skinning_voxel": 0.04, "skinning_padding": 0.1, "prior_voxel": 0.03, "prior_padding": 0.08,
        "hash_cells": [0.08, 0.04], "hash_log2": 10, "hidden": 16, "feature_dim": 7, "colour_hidden": 8,
        "shading_hidden": 8, "surface_width": 0.02, "tolerance": 1e-5}


@pytest.fixture(scope="module")
def tubes(tmp_path_factory):
    """(model file path, SMPL body model, tube body) of the 24-joint tube body."""
    path = tmp_path_factory.mktemp("avatar_tubes") / "tubes.npz"
    tube = write_smpl_npz(path)
    return path, load_smpl(path), tube


def _avatar(tubes, **options) -> CanonicalAvatar:
    path, body, _ = tubes
    torch.manual_seed(0)
    model = build_model("avatar", num_vertices=0, num_frames=3, options={**TINY, "body_model_path": str(path), **options})
    model.set_rig(canonical_rig(body))
    with torch.no_grad():  # a trained-looking colour: the tables and heads away from their start
        model.texture_grid.tables.normal_(0.0, 0.5)
        model.density_mlp[2].weight.normal_(0.0, 0.3)
    return model


def _pose() -> torch.Tensor:
    """Elbows bent 90 degrees, a knee bent, a hip flexed (SMPL pose vector, 72 values)."""
    pose = torch.zeros(72)
    pose[3 * 18 + 1], pose[3 * 19 + 1] = -math.pi / 2, math.pi / 2
    pose[3 * 4] = math.pi / 2
    pose[3 * 1] = -0.8
    return pose


def _frame(tubes, pose=None, rh=(0.1, 0.4, 0.3), th=(0.3, -0.2, 0.1)) -> FrameBody:
    _, body, _ = tubes
    pose = _pose() if pose is None else pose
    rh, th = torch.tensor(rh), torch.tensor(th)
    out = body(pose[None], Rh=rh[None], Th=th[None])
    return FrameBody(out.vertices[0], rh, th, BodyPose("smpl", pose, None))


def _mid_limb(tubes) -> torch.Tensor:
    """Canonical points near the tube surface where one bone holds all the weight, with small offsets."""
    _, body, tube = tubes
    count = tube.vertices.shape[0]
    rest = torch.tensor(tube.vertices, dtype=torch.float32)
    rigid = torch.nonzero(body.lbs_weights[:count].max(dim=1).values > 0.999).squeeze(1)
    generator = torch.Generator().manual_seed(0)
    picked = rigid[torch.randperm(rigid.numel(), generator=generator)[:300]]
    return rest[picked] + 0.008 * torch.randn(300, 3, generator=generator)


def test_bone_transforms_are_the_body_models(tubes):
    _, body, _ = tubes
    rig = canonical_rig(body)
    pose = 0.4 * torch.randn(72, generator=torch.Generator().manual_seed(1))
    expected = body(pose[None]).bone_transforms[0]
    torch.testing.assert_close(bone_transforms(rig.rest_joints, rig.parents, pose), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="72 values"):
        bone_transforms(rig.rest_joints, rig.parents, pose[:69])


def test_posed_density_is_the_canonical_density_at_the_correspondence(tubes):
    model = _avatar(tubes).eval()
    body = _frame(tubes)
    field = model.compile_frame(0, body)
    canonical = _mid_limb(tubes)
    with torch.no_grad():
        posed_body = field.deformer.field.skin(canonical)
        world = posed_body @ axis_angle_to_matrix(body.Rh).T + body.Th
        sigma = field.density(world).sigma
        expected, _, _ = model.canonical(canonical)
        found = field.deformer.correspondences(posed_body)
    # the posed density is the largest canonical density over the valid candidates (SNARF) ...
    alone = found.valid.sum(dim=1) == 1
    assert float(alone.float().mean()) > 0.8 and float(found.valid.any(dim=1).float().mean()) > 0.98
    torch.testing.assert_close(sigma[alone], expected[alone], rtol=1e-3, atol=0.1)
    # ... and where several parts answer, the maximum over them
    several = torch.nonzero(found.valid.sum(dim=1) > 1).squeeze(1)
    for row in several.tolist():
        candidates = found.points[row][found.valid[row]]
        with torch.no_grad():
            best = model.canonical(candidates)[0].max()
        torch.testing.assert_close(sigma[row], best, rtol=1e-4, atol=1e-3)
    assert float(sigma.max()) > 0.5 * model.config.max_density  # the points inside the tubes are dense
    # far from the body: nothing
    with torch.no_grad():
        far = field.density(body.Th + torch.tensor([[3.0, 0.0, 0.0]])).sigma
    assert float(far[0]) == 0.0


def test_colour_is_albedo_times_the_shading_of_the_posed_normal(tubes):
    """Where one bone holds a point, its normal turns with that bone and the global rotation: an
    independent computation from the body model's bone transform."""
    _, body_model, _ = tubes
    model = _avatar(tubes).eval()
    body = _frame(tubes)
    field = model.compile_frame(0, body)
    canonical = _mid_limb(tubes)
    with torch.no_grad():
        posed_body = field.deformer.field.skin(canonical)
        world = posed_body @ axis_angle_to_matrix(body.Rh).T + body.Th
        density = field.density(world)
        rgb = field.colour(density, torch.arange(world.shape[0]), torch.zeros_like(world))
        _, rgb_query = field.query(world, torch.zeros_like(world))
        weights = model.skinning.weights(canonical)
        bone = weights.argmax(dim=1)
        rotation = body_model(body.pose.poses[None]).bone_transforms[0, bone, :3, :3]  # (N, 3, 3) body frame
        _, features, prior = model.canonical(canonical)
        normals = axis_angle_to_matrix(body.Rh) @ (rotation @ F.normalize(prior, dim=1)[:, :, None])
        expected = (model.albedo(features) * model.shading(normals[:, :, 0])).clamp_max(1.0)
    chosen = (weights.max(dim=1).values > 0.99) & (density.sigma > 0)
    assert int(chosen.sum()) > 100
    torch.testing.assert_close(rgb[chosen], expected[chosen], atol=2e-3, rtol=0)
    torch.testing.assert_close(rgb, rgb_query)


def test_a_turned_body_turns_the_normals(tubes):
    model = _avatar(tubes).eval()
    canonical = _mid_limb(tubes)[:50]
    _, _, prior = model.canonical(canonical)
    straight = model.compile_frame(0, _frame(tubes, rh=(0.0, 0.0, 0.0)))
    turned = model.compile_frame(0, _frame(tubes, rh=(0.0, 0.0, math.pi / 2)))
    with torch.no_grad():
        a = straight.world_normals(canonical, prior)
        b = turned.world_normals(canonical, prior)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(b, a @ quarter.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(50), atol=1e-5, rtol=0)


def _near_surface(body: FrameBody, count: int = 400) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    rows = torch.randint(0, body.vertices.shape[0] - 24, (count,), generator=generator)  # tube vertices only
    return body.vertices[rows] + 0.01 * torch.randn(count, 3, generator=generator)


def test_gradients_reach_the_canonical_networks_and_the_weight_grid(tubes):
    model = _avatar(tubes, learn_skinning=True).train()
    body = _frame(tubes)
    field = model.prepare_frame(0, body)
    points = _near_surface(body)
    sigma, rgb = field.query(points, torch.zeros_like(points))
    (sigma.mean() / 100 + rgb.sum()).backward()
    for name, parameter in [("texture_grid.tables", model.texture_grid.tables), ("density_mlp", model.density_mlp[0].weight),
                            ("colour_mlp", model.colour_mlp[2].weight), ("shading_mlp", model.shading_mlp[0].weight),
                            ("skinning.logits", model.skinning.logits)]:
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, name
    # the weight grid stays fixed unless asked
    frozen = _avatar(tubes).train()
    sigma, rgb = frozen.prepare_frame(0, body).query(points, torch.zeros_like(points))
    (sigma.sum() + rgb.sum()).backward()
    assert frozen.skinning.logits.grad is None and float(frozen.density_mlp[0].weight.grad.abs().sum()) > 0


def test_compiled_frame_equals_the_training_field(tubes):
    model = _avatar(tubes).eval()
    body = _frame(tubes)
    points = _near_surface(body)
    dirs = F.normalize(torch.randn(points.shape, generator=torch.Generator().manual_seed(4)), dim=1)
    sigma, rgb = model.prepare_frame(2, body).query(points, dirs)
    compiled = model.compile_frame(2, body)
    with torch.no_grad():
        sigma_fast, rgb_fast = compiled.query(points, dirs)
        density = compiled.density(points)  # density then colour, as the renderer asks, gives the same
        rgb_split = compiled.colour(density, torch.arange(points.shape[0]), dirs)
    assert float((sigma > 1).float().mean()) > 0.3
    torch.testing.assert_close(sigma_fast, sigma.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(rgb_fast, rgb.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rgb_split, rgb_fast)
    occupied = compiled.occupied(points)
    assert bool(occupied.all()) and not bool(compiled.occupied(points + 2.0).any())


def test_checkpoints_size_the_rig_and_set_reference_builds_it(tubes):
    path, _, _ = tubes
    model = _avatar(tubes).eval()
    body = _frame(tubes)
    fresh = build_model("avatar", num_vertices=0, num_frames=3, options={**TINY, "body_model_path": str(path)})
    with pytest.raises(ValueError, match="no rig"):
        fresh.prepare_frame(0, body)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    points = _near_surface(body, 100)
    with torch.no_grad():
        expected = model.compile_frame(0, body).query(points, torch.zeros_like(points))
        got = fresh.compile_frame(0, body).query(points, torch.zeros_like(points))
    torch.testing.assert_close(got, expected)
    assert fresh.joint_names == model.joint_names and len(fresh.joint_names) == 24
    built = build_model("avatar", num_vertices=0, num_frames=3, options={**TINY, "body_model_path": str(path)})
    built.set_reference(body)  # loads the body model named by the pose, with its shapes
    torch.testing.assert_close(built.prior_values, model.prior_values)
    torch.testing.assert_close(built.skinning.logits, model.skinning.logits)
    with pytest.raises(ValueError, match="poses"):
        build_model("avatar", num_vertices=0, num_frames=3, options=TINY).set_reference(
            FrameBody(body.vertices, body.Rh, body.Th))
    with pytest.raises(ValueError, match="no body-model poses"):
        model.prepare_frame(0, FrameBody(body.vertices, body.Rh, body.Th))


def test_the_avatar_keeps_no_per_frame_state(tubes):
    """The same pose renders the same at any frame index, so unseen frames need no rule."""
    model = _avatar(tubes).eval()
    body = _frame(tubes)
    points = _near_surface(body, 50)
    with torch.no_grad():
        first = model.compile_frame(0, body).query(points, torch.zeros_like(points))
        later = model.compile_frame(7, body).query(points, torch.zeros_like(points))
    torch.testing.assert_close(later, first)
    assert model.unseen_frame_rule() is None


def test_options_are_checked():
    with pytest.raises(ValueError, match="unknown avatar options"):
        AvatarConfig.from_options({"voxel_size": 0.01})
    with pytest.raises(ValueError, match="positive"):
        AvatarConfig.from_options({"candidates": 0})
    assert AvatarConfig.from_options({"preset": "fast", "hash_cells": [0.1]}).hash_cells == (0.1,)


def test_surface_prior_of_a_sphere():
    """Signed distances and normals of an icosphere: known answers up to the mesh's flatness."""
    import trimesh

    from neuralbody.models.canonical_body import surface_prior

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    prior = surface_prior(torch.tensor(sphere.vertices), torch.tensor(sphere.faces), voxel_size=0.05, padding=0.1)
    points = (torch.rand(500, 3, generator=torch.Generator().manual_seed(5)) - 0.5) * 0.76  # inside the 0.4 m box
    values = trilinear(prior.values, (points - prior.origin) / prior.spacing).values
    radius = points.norm(dim=1)
    torch.testing.assert_close(values[:, 0], radius - 0.3, atol=0.012, rtol=0)  # trilinear on 5 cm nodes
    near = (radius - 0.3).abs() < 0.05
    cosine = (F.normalize(values[near, 1:], dim=1) * points[near] / radius[near, None]).sum(dim=1)
    assert float(cosine.min()) > 0.97
    assert prior.values.shape[3] == 4 and float(prior.values[..., 0].min()) < -0.25
