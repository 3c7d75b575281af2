"""IMAvatar's fields started from the face model: density from the rest mesh, deformation from its closest points."""

import math

import pytest
import torch
from head_fixtures import tiny_rig

from neuralbody.head.avatar import AvatarSettings, ImAvatar
from neuralbody.head.canonical_init import (closest_surface_values_reference, mesh_density_raw, node_positions,
                                            surface_deformation_grid)
from neuralbody.head.grid_box import box_around
from neuralbody.head.training import TrainSettings, start_from_face_model
from neuralbody.skinning.trilinear import trilinear


def test_node_positions_follow_the_grid_layout():
    box = box_around(torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.05, 0.02]]), 0.02, padding=0.0)
    nodes = node_positions(box).reshape(*box.shape, 3)
    torch.testing.assert_close(nodes[2, 1, 0], torch.tensor(box.origin) + torch.tensor([0.04, 0.02, 0.0]))
    torch.testing.assert_close(box.coords(nodes.reshape(-1, 3)).reshape(*box.shape, 3)[1, 2, 1],
                               torch.tensor([1.0, 2.0, 1.0]))


def test_mesh_density_is_high_inside_and_low_outside():
    rig = tiny_rig()  # a sphere of radius 8 cm about (0, -0.04, 0.69)
    box = box_around(rig.rest_vertices, 0.01)
    raw = mesh_density_raw(rig, box, inside_density=300.0, outside_raw=-4.0, scale=100.0, width=0.002)
    sigma = 100.0 * torch.nn.functional.softplus(raw).reshape(-1)
    radius = (node_positions(box) - torch.tensor([0.0, -0.04, 0.69])).norm(dim=1)
    deep, far = radius < 0.05, radius > 0.1
    assert deep.any() and far.any()
    torch.testing.assert_close(sigma[deep], torch.full_like(sigma[deep], 300.0), rtol=1e-3, atol=0.0)
    torch.testing.assert_close(sigma[far], torch.full_like(sigma[far], 100.0 * math.log1p(math.exp(-4.0))),
                               rtol=1e-3, atol=0.0)
    assert bool((sigma[radius < 0.07] > sigma[radius > 0.09].max()).all())
    with pytest.raises(ValueError, match="width"):
        mesh_density_raw(rig, box, inside_density=300.0, outside_raw=-4.0, scale=100.0, width=0.0)


def test_surface_deformation_grid_matches_the_brute_force_oracle_and_the_vertices():
    rig = tiny_rig()
    box = box_around(rig.rest_vertices, 0.03)
    grid = surface_deformation_grid(rig, box)
    nodes = node_positions(box)
    pick = torch.arange(0, nodes.shape[0], 7)
    expected = closest_surface_values_reference(rig, nodes[pick])
    torch.testing.assert_close(grid.reshape(nodes.shape[0], -1)[pick].double(), expected, atol=2e-5, rtol=1e-4)
    # at a vertex itself: the vertex's own blend shapes (the prior's layout) and weights
    avatar = ImAvatar(rig, AvatarSettings(voxel=0.02, deform_voxel=0.03))
    at_vertices = closest_surface_values_reference(rig, rig.rest_vertices[:5]).float()
    torch.testing.assert_close(at_vertices[:, : avatar.prior_basis.shape[1]], avatar.prior_basis[:5], atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.softmax(at_vertices[:, -4:], dim=1), rig.weights[:5], atol=1e-3, rtol=0)


def test_training_starts_imavatar_from_the_face_model():
    rig = tiny_rig()
    avatar = ImAvatar(rig, AvatarSettings(voxel=0.02, deform_voxel=0.04, prior_points=64))
    before = avatar.canonical.detach().clone()
    start_from_face_model(avatar, rig, TrainSettings(mesh_density=0.0, surface_prior=False))
    torch.testing.assert_close(avatar.canonical.detach(), before)
    assert float(avatar.deformation.detach().abs().max()) == 0.0
    start_from_face_model(avatar, rig, TrainSettings(mesh_density=200.0, surface_prior=True))
    density = avatar.canonical[..., 0].detach()
    assert float(density.max()) > 1.0 and float(density.min()) == pytest.approx(-6.0, abs=0.05)
    torch.testing.assert_close(avatar.canonical[..., 1:].detach(), before[..., 1:])
    values = trilinear(avatar.deformation.detach(), avatar.deform_box.coords(rig.rest_vertices)).values
    assert float((torch.softmax(values[:, -4:], dim=1) - rig.weights).abs().mean()) < 0.02
    # the tiny rig's blend shapes are noise per vertex, which a 4 cm grid cannot follow: only "closer"
    with torch.no_grad():
        assert float(avatar.regularisation(None)) < 0.5 * float(ImAvatar(rig, avatar.settings).regularisation(None))
