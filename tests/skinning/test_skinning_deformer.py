"""The forward-skinning deformer on SMPL's 24-bone skeleton (a tube body in an SMPL model file):
round trips in a bent pose, the slow oracle, invalid far points, the candidate helpers, guards."""

from __future__ import annotations

import math

import pytest
import torch

from neuralbody.body.smpl import load_smpl
from neuralbody.models.deformer import CanonicalPoints, Deformer
from neuralbody.models.skinning_deformer import (
    ForwardSkinningDeformer,
    SearchOptions,
    distinct_candidates,
    max_over_candidates,
)
from neuralbody.skinning.broyden import newton_reference
from neuralbody.skinning.forward_skinning import skin_points
from neuralbody.skinning.trilinear import trilinear
from neuralbody.skinning.initial_guesses import bone_groups, choose_bones, posed_heads, rigid_guesses
from neuralbody.skinning.weight_grid import weight_grid_from_mesh
from tube_body import write_smpl_npz


@pytest.fixture(scope="module")
def smpl_tubes(tmp_path_factory):
    """(tube body, SMPL body model, weight grid, bone groups) of the 24-joint tube body."""
    path = tmp_path_factory.mktemp("smpl_tubes") / "tubes.npz"
    tubes = write_smpl_npz(path)
    body = load_smpl(path)
    rest = body(torch.zeros(1, 72))
    grid = weight_grid_from_mesh(rest.rest_vertices[0], body.faces, body.lbs_weights, voxel_size=0.02)
    return tubes, body, grid, bone_groups(body.parents, rest.rest_joints[0])


def _bent(body):
    """Elbows and knees at 90 degrees, one hip flexed, a turned and moved body: world bone transforms (24, 4, 4)."""
    pose = torch.zeros(1, 72)
    pose[0, 3 * 18 + 1], pose[0, 3 * 19 + 1] = -math.pi / 2, math.pi / 2  # elbows, forearms forwards
    pose[0, 3 * 4], pose[0, 3 * 5] = math.pi / 2, math.pi / 2  # knees, shins backwards
    pose[0, 3 * 1] = -0.8
    out = body(pose, Rh=torch.tensor([[0.1, 0.4, 0.0]]), Th=torch.tensor([[0.3, 0.0, 0.2]]))
    return out.bone_transforms[0]


def test_round_trip_in_a_bent_pose(smpl_tubes):
    tubes, body, grid, groups = smpl_tubes
    deformer = ForwardSkinningDeformer.for_frame(grid, groups, _bent(body))
    assert isinstance(deformer, Deformer) and grid.num_bones == 24
    gen = torch.Generator().manual_seed(0)
    surface = torch.tensor(tubes.vertices, dtype=torch.float32)
    canonical = torch.cat([surface, surface + 0.01 * torch.randn(surface.shape, generator=gen)])
    with torch.no_grad():
        result = deformer.to_canonical(deformer.field.skin(canonical))
    assert isinstance(result, CanonicalPoints) and result.points.shape == (canonical.shape[0], 3, 3)
    found = (((result.points - canonical[:, None]).norm(dim=2) < 1e-3) & result.valid).any(dim=1)
    assert float(found.float().mean()) > 0.995  # misses: where the torso and hip tubes cross
    assert bool(result.valid.any(dim=1).all())
    assert float(result.residual[result.valid].max()) < 1e-5


def test_posed_mesh_vertices_come_back_near_their_rest_places(smpl_tubes):
    tubes, body, grid, groups = smpl_tubes
    pose_bones = _bent(body)
    count = tubes.vertices.shape[0]
    weights = body.lbs_weights[:count]
    rest = torch.tensor(tubes.vertices, dtype=torch.float32)
    posed = skin_points(rest, weights, pose_bones)  # the body model's own skinning, not the grid's
    with torch.no_grad():
        result = ForwardSkinningDeformer.for_frame(grid, groups, pose_bones).correspondences(posed)
    distance = torch.where(result.valid, (result.points - rest[:, None]).norm(dim=2), torch.inf).min(dim=1).values
    assert float(distance.median()) < 0.002 and float(torch.quantile(distance, 0.9)) < 0.01  # metres


