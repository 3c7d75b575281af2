"""Forward linear blend skinning of canonical points, and its Jacobian.

A canonical point ``x`` (the body model's rest pose, metres) with skinning weights ``w(x)``
(B bones, non-negative, summing to one) moves to the posed point::

    x' = sum_b w_b(x) G_b [x; 1]                                  (1)

with ``G_b`` the (4, 4) bone transforms (rest pose to posed world, as
``BodyOutput.bone_transforms``). :func:`skin_points` is (1) written out, the definition.

When the weights come from a grid by trilinear interpolation, (1) is linear in the node
weights, so blending the bone transforms at the nodes once per frame and interpolating the
blend gives the same map (Fast-SNARF's precomputation)::

    A_n = sum_b w_nb G_b[:3, :]            per node n, (3, 4)
    x'  = A(x) [x; 1],   A(x) = trilinear interpolation of A_n     (2)

A :class:`SkinningField` holds the ``A_n`` of one frame: evaluating (2) costs a 12-channel
lookup whatever the number of bones. Its Jacobian ``J = d x' / d x`` is::

    J_ij = A_ij(x) + sum_k (d A_ik / d x_j) [x; 1]_k
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.skinning.trilinear import check_grid, trilinear


def check_bone_transforms(bone_transforms: torch.Tensor, where: str, count: int | None = None) -> None:
    """Raise ValueError unless bone_transforms is (B, 4, 4) (with B == count when given)."""
    if bone_transforms.ndim != 3 or bone_transforms.shape[1:] != (4, 4):
        raise ValueError(f"{where}: bone_transforms must be (B, 4, 4), got {tuple(bone_transforms.shape)}")
    if count is not None and bone_transforms.shape[0] != count:
        raise ValueError(f"{where}: bone_transforms has {bone_transforms.shape[0]} bones, the weights {count}")


def skin_points(points: torch.Tensor, weights: torch.Tensor, bone_transforms: torch.Tensor) -> torch.Tensor:
    """Posed points (N, 3) by (1): ``x' = sum_b w_b G_b [x; 1]``.

    Args:
        points: (N, 3) canonical points, metres.
        weights: (N, B) skinning weights of the points.
        bone_transforms: (B, 4, 4) bone transforms ``G_b``, canonical to posed.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"skin_points: points must be (N, 3), got {tuple(points.shape)}")
    if weights.ndim != 2 or weights.shape[0] != points.shape[0]:
        raise ValueError(f"skin_points: weights must be ({points.shape[0]}, B), got {tuple(weights.shape)}")
    check_bone_transforms(bone_transforms, "skin_points", weights.shape[1])
    moved = torch.einsum("bij,nj->nbi", bone_transforms[:, :3, :3], points) + bone_transforms[None, :, :3, 3]
    return torch.einsum("nb,nbi->ni", weights, moved)


@dataclasses.dataclass
class SkinningField:
    """The forward skinning map (2) of one frame on a grid of canonical nodes.

    Attributes:
        transforms: (X, Y, Z, 12) blended transforms ``A_n`` (row-major (3, 4)) at the nodes.
        origin: (3,) canonical position of node (0, 0, 0), metres.
        spacing: (3,) distance between nodes along each axis, metres.
    """

    transforms: torch.Tensor
    origin: torch.Tensor
    spacing: torch.Tensor

    def __post_init__(self) -> None:
        check_grid(self.transforms, "SkinningField")
        if self.transforms.shape[3] != 12:
            raise ValueError(f"SkinningField: transforms must have 12 channels, got {self.transforms.shape[3]}")
        if self.origin.shape != (3,) or self.spacing.shape != (3,):
            raise ValueError(
                f"SkinningField: origin and spacing must be (3,), got {tuple(self.origin.shape)}, "
                f"{tuple(self.spacing.shape)}"
            )

    @property
    def box_max(self) -> torch.Tensor:
        """(3,) canonical position of the last node, metres."""
        count = torch.tensor(self.transforms.shape[:3], dtype=self.origin.dtype, device=self.origin.device)
        return self.origin + (count - 1) * self.spacing

    def inside(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) bool: canonical points (N, 3) inside the grid's box."""
        return ((points >= self.origin) & (points <= self.box_max)).all(dim=1)

    def blended(self, points: torch.Tensor, *, with_gradient: bool = False):
        """Interpolated ``A(x)`` (N, 3, 4) at canonical points (N, 3) and, if asked, dA/dx (N, 3, 4, 3) per metre."""
        sample = trilinear(self.transforms, (points - self.origin) / self.spacing, with_gradient=with_gradient)
        blend = sample.values.reshape(-1, 3, 4)
        if not with_gradient:
            return blend, None
        return blend, (sample.gradient / self.spacing).reshape(-1, 3, 4, 3)

    def skin(self, points: torch.Tensor) -> torch.Tensor:
        """Posed points (N, 3) of canonical points (N, 3), metres, by (2)."""
        blend, _ = self.blended(points)
        return (blend[:, :, :3] @ points[:, :, None])[:, :, 0] + blend[:, :, 3]

    def skin_with_jacobian(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed points (N, 3) and the Jacobians ``d x' / d x`` (N, 3, 3) at canonical points (N, 3)."""
        blend, slope = self.blended(points, with_gradient=True)
        homogeneous = torch.cat([points, torch.ones_like(points[:, :1])], dim=1)  # (N, 4)
        posed = (blend @ homogeneous[:, :, None])[:, :, 0]
        jacobian = blend[:, :, :3] + torch.einsum("nikj,nk->nij", slope, homogeneous)
        return posed, jacobian


def blend_transforms(node_weights: torch.Tensor, bone_transforms: torch.Tensor) -> torch.Tensor:
    """(X, Y, Z, 12) blended transforms ``A_n = sum_b w_nb G_b[:3, :]`` (row-major) of a weight grid.

    Args:
        node_weights: (X, Y, Z, B) skinning weights at the nodes.
        bone_transforms: (B, 4, 4) bone transforms ``G_b``.
    """
    check_grid(node_weights, "blend_transforms")
    check_bone_transforms(bone_transforms, "blend_transforms", node_weights.shape[3])
    count = node_weights.shape[3]
    rows = bone_transforms[:, :3, :].reshape(count, 12).to(node_weights.dtype)
    return (node_weights.reshape(-1, count) @ rows).reshape(*node_weights.shape[:3], 12)


def invert_jacobians(jacobians: torch.Tensor, min_determinant: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form inverses (adjugate over determinant) of (M, 3, 3) matrices.

    Returns:
        inverses: (M, 3, 3); the identity where ``|det| <= min_determinant``.
        invertible: (M,) bool, ``|det| > min_determinant``.
    """
    if jacobians.ndim != 3 or jacobians.shape[1:] != (3, 3):
        raise ValueError(f"invert_jacobians: expected (M, 3, 3), got {tuple(jacobians.shape)}")
    a, b, c = jacobians[:, 0], jacobians[:, 1], jacobians[:, 2]  # rows
    adjugate_t = torch.stack([torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)], dim=1)
    determinant = (a * adjugate_t[:, 0]).sum(dim=1)
    invertible = determinant.abs() > min_determinant
    safe = torch.where(invertible, determinant, torch.ones_like(determinant))
    inverses = adjugate_t.transpose(1, 2) / safe[:, None, None]
    eye = torch.eye(3, dtype=jacobians.dtype, device=jacobians.device).expand_as(inverses)
    return torch.where(invertible[:, None, None], inverses, eye), invertible
