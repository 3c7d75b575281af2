"""Pieces of the synthetic-capture generator: camera ring, motions, regions, texture, shading, CLI."""

from __future__ import annotations

import json

import math

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import project_points
from neuralbody.synth.rig import RigConfig, ring_cameras, split_cameras
from neuralbody.synth.shading import Lighting, lambert
from neuralbody.synth.texture import REGIONS, albedo, bone_region, make_texture, pulse, value_noise


# camera ring ---------------------------------------------------------------------------------
def test_ring_cameras_see_every_point_and_look_at_the_centre():
    rng = np.random.default_rng(0)
    points = rng.uniform([-0.4, -0.3, 0.0], [0.4, 0.3, 1.8], size=(500, 3))
    cameras = ring_cameras(RigConfig(num_views=7, resolution=100, distortion=True, seed=3), points)
    assert len(cameras) == 7 and len({c.name for c in cameras}) == 7
    centre = (points.min(0) + points.max(0)) / 2
    for camera in cameras:
        assert np.allclose(camera.R @ camera.R.T, np.eye(3)) and np.isclose(np.linalg.det(camera.R), 1.0)
        assert np.isclose(np.linalg.norm(camera.center[:2] - centre[:2]), 3.0) and np.isclose(camera.center[2], 1.2)
        assert camera.has_distortion and np.all(np.abs(camera.D) < 0.15)
        uv, z = project_points(camera.undistorted(), centre[None])
        np.testing.assert_allclose(uv[0], [49.5, 49.5], atol=1e-9)  # the target is on the optical axis
        uv, z = project_points(camera, points)
        assert np.all(z > 0) and np.all((uv >= 0).all(1) & (uv <= 99).all(1))
        # camera "down" is world -z: points higher up appear higher in the image
        top, bottom = project_points(camera, np.array([centre + [0, 0, 0.5], centre - [0, 0, 0.5]]))[0]
        assert top[1] < bottom[1]
    undistorted = ring_cameras(RigConfig(num_views=7, resolution=100), points)
    assert not any(c.has_distortion for c in undistorted)


def test_split_cameras_spreads_training_views():
    assert split_cameras(8) == ([0, 2, 4, 6], [1, 3, 5, 7])
    train, test = split_cameras(23)
    assert train == [0, 6, 12, 17] and len(test) == 19 and not set(train) & set(test)
    assert split_cameras(3) == ([0, 1, 2], [])
    with pytest.raises(ValueError):
        split_cameras(0)


def test_rig_guards():
    with pytest.raises(ValueError, match="parallel to up"):  # a camera straight above its target
        ring_cameras(RigConfig(num_views=1, radius=0.0, height=3.0), np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5]]))
    with pytest.raises(ValueError, match="num_views"):
        RigConfig(num_views=0)
    with pytest.raises(ValueError, match="points_world"):
        ring_cameras(RigConfig(), np.zeros((4, 2)))


# texture and shading -------------------------------------------------------------------------
def test_bone_regions_by_name():
    assert REGIONS[bone_region("upperarm01.L")] == "top"
    assert REGIONS[bone_region("lowerleg02.R")] == "trousers"
    assert REGIONS[bone_region("toe3-2.L")] == "shoes"
    assert REGIONS[bone_region("eye.R")] == "eyes"
    assert REGIONS[bone_region("finger2-1.L")] == "skin"


def test_texture_is_seeded_and_has_structure():
    points = torch.rand(4000, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.6, 0.4, 1.7])
    regions = torch.arange(4000) % len(REGIONS)
    first = albedo(make_texture(0, floor_z=0.02), points, regions)
    again = albedo(make_texture(0, floor_z=0.02), points, regions)
    other = albedo(make_texture(1, floor_z=0.02), points, regions)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1
    noise = value_noise(make_texture(0, floor_z=0.0), points * 20)
    assert 0 <= noise.min() and noise.max() <= 1 and noise.std() > 0.05
    # value noise is continuous: a tiny step barely changes it
    assert (value_noise(make_texture(0, floor_z=0.0), points * 20 + 1e-4) - noise).abs().max() < 1e-2
    u = torch.linspace(0, 0.12, 1201)
    band = pulse(u, period=0.06, width=0.02, softness=1e-6)
    assert abs(float(band.mean()) - 0.02 / 0.06) < 0.01  # duty cycle = width / period
    with pytest.raises(ValueError, match="regions"):
        albedo(make_texture(0, floor_z=0.0), points, regions[:5])


def test_lambert():
    lighting = Lighting(key_direction=(0, 0, 1), key=0.5, fill=0.0, ambient=0.25)
    n = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    colour = lambert(torch.full((2, 3), 0.8), n, torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]), lighting)
    np.testing.assert_allclose(colour[0].numpy(), 0.8 * 0.75)  # faces the light
    np.testing.assert_allclose(colour[1].numpy(), 0.8 * 0.25)  # seen from behind: flipped, ambient only
    with pytest.raises(ValueError, match="albedo, normals"):
        lambert(torch.zeros(2, 3), torch.zeros(3, 3), torch.zeros(2, 3))


