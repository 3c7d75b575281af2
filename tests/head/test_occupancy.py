"""Skipping samples outside the forward-mapped occupancy changes nothing where the density is negligible."""

import numpy as np
import torch
from head_fixtures import tiny_rig

from neuralbody.data.cameras import pixel_rays
from neuralbody.head.avatar import AvatarSettings, ImAvatar
from neuralbody.head.camera_path import orbit_camera
from neuralbody.head.capture import FrameParams
from neuralbody.head.evaluation import render_image
from neuralbody.head.frame import head_frame
from neuralbody.head.occupancy import posed_occupancy
from neuralbody.head.raymarch import render_rays
from neuralbody.head.rig import bone_transforms


def test_occupancy_skips_only_empty_space():
    rig = tiny_rig()
    avatar = ImAvatar(rig, AvatarSettings(voxel=0.01, deform_voxel=0.04))
    with torch.no_grad():
        avatar.canonical[..., 0] = -12.0  # sigma ~ 6e-4 / m: empty
        avatar.canonical[2:-2, 2:-2, 2:-2, 0] = 3.0  # a dense block inside the box
        avatar.canonical[..., 1:] = torch.randn(avatar.canonical[..., 1:].shape)
        avatar.deformation[..., -4:] = torch.log(rig.weights.mean(0) + 1e-6)  # mean skinning weights everywhere
    pose = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.2, 0.1], [0.15, 0.0, 0.0]])
    params = FrameParams(expression=np.zeros(52, np.float32), pose=pose.numpy(),
                         bone_transforms=bone_transforms(rig.rest_joints, pose[None])[0].numpy())
    frame = head_frame(rig, params)
    occupancy = posed_occupancy(avatar, frame)
    assert 0 < int(occupancy.occupied.sum()) < occupancy.occupied.numel()
    camera = orbit_camera(0.3, 0.1, 20)
    o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    forward = torch.tensor(camera.R[2], dtype=torch.float32)
    with torch.no_grad():
        full = render_rays(avatar, frame, o, d, forward, samples=24)
        skipped = render_rays(avatar, frame, o, d, forward, samples=24, occupancy=occupancy)
    assert float(full.opacity.max()) > 0.9
    torch.testing.assert_close(skipped.rgb, full.rgb, atol=2e-3, rtol=0)
    torch.testing.assert_close(skipped.opacity, full.opacity, atol=2e-3, rtol=0)
    image = render_image(avatar, frame, camera, samples=24)  # the occupancy path, whole image
    np.testing.assert_allclose(image.opacity.reshape(-1), skipped.opacity.numpy(), atol=1e-5)
