"""Initial guesses of the correspondence search: one per bone chosen for each posed point.

SNARF starts the search for the canonical point of a posed point ``x'`` from
``x_0 = G_b^{-1} x'`` for several bones b (the point moved rigidly back with bone b), so that
every part of the body that could have moved to ``x'`` gets a start inside its basin. Which
bones, here:

1. **Bone groups** (once per skeleton). A bone is *long* when its rest-pose segment (head to
   the farthest head of its children) is at least ``min_length``; a root always counts as
   long. Every other bone joins the group of its nearest long ancestor, so fingers go with
   the forearm, toes with the foot, the short spine and neck links with the next long bone
   down. Groups are the parts a point can be chosen from, so K guesses cover K different
   parts (a hand on a thigh: the arm's and the leg's).
2. **Per cell** (posed space). The distance from a point to a group is the distance to the
   nearest posed segment of its bones (a segment runs from a bone's posed head to each
   child's posed head; a leaf bone is its head). The K nearest groups are chosen, and each
   contributes the guess of its nearest bone. The rule is evaluated once per cell of a grid
   of ``cell``-sized cubes (aligned with the posed frame's origin), at the cell's centre, for
   all the points in that cell: points near a body fill a few thousand 5 cm cells, so this
   costs little more than a sort of the cell keys.

Posed heads are ``G_b [h_b; 1]`` with ``h_b`` the rest head; units are metres throughout.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

DEFAULT_MIN_LENGTH = 0.08  # metres: SMPL- and Anny-sized limbs stay apart, fingers and toes merge
DEFAULT_CELL = 0.05  # metres: the posed cells sharing one choice of bones


@dataclasses.dataclass
class BoneGroups:
    """Bone segments and groups of a skeleton (B bones, S segments, G groups).

    Attributes:
        rest_joints: (B, 3) rest-pose bone heads, canonical, metres.
        group: (B,) int64 group of each bone, in [0, G).
        segment_start: (S,) int64 bone whose head starts each segment (the bone it belongs to).
        segment_end: (S,) int64 bone whose head ends it (a child, or the bone itself for a leaf).
        num_groups: G.
    """

    rest_joints: torch.Tensor
    group: torch.Tensor
    segment_start: torch.Tensor
    segment_end: torch.Tensor
    num_groups: int


def bone_groups(parents, rest_joints: torch.Tensor, min_length: float = DEFAULT_MIN_LENGTH) -> BoneGroups:
    """Groups of a skeleton by the rule of the module docstring.

    Args:
        parents: B parent indices, -1 for a root; a parent comes before its children.
        rest_joints: (B, 3) rest-pose heads, metres.
        min_length: metres; shorter bones join their nearest long ancestor's group.
    """
    parents = [int(p) for p in parents]
    count = len(parents)
    if rest_joints.ndim != 2 or rest_joints.shape != (count, 3):
        raise ValueError(f"bone_groups: rest_joints must be ({count}, 3) for {count} parents, got "
                         f"{tuple(rest_joints.shape)}")
    if any(not -1 <= p < j for j, p in enumerate(parents)):
        raise ValueError(f"bone_groups: each parent must be -1 or an earlier bone, got {parents}")
    joints = rest_joints.detach().double().cpu()
    children = [[c for c in range(count) if parents[c] == b] for b in range(count)]
    starts, ends, group, heads = [], [], [], {}
    for bone in range(count):
        length = max((float((joints[c] - joints[bone]).norm()) for c in children[bone]), default=0.0)
        if parents[bone] < 0 or length >= min_length:
            heads[bone] = len(heads)
            group.append(heads[bone])
        else:
            group.append(group[parents[bone]])
        for end in children[bone] or [bone]:
            starts.append(bone)
            ends.append(end)
    return BoneGroups(
        rest_joints=rest_joints.detach(),
        group=torch.tensor(group, dtype=torch.long),
        segment_start=torch.tensor(starts, dtype=torch.long),
        segment_end=torch.tensor(ends, dtype=torch.long),
        num_groups=len(heads),
    )


def posed_heads(groups: BoneGroups, bone_transforms: torch.Tensor) -> torch.Tensor:
    """(B, 3) posed bone heads ``G_b [h_b; 1]``, metres, for bone transforms (B, 4, 4)."""
    rest = groups.rest_joints.to(bone_transforms)
    return (bone_transforms[:, :3, :3] @ rest[:, :, None])[:, :, 0] + bone_transforms[:, :3, 3]


def segment_distances(points: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """(N, S) squared distances from points (N, 3) to segments from starts (S, 3) to ends (S, 3), metres^2."""
    axis = ends - starts  # (S, 3)
    length2 = (axis * axis).sum(dim=1)
    relative_dot = points @ axis.T - (starts * axis).sum(dim=1)  # (N, S) (x - a) . d
    t = (relative_dot / length2.clamp_min(1e-12)).clamp(0.0, 1.0)
    squared = (points * points).sum(dim=1, keepdim=True)
    distance_to_start = squared - 2.0 * points @ starts.T + (starts * starts).sum(dim=1)  # (N, S) |x - a|^2
    return (distance_to_start - 2.0 * t * relative_dot + t * t * length2).clamp_min(0.0)


def nearest_group_bones(points: torch.Tensor, groups: BoneGroups, heads: torch.Tensor, count: int) -> torch.Tensor:
    """(N, K) bones of the K nearest groups of each of the posed points (N, 3), nearest first.

    Args:
        points: (N, 3) posed points, metres.
        groups: the skeleton's :class:`BoneGroups`.
        heads: (B, 3) posed bone heads (:func:`posed_heads`).
        count: K, at most the number of groups.
    """
    if not 1 <= count <= groups.num_groups:
        raise ValueError(f"nearest_group_bones: K must be in [1, {groups.num_groups}] (the skeleton's groups), got {count}")
    device = points.device
    segment_group = groups.group.to(device)[groups.segment_start.to(device)]  # (S,)
    distances = segment_distances(points, heads[groups.segment_start.to(device)], heads[groups.segment_end.to(device)])
    nearest = distances.new_full((points.shape[0], groups.num_groups), float("inf"))
    nearest.scatter_reduce_(1, segment_group.expand_as(distances), distances, reduce="amin")
    chosen = torch.topk(nearest, count, dim=1, largest=False).indices  # (N, K) groups
    bones = []
    for k in range(count):
        outside = segment_group[None, :] != chosen[:, k : k + 1]
        segment = distances.masked_fill(outside, float("inf")).argmin(dim=1)
        bones.append(groups.segment_start.to(device)[segment])
    return torch.stack(bones, dim=1)


def choose_bones(
    points: torch.Tensor, groups: BoneGroups, heads: torch.Tensor, count: int, cell: float | None = DEFAULT_CELL
) -> torch.Tensor:
    """(N, K) bones to start from for posed points (N, 3), metres: :func:`nearest_group_bones` at cell centres.

    Args:
        points: (N, 3) posed points, metres.
        groups: the skeleton's :class:`BoneGroups`.
        heads: (B, 3) posed bone heads (:func:`posed_heads`).
        count: K, at most the number of groups.
        cell: edge of the cells sharing one choice, metres; None: each point on its own.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"choose_bones: points must be (N, 3), got {tuple(points.shape)}")
    if cell is None or points.shape[0] == 0:
        return nearest_group_bones(points, groups, heads, count)
    if cell <= 0:
        raise ValueError(f"choose_bones: cell must be > 0 metres or None, got {cell}")
    index = torch.floor(points / cell).long()
    low = index.min(dim=0).values
    index = index - low
    extent = index.max(dim=0).values + 1
    keys = (index[:, 0] * extent[1] + index[:, 1]) * extent[2] + index[:, 2]
    unique, inverse = torch.unique(keys, return_inverse=True)
    cells = torch.stack([unique // (extent[1] * extent[2]), (unique // extent[2]) % extent[1], unique % extent[2]], 1)
    centres = ((cells + low).to(points.dtype) + 0.5) * cell
    return nearest_group_bones(centres, groups, heads, count)[inverse]


def rigid_guesses(points: torch.Tensor, bones: torch.Tensor, bone_transforms: torch.Tensor) -> torch.Tensor:
    """(N, K, 3) starts ``G_b^{-1} x'`` of posed points (N, 3) for bones (N, K) of transforms (B, 4, 4).

    One gather of the (3, 4) inverses, then one batched product with the homogeneous points.
    """
    count, k = bones.shape
    inverse = torch.linalg.inv(bone_transforms)[:, :3, :].reshape(-1, 12)  # (B, 12)
    chosen = inverse[bones.reshape(-1)].view(-1, 3, 4)  # (N K, 3, 4)
    homogeneous = F.pad(points, (0, 1), value=1.0).repeat_interleave(k, dim=0)  # (N K, 4)
    return torch.bmm(chosen, homogeneous[:, :, None])[:, :, 0].reshape(count, k, 3)
