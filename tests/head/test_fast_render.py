"""The fast animation render equals the slow one (render_image, the oracle) up to float rounding."""

import numpy as np
import pytest
import torch
from head_fixtures import tiny_rig

from neuralbody.head.avatar import AvatarSettings, ImAvatar, NerfExpr
from neuralbody.head.camera_path import orbit_camera
from neuralbody.head.capture import FrameParams
from neuralbody.head.evaluation import render_image
from neuralbody.head.fast_render import render_image_fast
from neuralbody.head.frame import head_frame
from neuralbody.head.rig import bone_transforms


def _frame(rig, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    pose = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.2, 0.1], [0.15, 0.0, 0.0]])
    expression = torch.rand(52, generator=generator) * 0.5
    params = FrameParams(expression=expression.numpy(), pose=pose.numpy(),
                         bone_transforms=bone_transforms(rig.rest_joints, pose[None])[0].numpy())
    return head_frame(rig, params)


def _imavatar(rig):
    avatar = ImAvatar(rig, AvatarSettings(voxel=0.01, deform_voxel=0.04))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        avatar.canonical[..., 0] = -12.0
        avatar.canonical[2:-2, 2:-2, 2:-2, 0] = 3.0 + torch.randn(avatar.canonical[2:-2, 2:-2, 2:-2, 0].shape,
                                                                 generator=generator)
        avatar.canonical[..., 1:] = torch.randn(avatar.canonical[..., 1:].shape, generator=generator)
        avatar.deformation.normal_(0.0, 0.002, generator=generator)  # expression and corrective fields
        avatar.deformation[..., -4:] = torch.log(rig.weights.mean(0) + 1e-6)
    return avatar


def _nerf_expr(rig):
    torch.manual_seed(2)
    avatar = NerfExpr(rig, AvatarSettings(voxel=0.01, features=4, hidden=8))
    with torch.no_grad():
        avatar.mlp[-1].bias[0] = 2.0
    return avatar


@pytest.mark.parametrize("make", [_imavatar, _nerf_expr])
@pytest.mark.parametrize("workers", [1, 2])
def test_fast_render_equals_slow_render(make, workers):
    rig = tiny_rig()
    avatar, frame, camera = make(rig), _frame(rig), orbit_camera(0.3, 0.1, 20)
    slow = render_image(avatar, frame, camera, samples=16, chunk=64)
    fast = render_image_fast(avatar, frame, camera, samples=16, chunk=50, workers=workers)
    assert slow.opacity.max() > 0.5 and (slow.opacity < 1e-6).any()  # the head and empty pixels
    for name in ("rgb", "opacity", "depth", "surface"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), atol=1e-4, rtol=0, err_msg=name)


def test_folds_equal_the_unfolded_queries():
    rig = tiny_rig()
    frame = _frame(rig, seed=3)
    points = rig.rest_vertices[::7].clone() + 0.003
    for avatar in (_imavatar(rig), _nerf_expr(rig)):
        with torch.no_grad():
            sigma, rgb = avatar.query(points, frame)
            folded_sigma, folded_rgb = avatar.query(points, frame, frame_values=avatar.fold(frame))
        assert float(sigma.max()) > 1.0
        torch.testing.assert_close(folded_sigma, sigma, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(folded_rgb, rgb, atol=1e-5, rtol=0)


def test_fast_render_rejects_bad_arguments():
    rig = tiny_rig()
    with pytest.raises(ValueError, match="samples"):
        render_image_fast(_nerf_expr(rig), _frame(rig), orbit_camera(0.3, 0.1, 8), samples=1)
