"""The synthetic capture's variations each do what they say: people, clothing, motion, lighting,
JPEG files, mask errors, the SMPL-like body files without neuralbody.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuralbody.synth.backdrop import TILE, backdrop_colour
from neuralbody.synth.mask_errors import degrade_mask, signed_distance
from neuralbody.synth.shading import LIGHTING_PRESETS, Lighting, lambert, shade
from neuralbody.synth.smpl_like import SMPL_JOINTS, SMPL_PARENTS, smpl_like_poses, vertex_subset
from neuralbody.synth.texture import REGIONS, TOP, TOP_PATTERNS, TextureStyle, albedo, make_texture


# mask errors ----------------------------------------------------------------------------------
def _person_mask(size: int = 120) -> np.ndarray:
    v, u = np.mgrid[0:size, 0:size]
    body = ((u - 60) / 22.0) ** 2 + ((v - 62) / 45.0) ** 2 < 1.0
    arm = (np.abs(v - 40) < 5) & (u > 30) & (u < 100)
    return body | arm


@pytest.mark.parametrize("amount", [1.0, 2.0, 3.0])
def test_erode_and_dilate_move_the_border_by_the_amount(amount):
    mask = _person_mask()
    distance = signed_distance(mask)  # >= 1 inside, <= -1 outside
    rng = np.random.default_rng(0)
    eroded = degrade_mask(mask, ("erode",), amount, rng)
    dilated = degrade_mask(mask, ("dilate",), amount, rng)
    assert not (eroded & ~mask).any() and not (mask & ~dilated).any()
    removed, added = mask & ~eroded, dilated & ~mask
    # exactly the pixels within `amount` of the other side change (disc structuring element)
    assert removed.any() and added.any()
    np.testing.assert_array_equal(added, (distance < 0) & (-distance <= amount))
    np.testing.assert_array_equal(removed, (distance > 0) & (distance <= amount))


def test_ragged_border_moves_by_about_the_amount_both_ways():
    mask = _person_mask()
    distance = signed_distance(mask)
    ragged = degrade_mask(mask, ("ragged",), 2.0, np.random.default_rng(1))
    changed = ragged != mask
    assert (ragged & ~mask).any() and (mask & ~ragged).any()  # grown in places, shrunk in others
    assert np.abs(distance[changed]).max() <= 2.0 * 5  # within 5 standard deviations of the border
    band = np.abs(distance) <= 2.0
    assert 0.15 < changed[band].mean() < 0.85  # a good part of the border band moved
    assert abs(int(ragged.sum()) - int(mask.sum())) < 0.1 * mask.sum()


def test_holes_are_one_to_three_discs_inside():
    mask = _person_mask()
    for seed in range(5):
        holed = degrade_mask(mask, ("holes",), 2.0, np.random.default_rng(seed))
        removed = mask & ~holed
        assert not (holed & ~mask).any() and removed.any()
        disc = np.pi * 3.0**2  # radius 1.5 x 2 px
        assert 0.6 * disc <= removed.sum() <= 3 * 1.3 * disc
        assert signed_distance(mask)[removed].min() >= 1.0  # never reaches the border


def test_mask_error_guards():
    with pytest.raises(ValueError, match="unknown mask errors"):
        degrade_mask(_person_mask(), ("blur",), 2.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="amount"):
        degrade_mask(_person_mask(), ("erode",), 0.0, np.random.default_rng(0))
    assert not degrade_mask(np.zeros((8, 8), bool), ("dilate",), 2.0, np.random.default_rng(0)).any()


# shading and backdrop -------------------------------------------------------------------------
def test_default_shade_is_the_old_lambert():
    lighting = Lighting(key_direction=(0, 0, 1), key=0.5, fill=0.0, ambient=0.25)
    n = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.6, 0.8]])
    colour = lambert(torch.full((2, 3), 0.8), n, torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]]), lighting)
    torch.testing.assert_close(colour[:, 0], torch.tensor([0.8 * 0.75, 0.8 * (0.25 + 0.5 * 0.8)]))


def test_point_light_falloff_colour_and_shadow():
    lighting = Lighting(key=0.0, fill=0.0, ambient=0.0, point_position=(0.0, 0.0, 2.0), point=0.5,
                        point_colour=(1.0, 0.5, 0.25), point_reference=1.0)
    points = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    normals = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    view = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    colour = shade(torch.ones(2, 3), normals, view, lighting, points=points)
    torch.testing.assert_close(colour[0], torch.tensor([0.5, 0.25, 0.125]))  # 1 m away: full intensity
    torch.testing.assert_close(colour[1], torch.tensor([0.5, 0.25, 0.125]) / 4)  # 2 m: a quarter
    shadowed = shade(torch.ones(2, 3), normals, view, lighting, points=points, point_visible=torch.tensor([0.0, 1.0]))
    assert shadowed[0].abs().max() == 0 and torch.equal(shadowed[1], colour[1])
    with pytest.raises(ValueError, match="surface points"):
        shade(torch.ones(2, 3), normals, view, lighting)


def test_shadow_rays_find_the_occluder():
    from neuralbody.synth.generate import _light_visibility

    # a square at z = 1 over the origin; the key light straight above
    vertices = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    lighting = Lighting(key_direction=(0.0, 0.0, 1.0), shadows=True, point_position=(5.0, 0.0, 0.5), point=1.0)
    points = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    normals = torch.tensor([[0.0, 0.0, 1.0]] * 3)
    key, point = _light_visibility(vertices, faces, points, normals, lighting)
    torch.testing.assert_close(key, torch.tensor([0.0, 1.0, 1.0]))  # under the square: in its shadow
    torch.testing.assert_close(point, torch.tensor([1.0, 1.0, 1.0]))  # the point light is beside it
    assert _light_visibility(vertices, faces, points, normals, Lighting()) == (None, None)


def test_backdrop_floor_tiles_and_wall():
    rays_o = torch.tensor([[0.25, 0.25, 2.0], [0.75, 0.25, 2.0], [0.0, 0.0, 1.0]])
    rays_d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    colour = backdrop_colour(rays_o, rays_d, floor_z=0.0)
    assert TILE == 0.5 and not torch.allclose(colour[0], colour[1])  # neighbouring tiles differ
    assert abs(float(colour[1, 0] - colour[0, 0]) - 0.08) < 1e-6  # the lighter tile
    assert colour[2].min() > 0.4  # the wall


# texture -------------------------------------------------------------------------------------
def test_top_patterns_differ_and_have_fine_detail():
    """On a 10 cm square of the chest, sampled every mm, each pattern has structure at the centimetre scale."""
    x, z = torch.meshgrid(torch.linspace(-0.05, 0.05, 101), torch.linspace(1.25, 1.35, 101), indexing="ij")
    points = torch.stack([x.ravel(), torch.full_like(x.ravel(), -0.12), z.ravel()], dim=1)
    regions = torch.full((points.shape[0],), TOP)
    greys = {}
    for pattern in TOP_PATTERNS:
        colour = albedo(make_texture(3, floor_z=0.02, style=TextureStyle(top_pattern=pattern)), points, regions)
        grey = colour.mean(dim=1).reshape(101, 101)
        greys[pattern] = grey
        assert grey.std() > 0.02, pattern
        edges = ((grey[1:] - grey[:-1]).abs() > 0.02).sum() + ((grey[:, 1:] - grey[:, :-1]).abs() > 0.02).sum()
        assert edges >= 100, pattern  # many sharp edges in 10 cm x 10 cm
    for i, a in enumerate(TOP_PATTERNS):
        for b in TOP_PATTERNS[i + 1 :]:
            assert (greys[a] - greys[b]).abs().mean() > 0.01, (a, b)


def test_dots_are_about_a_centimetre_wide():
    texture = make_texture(0, floor_z=0.0)
    points = torch.rand(20000, 3, generator=torch.Generator().manual_seed(0)) * 0.3
    from neuralbody.synth.texture import feature_distance

    distance = feature_distance(texture, points, cell=0.02)
    assert distance.max() < 0.02 * 3**0.5  # its own cell's feature point is within a cell diagonal
    # one ball of radius 5 mm per (2 cm)^3 cell fills 4/3 pi 0.5^3 / 2^3 = 6.5 % of space
    assert 0.045 < (distance < 0.005).float().mean() < 0.085


def test_style_overrides_only_what_it_names():
    plain = make_texture(7, floor_z=0.0)
    styled = make_texture(7, floor_z=0.0, style=TextureStyle(skin_tone="deep", trousers="light"))
    skin, trousers = REGIONS.index("skin"), REGIONS.index("trousers")
    torch.testing.assert_close(styled.palette[skin, 0], torch.tensor([0.30, 0.19, 0.13]))
    torch.testing.assert_close(styled.palette[trousers, 0], torch.tensor([0.80, 0.77, 0.68]))
    others = [r for r in range(len(REGIONS)) if r not in (skin, trousers)]
    assert torch.equal(plain.palette[others], styled.palette[others])
    assert torch.equal(plain.permutation, styled.permutation) and plain.pattern == "plaid"
    with pytest.raises(ValueError, match="unknown skin_tone"):
        TextureStyle(skin_tone="green")


# SMPL-like body ------------------------------------------------------------------------------
def test_vertex_subset_spreads_points():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (2000, 3))
    points[:1000] *= 0.05  # a dense clump
    subset = vertex_subset(points, 200)
    assert len(np.unique(subset)) == 200 and np.all(np.diff(subset) > 0)
    assert (subset < 1000).sum() < 20  # farthest-point sampling does not oversample the clump
    assert np.array_equal(subset, vertex_subset(points, 200))
    with pytest.raises(ValueError, match="count"):
        vertex_subset(points, 0)


@pytest.mark.anny
def test_smpl_like_poses_recompose_the_stand_in_bones(anny_body):
    """Chaining the 24 relative rotations from Rh gives back the stand-in bones' world rotations."""
    from neuralbody.geometry.rotations import axis_angle_to_matrix
    from neuralbody.synth.motion import make_motion

    motion = make_motion("dance", body=anny_body, num_frames=3, seed=4)
    out = anny_body(motion.poses, None, motion.Rh, motion.Th)
    poses = smpl_like_poses(out.bone_transforms, motion.Rh, anny_body.joint_names)
    assert poses.shape == (3, 72) and np.isfinite(poses).all()
    relative = axis_angle_to_matrix(torch.tensor(poses).reshape(3, 24, 3))
    world = []
    for joint, parent in enumerate(SMPL_PARENTS):
        base = axis_angle_to_matrix(motion.Rh.double()) if parent < 0 else world[parent]
        world.append(base @ relative[:, joint])
    names = anny_body.joint_names
    expected = out.bone_transforms[:, [names.index(bone) for _, bone in SMPL_JOINTS], :3, :3].double()
    torch.testing.assert_close(torch.stack(world, dim=1), expected, atol=1e-5, rtol=0)


