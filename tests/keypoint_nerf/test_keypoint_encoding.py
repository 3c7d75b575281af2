"""The spatial encodings: known answers, the slow oracle, the distance weighting."""

from __future__ import annotations

import math

import pytest
import torch

from neuralbody.keypoint_nerf.encoding import (
    encoding_size,
    global_encoding,
    positional_encoding,
    relative_keypoint_encoding,
    relative_keypoint_encoding_reference,
)


def _rotation_z_along_world_x() -> torch.Tensor:
    """World-to-camera rotation whose camera z axis is world +x (rows: camera axes in world)."""
    return torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def test_positional_encoding_known_values():
    out = positional_encoding(torch.tensor([[0.25]]), 2)
    expected = [0.25, math.sin(math.pi / 4), math.cos(math.pi / 4), math.sin(math.pi / 2), math.cos(math.pi / 2)]
    assert out.shape == (1, 5)
    assert torch.allclose(out[0], torch.tensor(expected), atol=1e-6)
    assert positional_encoding(torch.zeros(4, 3), 0).shape == (4, 3)


def test_relative_depth_in_each_camera_and_distance_weight():
    sigma = 0.1
    points = torch.tensor([[[0.3, 0.2, 1.0]]])  # (1, 1, 3)
    keypoints = torch.tensor([[[0.0, 0.0, 0.9], [0.3, 0.2, 1.0]]])  # (1, 2, 3)
    R = torch.stack([torch.eye(3), _rotation_z_along_world_x()])[None]  # (1, 2, 3, 3)
    out = relative_keypoint_encoding(points, keypoints, R, frequencies=0, sigma=sigma)
    assert out.shape == (1, 2, 1, 2)
    weight = math.exp(-(0.3**2 + 0.2**2 + 0.1**2) / (2 * sigma**2))
    # camera 0 looks along world z: depth difference 1.0 - 0.9; camera 1 along world x: 0.3 - 0.0
    assert out[0, 0, 0, 0].item() == pytest.approx(weight * 0.1, rel=1e-5)
    assert out[0, 1, 0, 0].item() == pytest.approx(weight * 0.3, rel=1e-5)
    # a point on a keypoint: weight 1, depth 0
    assert out[0, :, 0, 1].abs().max().item() < 1e-7
    with_freq = relative_keypoint_encoding(points, keypoints, R, frequencies=1, sigma=sigma)
    assert with_freq[0, 0, 0, 5].item() == pytest.approx(1.0)  # cos(0) of the coincident keypoint, weight 1


def test_far_keypoints_fade_out():
    points = torch.tensor([[[0.0, 0.0, 0.0]]])
    keypoints = torch.tensor([[[0.0, 0.0, 0.05], [0.0, 0.0, 1.0]]])
    out = relative_keypoint_encoding(points, keypoints, torch.eye(3)[None, None], frequencies=2, sigma=0.1)
    near, far = out[0, 0, 0, :5], out[0, 0, 0, 5:]
    assert far.abs().max().item() < 1e-10 and near.abs().max().item() > 0.5
    # the translation of the camera does not enter, a shift of everything together does not change it
    shifted = relative_keypoint_encoding(points + 2.0, keypoints + 2.0, torch.eye(3)[None, None], frequencies=2, sigma=0.1)
    assert torch.allclose(out, shifted, atol=1e-6)


def test_relative_encoding_matches_the_slow_reference():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64) * 0.3
    keypoints = torch.randn(2, 4, 3, generator=generator, dtype=torch.float64) * 0.3
    R = torch.linalg.qr(torch.randn(2, 3, 3, 3, generator=generator, dtype=torch.float64)).Q
    fast = relative_keypoint_encoding(points, keypoints, R, frequencies=3, sigma=0.2)
    slow = relative_keypoint_encoding_reference(points, keypoints, R, frequencies=3, sigma=0.2)
    assert fast.shape == (2, 3, 5, 4 * 7) == slow.shape
    assert torch.allclose(fast, slow, atol=1e-10)


def test_global_encoding_is_the_camera_coordinates_encoded():
    points = torch.tensor([[[1.0, 2.0, 3.0]]])
    R, T = _rotation_z_along_world_x()[None, None], torch.tensor([[[0.0, 0.0, 4.0]]])
    out = global_encoding(points, R, T, frequencies=1)
    assert out.shape == (1, 1, 1, encoding_size("global", num_keypoints=7, frequencies=1))
    camera = [2.0, -3.0, 5.0]
    assert torch.allclose(out[0, 0, 0, ::3], torch.tensor(camera))
    with pytest.raises(ValueError, match="relative or global"):
        encoding_size("sinusoid", num_keypoints=1, frequencies=1)
    with pytest.raises(ValueError, match="points must be"):
        global_encoding(torch.zeros(3, 3), R, T, frequencies=1)