def test_fast_solver_agrees_with_the_slow_oracle(smpl_tubes):
    tubes, body, grid, groups = smpl_tubes
    bones = _bent(body)
    deformer = ForwardSkinningDeformer.for_frame(grid, groups, bones)
    rest = torch.tensor(tubes.vertices, dtype=torch.float32)
    mid_limb = torch.nonzero(body.lbs_weights[: rest.shape[0]].max(dim=1).values > 0.999).squeeze(1)
    picked = mid_limb[torch.randperm(mid_limb.numel(), generator=torch.Generator().manual_seed(1))[:12]]
    posed = deformer.field.skin(rest[picked]).detach()
    fast = deformer.correspondences(posed)
    starts = rigid_guesses(posed, fast.bones, bones).reshape(-1, 3).double()
    targets = posed.double().repeat_interleave(3, dim=0)
    node_weights, bones64 = grid.node_weights().detach().double(), bones.double()
    origin, spacing = grid.origin.double(), grid.spacing.double()

    def definition(x, rows):  # x' = sum_b w_b(x) G_b [x; 1] with the grid's weights, float64
        return skin_points(x, trilinear(node_weights, (x - origin) / spacing).values, bones64) - targets[rows]

    slow = newton_reference(definition, starts, tolerance=1e-9)
    both = fast.converged.reshape(-1) & slow.converged
    assert int(both.sum()) >= 24  # of 36 starts; the third nearest part's start may lead nowhere
    torch.testing.assert_close(fast.points.reshape(-1, 3)[both].double(), slow.solution[both], atol=2e-5, rtol=0)
    found = (fast.points - rest[picked][:, None]).norm(dim=2) < 1e-4
    assert bool((found & fast.valid).any(dim=1).all())


def test_far_points_have_no_valid_candidate(smpl_tubes):
    _, body, grid, groups = smpl_tubes
    deformer = ForwardSkinningDeformer.for_frame(grid, groups, _bent(body))
    directions = torch.nn.functional.normalize(torch.randn(200, 3, generator=torch.Generator().manual_seed(2)), dim=1)
    far = torch.tensor([0.3, 1.0, 0.2]) + 2.0 * directions  # 2 m from the body's middle
    with torch.no_grad():
        result = deformer.correspondences(far)
    assert not bool(result.valid.any())


def test_choice_of_starts(smpl_tubes):
    _, body, grid, groups = smpl_tubes
    bones = _bent(body)
    points = torch.randn(300, 3, generator=torch.Generator().manual_seed(3)) * 0.4 + torch.tensor([0.3, 1.0, 0.2])
    heads = posed_heads(groups, bones)
    chosen = choose_bones(points, groups, heads, 3)
    assert chosen.shape == (300, 3)
    assert bool((groups.group[chosen][:, 0] != groups.group[chosen][:, 1]).all())  # distinct parts
    starts = rigid_guesses(points, chosen, bones)
    moved = (bones[chosen][..., :3, :3] @ starts[..., None])[..., 0] + bones[chosen][..., :3, 3]
    torch.testing.assert_close(moved, points[:, None].expand(-1, 3, -1), atol=1e-5, rtol=0)


def test_candidate_helpers_known_answers():
    values = torch.tensor([[0.2, 0.9, 0.5], [0.7, 0.1, 0.3], [0.4, 0.6, 0.8]])
    valid = torch.tensor([[True, False, True], [False, False, False], [False, True, True]])
    torch.testing.assert_close(max_over_candidates(values, valid), torch.tensor([0.5, 0.0, 0.8]))
    torch.testing.assert_close(max_over_candidates(values, valid, empty=-1.0), torch.tensor([0.5, -1.0, 0.8]))
    points = torch.tensor([[[0.0, 0, 0], [0.0005, 0, 0], [0.1, 0, 0]], [[0.0, 0, 0], [0.0, 0, 0], [0.0, 0, 0.0004]]])
    valid = torch.tensor([[True, True, True], [False, True, True]])
    assert distinct_candidates(points, valid, 1e-3).tolist() == [[True, False, True], [False, True, False]]


def test_guards(smpl_tubes):
    _, body, grid, groups = smpl_tubes
    deformer = ForwardSkinningDeformer.for_frame(grid, groups, _bent(body))
    with pytest.raises(ValueError, match=r"points must be \(N, 3\)"):
        deformer.to_canonical(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="num_candidates"):
        SearchOptions(num_candidates=0)
    with pytest.raises(ValueError, match="tolerance"):
        SearchOptions(tolerance=-1.0)
    with pytest.raises(ValueError, match="the skeleton has 3 bones, the weight grid 24"):
        ForwardSkinningDeformer.for_frame(grid, bone_groups([-1, 0, 1], torch.zeros(3, 3)), _bent(body))
    with pytest.raises(ValueError, match=r"bone_transforms must be \(B, 4, 4\)"):
        ForwardSkinningDeformer.for_frame(grid, groups, torch.zeros(24, 3, 4))
    with pytest.raises(ValueError, match="values and valid"):
        max_over_candidates(torch.zeros(3, 2), torch.zeros(3, 3, dtype=torch.bool))
    empty = deformer.correspondences(torch.zeros(0, 3))
    assert empty.points.shape == (0, 3, 3) and empty.valid.shape == (0, 3)