# whole captures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zju_like_capture(tmp_path_factory, anny_body):
    """JPEG, ragged masks with holes, SMPL-like body, no neuralbody.json, warm point light, dots, 5 of 7 cameras."""
    from neuralbody.synth.generate import SynthConfig, generate_capture

    config = SynthConfig(frames=4, views=7, resolution=64, seed=9, supersample=1, train_views=5, motion="dance",
                         phenotype=(0.9, 0.7, 0.4, 0.8, 0.3, 0.5), top_pattern="dots", skin_tone="dark",
                         trousers="light", lighting="warm-point", image_format="jpg", jpeg_quality=80,
                         mask_errors=("ragged", "holes"), mask_error_px=1.5, body_format="smpl-like", distortion=True)
    return generate_capture(tmp_path_factory.mktemp("zju_like"), config, body=anny_body, progress=False), config


@pytest.mark.anny
def test_zju_like_capture_holds_what_a_zju_user_holds(zju_like_capture):
    from neuralbody.data.capture import read_capture
    from neuralbody.data.writer import depth_relpath, read_depth_png

    root, config = zju_like_capture
    assert not (root / "neuralbody.json").exists()
    capture = read_capture(root)
    assert capture.meta == {} and capture.num_views == 7 and capture.num_frames == 4
    assert "exact_masks" not in capture.meta
    assert all(camera.has_distortion for camera in capture.cameras)
    for frame in range(capture.num_frames):
        vertices = capture.load_vertices(frame)
        assert vertices.shape == (6890, 3)
        params = capture.load_params(frame)
        assert {k: v.shape for k, v in params.items()} == {"poses": (1, 72), "shapes": (1, 10), "Rh": (1, 3), "Th": (1, 3)}
        mesh = np.load(root / "gt_meshes" / f"{frame}.npz")
        assert mesh["vertices"].shape[0] > 6890 and mesh["faces"].max() < mesh["vertices"].shape[0]
        # the stored vertices are vertices of the true mesh (checked on the first 200)
        distance = np.linalg.norm(mesh["vertices"][:, None, :] - vertices[None, :200], axis=2).min(axis=0)
        assert distance.max() < 1e-6
    changed = []
    for view in range(capture.num_views):
        path = capture.image_path(1, view)
        assert path.suffix == ".jpg" and path.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG files
        mask = capture.load_mask(1, view)
        exact = read_depth_png(root / depth_relpath(capture.image_relpath(1, view))) > 0  # rendered coverage
        changed.append((mask != exact).sum() / max(exact.sum(), 1))
        image = np.asarray(Image.open(path), dtype=np.float64)
        assert image[~mask].mean() < 12  # blacked out outside the (degraded) mask, up to JPEG ringing
    assert 0.02 < np.mean(changed) < 0.6  # the masks are wrong by a visible, bounded amount


