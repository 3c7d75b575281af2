"""Starts of the correspondence search: bone groups, segment distances, the per-cell choice."""

from __future__ import annotations

import pytest
import torch

from neuralbody.skinning.initial_guesses import (
    bone_groups,
    choose_bones,
    nearest_group_bones,
    posed_heads,
    segment_distances,
)
from tube_body import SMPL_PARENTS, SMPL_REST_JOINTS

# A T: a root with a spine (0.48 m) to a head, and two short side bones (3 cm) each carrying an arm
# (0.44 m) to a hand. Bones: root, spine, head, side.L, arm.L, hand.L, side.R, arm.R, hand.R.
PARENTS = [-1, 0, 1, 0, 3, 4, 0, 6, 7]
JOINTS = torch.tensor([
    [0.0, 0, 0], [0, 0, 0.02], [0, 0, 0.5], [0.03, 0, 0], [0.06, 0, 0], [0.5, 0, 0], [-0.03, 0, 0], [-0.06, 0, 0],
    [-0.5, 0, 0],
])


def test_groups_merge_short_bones_into_long_ancestors():
    groups = bone_groups(PARENTS, JOINTS, min_length=0.08)
    # the root is a group whatever its length; the short sides join it; leaves join their parents
    assert groups.group.tolist() == [0, 1, 1, 0, 2, 2, 0, 3, 3] and groups.num_groups == 4
    assert list(zip(groups.segment_start.tolist(), groups.segment_end.tolist())) == [
        (0, 1), (0, 3), (0, 6), (1, 2), (2, 2), (3, 4), (4, 5), (5, 5), (6, 7), (7, 8), (8, 8)
    ]
    smpl = bone_groups(SMPL_PARENTS, torch.tensor(SMPL_REST_JOINTS))
    group = smpl.group.tolist()
    assert smpl.num_groups == 18
    assert group[22] == group[20] and group[10] == group[7] and group[15] == group[12] and group[6] == group[3]
    with pytest.raises(ValueError, match="earlier bone"):
        bone_groups([1, -1], torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"rest_joints must be \(9, 3\)"):
        bone_groups(PARENTS, JOINTS[:5])


def test_segment_distances_match_brute_force():
    gen = torch.Generator().manual_seed(0)
    points, starts, ends = (torch.randn(n, 3, generator=gen, dtype=torch.float64) for n in (50, 7, 7))
    ends[3] = starts[3]  # a point segment
    t = torch.linspace(0, 1, 20001, dtype=torch.float64)
    samples = starts[:, None] + t[None, :, None] * (ends - starts)[:, None]  # (S, T, 3)
    brute = ((points[:, None, None] - samples[None]) ** 2).sum(-1).min(dim=2).values
    torch.testing.assert_close(segment_distances(points, starts, ends), brute, atol=1e-6, rtol=0)


def test_nearest_groups_and_their_nearest_bones():
    groups = bone_groups(PARENTS, JOINTS, min_length=0.08)
    shift = torch.eye(4).expand(9, 4, 4).clone()
    shift[:, :3, 3] = torch.tensor([0.1, 0.2, 0.3])  # the whole skeleton moved: heads move with it
    heads = posed_heads(groups, shift)
    torch.testing.assert_close(heads, JOINTS + torch.tensor([0.1, 0.2, 0.3]))
    points = torch.tensor([[0.0, 0.1, 0.4], [0.3, 0.05, 0.0], [-0.45, 0.0, 0.1]]) + torch.tensor([0.1, 0.2, 0.3])
    bones = nearest_group_bones(points, groups, heads, 2)
    # by the spine: the spine, then the root (its segment to the spine is the root group's nearest);
    # by the left arm: the arm, then the left side bone; by the right forearm: the arm, then the right side
    assert bones.tolist() == [[1, 0], [4, 3], [7, 6]]
    with pytest.raises(ValueError, match=r"K must be in \[1, 4\]"):
        nearest_group_bones(points, groups, heads, 5)


def test_cells_share_the_choice_made_at_their_centre():
    groups = bone_groups(SMPL_PARENTS, torch.tensor(SMPL_REST_JOINTS, dtype=torch.float32))
    heads = groups.rest_joints
    gen = torch.Generator().manual_seed(1)
    points = torch.rand(3000, 3, generator=gen) * torch.tensor([1.6, 1.8, 0.4]) - torch.tensor([0.8, 0.0, 0.2])
    cell = 0.05
    centres = (torch.floor(points / cell) + 0.5) * cell
    expected = nearest_group_bones(centres, groups, heads, 3)
    assert torch.equal(choose_bones(points, groups, heads, 3, cell), expected)
    assert torch.equal(choose_bones(points, groups, heads, 3, None), nearest_group_bones(points, groups, heads, 3))
    agree = (choose_bones(points, groups, heads, 3, cell)[:, 0] == choose_bones(points, groups, heads, 3, None)[:, 0])
    assert float(agree.float().mean()) > 0.9  # the cell's choice is mostly the point's own
    with pytest.raises(ValueError, match="cell must be > 0"):
        choose_bones(points, groups, heads, 3, 0.0)
