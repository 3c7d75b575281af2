"""IMAvatar's forward map, its Jacobian, the root finding and its implicit gradients."""

import pytest
import torch

from neuralbody.head.deformation import FrameCode, channel_count, deform, deform_reference, frame_grid, pose_feature
from neuralbody.head.deformer import RootOptions, find_canonical
from neuralbody.head.grid_box import GridBox
from neuralbody.head.rig import bone_transforms

JOINTS = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.03], [0.0, 0.0, 0.1], [0.0, -0.02, 0.11]], dtype=torch.float64)
BOX = GridBox((-0.1, -0.1, 0.0), 0.05, (5, 5, 5))
ACTIONS = 3


def _setup(seed: int, dtype=torch.float64, scale: float = 0.004):
    generator = torch.Generator().manual_seed(seed)
    grid = scale * torch.randn(*BOX.shape, channel_count(ACTIONS), generator=generator, dtype=dtype)
    grid[..., -4:] = 2.0 * torch.randn(*BOX.shape, 4, generator=generator, dtype=dtype)
    pose = 0.25 * torch.randn(1, 4, 3, generator=generator, dtype=dtype)
    pose[:, 0] = 0.0
    code = FrameCode(expression=torch.rand(ACTIONS, generator=generator, dtype=dtype),
                     pose_feature=pose_feature(pose[0]), transforms=bone_transforms(JOINTS.to(dtype), pose)[0])
    points = torch.rand(6, 3, generator=generator, dtype=dtype) * 0.1 + torch.tensor([-0.05, -0.05, 0.05], dtype=dtype)
    return grid, code, points


def test_forward_map_matches_the_reference_and_autograd_jacobian():
    grid, code, points = _setup(0)
    deformed, jacobian = deform(points, frame_grid(grid, code), BOX, code.transforms, with_jacobian=True)
    torch.testing.assert_close(deformed, deform_reference(points, grid, BOX, code), atol=1e-12, rtol=0)
    for n in range(points.shape[0]):
        numeric = torch.autograd.functional.jacobian(
            lambda x: deform(x[None], frame_grid(grid, code), BOX, code.transforms)[0][0], points[n])
        torch.testing.assert_close(jacobian[n], numeric, atol=1e-10, rtol=0)


def test_root_finding_recovers_the_canonical_point():
    grid, code, points = _setup(1)
    targets, _ = deform(points, frame_grid(grid, code), BOX, code.transforms)
    found = find_canonical(targets, grid, BOX, code, RootOptions(tolerance=1e-9, max_iterations=40, max_step=0.05))
    assert found.valid.any(dim=1).all()
    error = (found.points - points[:, None]).norm(dim=2).masked_fill(~found.valid, float("inf")).min(dim=1).values
    assert float(error.max()) < 1e-7


def test_implicit_gradient_matches_finite_differences():
    grid, code, points = _setup(2)
    targets, _ = deform(points, frame_grid(grid, code), BOX, code.transforms)
    options = RootOptions(tolerance=1e-11, max_iterations=60, max_step=0.05)
    weights = torch.randn(points.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))

    def objective(g):
        found = find_canonical(targets, g, BOX, code, options)
        assert found.valid[:, 0].all()  # the second start finds the same root (a duplicate)
        return (found.points[:, 0] * weights).sum()

    leaf = grid.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(objective(leaf), leaf)
    direction = torch.randn(grid.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    eps = 1e-6
    with torch.no_grad():
        numeric = (objective(grid + eps * direction) - objective(grid - eps * direction)) / (2 * eps)
    assert float((gradient * direction).sum()) == pytest.approx(float(numeric), rel=1e-5, abs=1e-9)


def test_guards():
    grid, code, points = _setup(0)
    with pytest.raises(ValueError, match="channels"):
        frame_grid(grid[..., :-1], code)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        find_canonical(points[:, :2], grid, BOX, code)