# motion (needs the body model) ---------------------------------------------------------------
@pytest.mark.anny
def test_anatomical_rotations_move_limbs_the_named_way(anny_body):
    from neuralbody.synth.motion import anatomical_poses

    names = anny_body.joint_names
    program = {"upperleg01.L": [("flex", 0.6)], "upperarm01.R": [("abduct", 0.8)], "lowerleg01.R": [("flex", -0.8)]}
    poses, axes = anatomical_poses(anny_body, program, num_frames=1)
    rest = anny_body(torch.zeros(1, anny_body.pose_dim)).joints[0].numpy()
    posed = anny_body(torch.tensor(poses, dtype=torch.float32)).joints[0].numpy()
    move = lambda joint: posed[names.index(joint)] - rest[names.index(joint)]  # noqa: E731
    assert move("lowerleg01.L") @ axes.front > 0.1  # hip flexion: the knee goes forwards
    assert move("lowerarm01.R") @ -axes.left > 0.05 and move("lowerarm01.R")[2] > 0.05  # arm raised sideways
    assert move("foot.R") @ axes.front < -0.1  # knee bend: the foot goes backwards
    assert np.abs(move("lowerleg01.R")).max() < 1e-5  # the knee bend moves nothing above the knee
    np.testing.assert_allclose(axes.front, [0.0, -1.0, 0.0], atol=0.05)  # Anny faces -y


@pytest.mark.anny
@pytest.mark.parametrize("name", ["sway", "wave", "walk", "dance", "arms_overhead", "squat", "kick", "turn"])
def test_motions_are_deterministic_and_plausible(anny_body, name):
    from neuralbody.synth.motion import make_motion

    motion = make_motion(name, body=anny_body, num_frames=12, seed=0)
    again = make_motion(name, body=anny_body, num_frames=12, seed=0)
    assert torch.equal(motion.poses, again.poses) and torch.equal(motion.Th, again.Th)
    assert motion.poses.shape == (12, anny_body.pose_dim) and motion.Rh.shape == (12, 3)
    assert torch.isfinite(motion.poses).all() and motion.poses.abs().max() < math.pi
    out = anny_body(motion.poses, None, motion.Rh, motion.Th)
    heights = out.vertices[..., 2]
    assert heights.min() > -0.12 and heights.max() < 2.3  # stays on and above the floor, roughly
    assert (out.vertices[1:] - out.vertices[:-1]).norm(dim=-1).max() < 0.4  # smooth at 10 fps
    if name == "walk":
        assert (motion.Th[-1, :2] - motion.Th[0, :2]).norm() > 0.2
    with pytest.raises(ValueError, match="unknown motion"):
        make_motion("moonwalk", body=anny_body, num_frames=2)


@pytest.mark.anny
def test_motions_outside_the_everyday_ones_reach_where_they_say(anny_body):
    """Known answers over a cycle: hands over the head, hips down to knee level with the feet on the
    floor, a foot at hip height, a whole turn; the grounded motions keep the lowest vertex at rest height."""
    from neuralbody.synth.motion import make_motion

    names = anny_body.joint_names
    joint = lambda out, name: out.joints[:, names.index(name)]  # noqa: E731
    rest = anny_body(torch.zeros(1, anny_body.pose_dim))
    head_top = rest.vertices[0, :, 2].max()
    rest_low = rest.vertices[0, :, 2].min()

    def run(name):
        motion = make_motion(name, body=anny_body, num_frames=40, seed=1)
        return motion, anny_body(motion.poses, None, motion.Rh, motion.Th)

    _, overhead = run("arms_overhead")
    assert (joint(overhead, "wrist.L")[:, 2].max() > head_top) and (joint(overhead, "wrist.R")[:, 2].max() > head_top)
    _, squat = run("squat")
    pelvis = joint(squat, "upperleg01.L")[:, 2]
    knee = joint(squat, "lowerleg01.L")[:, 2]
    assert pelvis.max() - pelvis.min() > 0.25 and (pelvis - knee).min() < 0.15  # hips down to near knee height
    kick_motion, kick = run("kick")
    assert joint(kick, "foot.R")[:, 2].max() > 0.6 * joint(kick, "upperleg01.R")[:, 2].max()
    for out in (squat, kick):
        torch.testing.assert_close(out.vertices[..., 2].min(dim=1).values, rest_low.expand(40), atol=1e-4, rtol=0)
    turn_motion, _ = run("turn")
    assert turn_motion.Rh[-1, 2] - turn_motion.Rh[0, 2] > math.pi and torch.all(turn_motion.Th == 0)


@pytest.mark.anny
def test_cli_synth(anny_body, tmp_path, monkeypatch, capsys):
    from neuralbody.cli.main import main
    from neuralbody.synth import generate

    monkeypatch.setattr(generate, "load_body", lambda name: anny_body)
    out = tmp_path / "capture"
    code = main(["synth", str(out), "--frames", "2", "--views", "3", "--res", "32", "--motion", "wave", "--seed", "2"])
    assert code == 0
    meta = json.loads((out / "neuralbody.json").read_text())
    assert meta["motion"] == "wave" and meta["seed"] == 2 and meta["resolution"] == 32 and meta["num_frames"] == 2
    assert meta["distortion"] is False and meta["body_model"] == "anny"
    assert (out / "annots.npy").is_file() and (out / "Camera_02" / "000001.png").is_file()
    assert "synth: 2 frames x 3 views" in capsys.readouterr().out
