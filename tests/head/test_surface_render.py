"""IMAvatar's surface render: analytic depths of a moved sphere, hits that map forward onto themselves,
agreement with the Broyden search, the band equal to the volume render where the deformation is rigid,
and ``animate-head --renderer``."""

import math

import numpy as np
import pytest
import torch
from head_fixtures import tiny_rig
from PIL import Image

from neuralbody.cli.main import main

from neuralbody.data.cameras import pixel_rays, ray_box_intersection
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.head.avatar import AvatarSettings, ImAvatar
from neuralbody.head.camera_path import orbit_camera
from neuralbody.head.canonical_surface import extract_canonical_surface, raw_level
from neuralbody.head.capture import FrameParams, read_head_capture
from neuralbody.head.deformation import FrameCode, deform
from neuralbody.head.deformer import find_canonical
from neuralbody.head.fast_render import render_image_fast
from neuralbody.head.frame import HeadFrame, head_frame
from neuralbody.head.raymarch import render_rays
from neuralbody.head.rig import bone_transforms
from neuralbody.head.surface_band import Band
from neuralbody.head.surface_level import choose_level
from neuralbody.head.surface_render import SurfaceSettings, posed_vertices, render_surface, surface_hits
from neuralbody.head.synth import HeadSynthConfig, generate_head_capture
from neuralbody.head.training import TrainSettings, load_run, train_head

CENTRE, RADIUS, LEVEL = torch.tensor([0.0, -0.04, 0.69]), 0.055, 20.0
PLAIN = SurfaceSettings(band=None)


def _sphere_avatar(voxel: float = 0.005) -> ImAvatar:
    """A sphere of density: raw = r* + 1000 (R - |x - c|), so sigma = LEVEL exactly at radius R; random colours."""
    rig = tiny_rig()
    avatar = ImAvatar(rig, AvatarSettings(voxel=voxel, deform_voxel=0.04))
    box = avatar.box
    axes = [torch.arange(n) * box.spacing + o for n, o in zip(box.shape, box.origin)]
    nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        avatar.canonical[..., 0] = raw_level(LEVEL, 100.0) + 1000.0 * (RADIUS - (nodes - CENTRE).norm(dim=-1))
        avatar.canonical[..., 1:] = torch.randn(*box.shape, 3, generator=generator)
    return avatar


def _rigid_frame(angle: float = 0.3) -> tuple[HeadFrame, torch.Tensor]:
    """Every bone moved by one rigid G (a turn about an oblique axis and a shift), zero fields: d(x) = G x."""
    g = torch.eye(4)
    g[:3, :3] = axis_angle_to_matrix(torch.tensor([[0.2, 0.1, 1.0]]) / math.sqrt(1.05) * angle)[0]
    g[:3, 3] = torch.tensor([0.01, -0.02, 0.005]) + CENTRE - g[:3, :3] @ CENTRE
    code = FrameCode(expression=torch.zeros(52), pose_feature=torch.zeros(27), transforms=g.expand(4, 4, 4).clone())
    centre = g[:3, :3] @ CENTRE + g[:3, 3]
    return HeadFrame(code=code, pose=torch.zeros(4, 3), box_min=centre - 0.09, box_max=centre + 0.09), g


def _nonrigid(avatar: ImAvatar) -> HeadFrame:
    """Random expression and corrective fields, the rig's mean skinning weights, a posed neck, head and jaw."""
    rig = tiny_rig()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        avatar.deformation.normal_(0.0, 0.003, generator=generator)
        avatar.deformation[..., -4:] = torch.log(rig.weights.mean(0) + 1e-6) + \
            torch.randn(*avatar.deformation.shape[:3], 4, generator=generator)
    pose = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.2, 0.1], [0.2, 0.0, 0.0]])
    params = FrameParams(expression=(torch.rand(52, generator=generator) * 0.5).numpy(), pose=pose.numpy(),
                         bone_transforms=bone_transforms(rig.rest_joints, pose[None])[0].numpy())
    return head_frame(rig, params)