@pytest.mark.anny
def test_capture_meta_records_the_variations(anny_body, tmp_path):
    from neuralbody.data.capture import read_capture
    from neuralbody.data.writer import depth_relpath, read_depth_png
    from neuralbody.synth.generate import SynthConfig, generate_capture

    config = SynthConfig(frames=2, views=3, resolution=48, seed=5, supersample=1, train_views=2,
                         phenotype=(0.2, 0.8, 0.5, 0.5, 0.9, 0.5), mask_errors=("dilate",), lighting="hard-side",
                         top_pattern="pinstripe")
    root = generate_capture(tmp_path / "c", config, body=anny_body, progress=False)
    meta = json.loads((root / "neuralbody.json").read_text())
    assert meta["exact_masks"] is False and meta["mask_errors"] == {"kinds": ["dilate"], "pixels": 2.0}
    assert meta["shapes"] == pytest.approx([0.2, 0.8, 0.5, 0.5, 0.9, 0.5])
    assert meta["lighting"] == "hard-side" and meta["appearance"]["top_pattern"] == "pinstripe"
    assert meta["train_cameras"] == [0, 2]
    capture = read_capture(root)
    assert all(capture.image_path(0, v).suffix == ".png" for v in range(capture.num_views))
    # dilated masks contain the rendered coverage (depth > 0) and more
    exact = read_depth_png(root / depth_relpath(capture.image_relpath(0, 1))) > 0
    mask = capture.load_mask(0, 1)
    assert not (exact & ~mask).any() and (mask & ~exact).sum() > 0


