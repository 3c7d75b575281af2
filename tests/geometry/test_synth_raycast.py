"""Warp ray casting against the brute-force Möller–Trumbore oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.geometry.raycast import cast_rays, cast_rays_reference


def _ico_sphere_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A closed, bumpy triangle mesh (convex hull of jittered sphere points), metres."""
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(seed)
    points = rng.normal(size=(120, 3))
    points = points / np.linalg.norm(points, axis=1, keepdims=True) * rng.uniform(0.3, 0.35, size=(120, 1))
    hull = ConvexHull(points)
    faces = hull.simplices.copy()
    # orient faces outwards so the oracle's normal convention is tested too
    centre = points.mean(0)
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), a - centre) < 0
    faces[flip] = faces[flip][:, ::-1]
    return points + np.array([0.1, -0.2, 1.0]), faces


def _rays(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    origins = np.array([0.1, -0.2, 1.0]) + rng.normal(size=(count, 3)) * 0.05 + np.array([0.0, -2.0, 0.0])
    targets = np.array([0.1, -0.2, 1.0]) + rng.uniform(-0.45, 0.45, size=(count, 3))
    directions = targets - origins
    return origins, directions / np.linalg.norm(directions, axis=1, keepdims=True)


def test_cast_rays_matches_oracle():
    vertices, faces = _ico_sphere_like()
    rays_o, rays_d = _rays(600)
    fast = cast_rays(torch.tensor(vertices), torch.tensor(faces), torch.tensor(rays_o), torch.tensor(rays_d))
    slow = cast_rays_reference(vertices, faces, rays_o, rays_d)
    assert 100 < int(slow.hit.sum()) < 550  # both hits and misses are exercised
    assert torch.equal(fast.hit, slow.hit)
    hit = slow.hit
    np.testing.assert_allclose(fast.t[hit].numpy(), slow.t[hit].numpy(), atol=1e-5)
    assert torch.equal(fast.face_ids, slow.face_ids)
    np.testing.assert_allclose(fast.barycentrics.numpy(), slow.barycentrics.numpy(), atol=1e-4)
    np.testing.assert_allclose(fast.normals.numpy(), slow.normals.numpy(), atol=1e-5)
    # the hit point is on the hit face: barycentric interpolation reproduces o + t d
    corners = torch.tensor(vertices)[torch.tensor(faces)[fast.face_ids[hit]]]
    interpolated = (corners * fast.barycentrics[hit, :, None].double()).sum(1)
    np.testing.assert_allclose(
        fast.points(torch.tensor(rays_o), torch.tensor(rays_d))[hit].numpy(), interpolated.numpy(), atol=2e-5
    )
    # rays from outside a closed outward-facing mesh hit front faces
    assert bool(((fast.normals[hit].double() * torch.tensor(rays_d)[hit]).sum(1) < 0).all())
    assert bool(torch.isinf(fast.t[~hit]).all()) and bool((fast.face_ids[~hit] == -1).all())


def test_max_t_and_origin_inside():
    vertices, faces = _ico_sphere_like()
    rays_o, rays_d = _rays(200)
    near = cast_rays_reference(vertices, faces, rays_o, rays_d)
    limit = float(near.t[near.hit].median())
    fast = cast_rays(vertices, faces, rays_o, rays_d, max_t=limit)
    slow = cast_rays_reference(vertices, faces, rays_o, rays_d, max_t=limit)
    assert torch.equal(fast.hit, slow.hit) and 0 < int(fast.hit.sum()) < int(near.hit.sum())
    inside = np.repeat([[0.1, -0.2, 1.0]], 50, axis=0)
    directions = np.random.default_rng(3).normal(size=(50, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    from_inside = cast_rays(vertices, faces, inside, directions)
    assert bool(from_inside.hit.all())
    assert bool((from_inside.t > 0.25).all() and (from_inside.t < 0.36).all())


def test_cast_rays_shape_guards():
    vertices, faces = _ico_sphere_like()
    rays_o, rays_d = _rays(4)
    with pytest.raises(ValueError, match="rays_o and rays_d"):
        cast_rays(vertices, faces, rays_o, rays_d[:3])
    with pytest.raises(ValueError, match="faces must be"):
        cast_rays(vertices, np.zeros((2, 4), dtype=np.int64), rays_o, rays_d)
    with pytest.raises(ValueError, match="face indices"):
        cast_rays(vertices, faces + len(vertices), rays_o, rays_d)
    empty = cast_rays(vertices, faces, np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.hit.shape == (0,)


@pytest.mark.gpu
def test_cast_rays_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    vertices, faces = _ico_sphere_like()
    rays_o, rays_d = (torch.tensor(a, dtype=torch.float32) for a in _rays(300))
    cpu = cast_rays(torch.tensor(vertices), torch.tensor(faces), rays_o, rays_d)
    gpu = cast_rays(torch.tensor(vertices).cuda(), torch.tensor(faces).cuda(), rays_o.cuda(), rays_d.cuda())
    assert gpu.hit.device.type == "cuda"
    assert torch.equal(cpu.hit, gpu.hit.cpu())
    np.testing.assert_allclose(cpu.t[cpu.hit].numpy(), gpu.t.cpu()[cpu.hit].numpy(), atol=1e-5)