def test_raw_level_inverts_the_density_and_extraction_guards():
    for level in (0.5, 20.0, 3000.0):
        assert 100.0 * math.log1p(math.exp(raw_level(level, 100.0))) == pytest.approx(level, rel=1e-9)
    avatar = _sphere_avatar(voxel=0.01)
    with pytest.raises(ValueError, match="above the canonical density"):
        extract_canonical_surface(avatar, 1e9)
    with pytest.raises(ValueError, match="subdivide"):
        extract_canonical_surface(avatar, LEVEL, subdivide=0)


def test_surface_depth_of_a_moved_sphere_is_the_analytic_one():
    avatar = _sphere_avatar()
    surface = extract_canonical_surface(avatar, LEVEL)
    radii = (surface.vertices - CENTRE).norm(dim=1)
    assert float((radii - RADIUS).abs().max()) < 3e-4  # the vertices lie on the level set
    frame, g = _rigid_frame()
    camera = orbit_camera(0.4, 0.1, 40)
    shown = render_surface(avatar, surface, frame, camera, settings=PLAIN, workers=1)
    o, d = pixel_rays(camera)
    centre = (g[:3, :3] @ CENTRE + g[:3, 3]).numpy()
    b = np.einsum("ni,ni->n", d, o - centre)
    disc = b * b - (np.square(o - centre).sum(axis=1) - RADIUS ** 2)
    t = -b - np.sqrt(np.clip(disc, 0.0, None))
    depth = (t * (d @ camera.R[2])).reshape(40, 40)
    clear = (disc > (0.2 * RADIUS) ** 2).reshape(40, 40)  # away from the rim
    assert clear.sum() > 100 and (shown.opacity[clear] == 1.0).all()
    # facets are chords of the sphere (5 mm voxels): within a fifth of a voxel, 0.3 mm on average
    np.testing.assert_allclose(shown.surface[clear], depth[clear], atol=1e-3)
    assert float(np.abs(shown.surface[clear] - depth[clear]).mean()) < 3e-4
    assert (shown.opacity[(disc < 0).reshape(40, 40)] == 0.0).all()


def _hits(avatar: ImAvatar, frame: HeadFrame, subdivide: int):
    surface = extract_canonical_surface(avatar, LEVEL, subdivide=subdivide)
    camera = orbit_camera(-0.3, 0.2, 24)
    o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    near, far, inside = ray_box_intersection(o, d, frame.box_min, frame.box_max)
    o, d, near, far = o[inside], d[inside], near[inside], far[inside]
    hits = surface_hits(surface, posed_vertices(avatar, surface, frame), o, d, near, far)
    return hits, o[hits.rows] + hits.t[:, None] * d[hits.rows]


def test_hits_map_forward_to_themselves_and_agree_with_the_search():
    avatar = _sphere_avatar(voxel=0.008)
    frame = _nonrigid(avatar)
    values = avatar.fold(frame)
    errors = []
    for subdivide in (1, 2):
        hits, world = _hits(avatar, frame, subdivide)
        assert hits.rows.numel() > 40
        mapped = deform(hits.canonical, values, avatar.deform_box, frame.code.transforms)[0]
        errors.append(float((mapped - world).norm(dim=1).max()))
    # d(x_c) is the hit up to the linearisation of d over a facet: second order in the facet's size
    assert errors[0] < 1e-3 and errors[1] < 0.5 * errors[0]
    assert float((hits.canonical - CENTRE).norm(dim=1).sub(RADIUS).abs().max()) < 5e-4  # x_c on the canonical sphere
    with torch.no_grad():
        found = find_canonical(world, avatar.deformation, avatar.deform_box, frame.code, frame_values=values)
    gap = (found.points - hits.canonical[:, None, :]).norm(dim=2).masked_fill(~found.valid, float("inf"))
    assert float(gap.min(dim=1).values.max()) < 1e-3  # the search finds the mesh's canonical point