@pytest.mark.anny
def test_phenotype_changes_the_person(anny_body):
    from neuralbody.synth.generate import SynthConfig, pose_sequence

    tall = pose_sequence(anny_body, SynthConfig(frames=1, phenotype=(0.5, 0.7, 0.5, 0.5, 0.95, 0.5)))
    short = pose_sequence(anny_body, SynthConfig(frames=1, phenotype=(0.5, 0.7, 0.5, 0.5, 0.05, 0.5)))
    def height(posed) -> float:
        z = posed.out.rest_vertices[0, :, 2]
        return float(z.max() - z.min())

    assert height(tall) > height(short) + 0.1
    with pytest.raises(ValueError, match="6 values"):
        pose_sequence(anny_body, SynthConfig(frames=1, phenotype=(0.5, 0.5)))


@pytest.mark.anny
def test_dance_moves_much_more_than_sway(anny_body):
    from neuralbody.synth.motion import make_motion

    def spread(name):
        motion = make_motion(name, body=anny_body, num_frames=20, seed=1)
        vertices = anny_body(motion.poses, None, motion.Rh, motion.Th).vertices
        return float((vertices - vertices[:1]).norm(dim=-1).mean())

    assert spread("dance") > 2.5 * spread("sway")


def test_lighting_presets_and_config_guards():
    from neuralbody.synth.generate import SynthConfig

    assert LIGHTING_PRESETS["studio"] == Lighting()
    assert all(LIGHTING_PRESETS[name].shadows for name in LIGHTING_PRESETS if name != "studio")
    for bad in ({"lighting": "disco"}, {"image_format": "gif"}, {"mask_errors": ("blur",)}, {"body_format": "smplx"},
                {"phenotype": (1.5, 0, 0, 0, 0, 0)}, {"top_pattern": "camo"}, {"jpeg_quality": 0}):
        with pytest.raises(ValueError):
            SynthConfig(**bad)
