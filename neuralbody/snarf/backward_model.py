"""The backward-skinning baseline: skinning weights in posed space, conditioned on the pose.

Where SNARF defines the weights on the canonical body, backward skinning defines them where
the points are, in the posed frame, so each posed point maps back in closed form::

    x = (sum_b w_b(x', theta) G_b)^{-1} x'                                   (inverse LBS)

The weights ``w(x', theta)`` come from an MLP over the positional encoding of ``x'`` (body
frame, metres) and the pose vector ``theta`` (radians), softmax over the bones. Its first
layer is split into a point part and a pose part (the same as one layer over the
concatenation), so the pose part is computed once per frame. The canonical point then goes
through the same canonical occupancy network as SNARF's. This is the baseline SNARF
compares with: the weights of a posed point change with the pose, so the network must learn
them for every pose, and a pose far from the training ones asks it to extrapolate.

:func:`inverse_skin` is the closed form; :func:`~neuralbody.skinning.weight_grid.surface_weights` gives the body model's own
weights at posed points (those of the closest point of the posed body-model mesh), the
counterpart of the canonical grid's initialisation that the training warm-up regresses to.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.encoding import encoded_size, positional_encoding
from neuralbody.skinning.forward_skinning import check_bone_transforms, invert_jacobians
from neuralbody.snarf.frame_pose import FramePose
from neuralbody.snarf.posed_occupancy import PosedOccupancy


def inverse_skin(points: torch.Tensor, weights: torch.Tensor, bone_transforms: torch.Tensor) -> torch.Tensor:
    """(N, 3) canonical points ``(sum_b w_b G_b)^{-1} x'`` of posed points (N, 3), metres.

    Args:
        points: (N, 3) posed points, metres.
        weights: (N, B) skinning weights at the posed points.
        bone_transforms: (B, 4, 4) bone transforms ``G_b``, canonical to posed.

    Where the blended rotation part is singular (``|det| <= 1e-9``) its inverse is taken as the
    identity (see :func:`~neuralbody.skinning.forward_skinning.invert_jacobians`).
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"inverse_skin: points must be (N, 3), got {tuple(points.shape)}")
    if weights.ndim != 2 or weights.shape[0] != points.shape[0]:
        raise ValueError(f"inverse_skin: weights must be ({points.shape[0]}, B), got {tuple(weights.shape)}")
    check_bone_transforms(bone_transforms, "inverse_skin", weights.shape[1])
    blend = torch.einsum("nb,bij->nij", weights, bone_transforms[:, :3, :].to(weights.dtype))  # (N, 3, 4)
    inverse, _ = invert_jacobians(blend[:, :, :3])
    return (inverse @ (points.to(blend.dtype) - blend[:, :, 3])[:, :, None])[:, :, 0]


@dataclasses.dataclass(frozen=True)
class PoseWeightsOptions:
    """Size of the posed-space weight network.

    Attributes:
        freqs: positional-encoding frequencies of the posed point.
        hidden: width of the hidden layers.
        layers: number of hidden layers (at least one).
    """

    freqs: int = 4
    hidden: int = 128
    layers: int = 3

    def __post_init__(self) -> None:
        if self.freqs < 0 or self.hidden < 1 or self.layers < 1:
            raise ValueError(f"PoseWeightsOptions: freqs >= 0, hidden >= 1, layers >= 1; got {self.freqs}, "
                             f"{self.hidden}, {self.layers}")


class PoseConditionedWeights(torch.nn.Module):
    """Skinning-weight logits (N, B) of posed points (N, 3) given the pose vector (P,).

    Args:
        num_bones: B.
        pose_dim: P, the length of the pose vector.
        options: network size.
    """

    def __init__(self, num_bones: int, pose_dim: int, options: PoseWeightsOptions = PoseWeightsOptions()) -> None:
        super().__init__()
        if num_bones < 1 or pose_dim < 1:
            raise ValueError(f"PoseConditionedWeights: num_bones and pose_dim must be >= 1, got {num_bones}, {pose_dim}")
        self.options = options
        self.num_bones, self.pose_dim = num_bones, pose_dim
        self.point_layer = torch.nn.Linear(encoded_size(3, options.freqs), options.hidden)
        self.pose_layer = torch.nn.Linear(pose_dim, options.hidden, bias=False)
        layers: list[torch.nn.Module] = [torch.nn.ReLU()]
        for _ in range(options.layers - 1):
            layers += [torch.nn.Linear(options.hidden, options.hidden), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(options.hidden, num_bones))
        self.head = torch.nn.Sequential(*layers)

    def forward(self, points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """(N, B) logits at posed points (N, 3), metres, in the pose (P,), radians."""
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"PoseConditionedWeights: points must be (N, 3), got {tuple(points.shape)}")
        if pose.shape != (self.pose_dim,):
            raise ValueError(f"PoseConditionedWeights: pose must be ({self.pose_dim},), got {tuple(pose.shape)}")
        hidden = self.point_layer(positional_encoding(points, self.options.freqs))
        return self.head(hidden + self.pose_layer(pose.to(hidden.dtype))[None, :])


class BackwardOccupancy(PosedOccupancy):
    """Posed occupancy by inverse skinning with posed-space weights (module docstring).

    Args:
        weights: ``(points (N, 3), pose (P,)) -> (N, B)`` weight logits (softmax over bones).
        occupancy: canonical occupancy network, ``(N, 3) -> (N,)`` logits.
    """

    kind = "backward"

    def __init__(self, weights: torch.nn.Module, occupancy: torch.nn.Module) -> None:
        super().__init__()
        self.weights = weights
        self.occupancy = occupancy

    def skinning_weights(self, points: torch.Tensor, frame: FramePose) -> torch.Tensor:
        """(N, B) skinning weights of posed points (N, 3), metres, in the frame ``frame``."""
        return torch.softmax(self.weights(points, frame.pose), dim=1)

    def canonical(self, points: torch.Tensor, frame: FramePose) -> torch.Tensor:
        """(N, 3) canonical points of posed points (N, 3), metres, by :func:`inverse_skin`."""
        return inverse_skin(points, self.skinning_weights(points, frame), frame.bone_transforms)

    def logits_and_weight_logits(self, points: torch.Tensor, frame: FramePose) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) occupancy logits and (N, B) skinning-weight logits of posed points (N, 3), metres."""
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"BackwardOccupancy: points must be (N, 3), got {tuple(points.shape)}")
        weight_logits = self.weights(points, frame.pose)
        canonical = inverse_skin(points, torch.softmax(weight_logits, dim=1), frame.bone_transforms)
        return self.occupancy(canonical), weight_logits

    def logits(self, points: torch.Tensor, frame: FramePose) -> torch.Tensor:
        return self.logits_and_weight_logits(points, frame)[0]