def test_band_equals_the_volume_render_where_the_deformation_is_rigid():
    avatar = _sphere_avatar(voxel=0.008)
    frame, _ = _rigid_frame(0.5)
    surface = extract_canonical_surface(avatar, LEVEL)
    camera = orbit_camera(0.2, -0.1, 28)
    whole = SurfaceSettings(band=Band(front=1.0, back=1.0, refine=0))
    shown = render_surface(avatar, surface, frame, camera, settings=whole, workers=2)
    o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    with torch.no_grad():  # every sample searched (no occupancy): the exact volume render
        rays = render_rays(avatar, frame, o, d, torch.tensor(camera.R[2], dtype=torch.float32))
    volume = {name: getattr(rays, name).reshape(28, 28, -1).squeeze(2).numpy() for name in
              ("rgb", "opacity", "depth", "surface")}
    hit = shown.opacity > 0
    assert hit.sum() > 50 and (volume["opacity"][~hit] < 0.5).all()  # only the rim's fog is missed
    for name in ("rgb", "opacity", "depth", "surface"):
        np.testing.assert_allclose(getattr(shown, name)[hit], volume[name][hit], atol=2e-3, err_msg=name)


def test_chord_steps_bring_the_band_towards_the_volume_render():
    avatar = _sphere_avatar(voxel=0.008)
    frame = _nonrigid(avatar)
    surface = extract_canonical_surface(avatar, LEVEL)
    camera = orbit_camera(0.1, 0.0, 24)
    volume = render_image_fast(avatar, frame, camera, workers=1)
    errors = []
    for refine in (0, 2):
        settings = SurfaceSettings(band=Band(front=0.03, back=0.05, refine=refine))
        shown = render_surface(avatar, surface, frame, camera, settings=settings, workers=1)
        errors.append(float(np.abs(shown.rgb - volume.rgb)[shown.opacity > 0].mean()))
    assert errors[1] < 0.5 * errors[0]


def test_level_choice_matches_the_volume_silhouette():
    avatar = _sphere_avatar(voxel=0.01)
    choice = choose_level(avatar, tiny_rig(), levels=(2.0, LEVEL, 1e9), resolution=24, azimuths=(0.0,), workers=1)
    assert list(choice.levels) == [2.0, LEVEL]  # the level above the density's maximum is skipped
    assert choice.surface.level == LEVEL and choice.iou[1] > 0.9


def test_animate_head_renders_the_surface_and_refuses_it_for_nerf_expr(tmp_path, caplog, capsys):
    config = HeadSynthConfig(train_frames=1, test_frames=1, strong_frames=1, resolution=16, supersample=1)
    capture = read_head_capture(generate_head_capture(tmp_path / "cap", config, rig=tiny_rig(), progress=False))
    small = AvatarSettings(voxel=0.01, deform_voxel=0.04, prior_points=16)
    runs = {}
    for model in ("imavatar", "nerf-expr"):
        runs[model] = tmp_path / model
        train_head(capture, runs[model], TrainSettings(model=model, steps=1, rays=8, samples=4, prior_warmup=1),
                   avatar_settings=small, progress=False)
    avatar = load_run(runs["imavatar"])[0]
    with torch.no_grad():  # a dense ball in the middle of the canonical box
        avatar.canonical[..., 0] = -12.0
        avatar.canonical[4:-4, 4:-4, 4:-4, 0] = 3.0
    torch.save({"model": avatar.state_dict(), "step": 1}, runs["imavatar"] / "checkpoint.pt")
    params = str(capture.root / "animation" / "strong.npz")
    for renderer in ("surface", "auto"):
        out = tmp_path / f"anim_{renderer}"
        assert main(["animate-head", str(runs["imavatar"]), "--params", params, "--out", str(out), "--res", "16",
                     "--renderer", renderer, "--no-progress"]) == 0
        image = np.asarray(Image.open(out / "000000.png"))
        assert image.shape == (16, 16, 3) and image.max() > 0 and image[0, 0].max() == 0  # the head on black
        assert "surface (level" in capsys.readouterr().out
    assert main(["animate-head", str(runs["nerf-expr"]), "--params", params, "--out", str(tmp_path / "a"),
                 "--renderer", "surface", "--no-progress"]) == 1
    assert "nerf-expr has no canonical space" in caplog.text
