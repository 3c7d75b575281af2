"""Skinning weights everywhere in canonical space: a learnable voxel grid (as in Fast-SNARF).

The grid holds, at each node n of a regular grid over the canonical box, B logits ``l_nb``;
the node's weights are ``w_n = softmax_b(l_n)`` and a point's weights are the trilinear
interpolation of its cell's node weights, so they are non-negative and sum to one
everywhere, and the forward skinning map is linear in the node weights (see
:mod:`neuralbody.skinning.forward_skinning`).

:func:`weight_grid_from_mesh` initialises it from a body model: each node takes the weights
of the closest point of the rest mesh (the barycentric blend of its face's vertex weights),
stored as ``log(max(w, floor))``. Learning then refines the logits.
"""

from __future__ import annotations

import torch

from neuralbody.geometry.box import body_box
from neuralbody.skinning.forward_skinning import SkinningField, blend_transforms, check_bone_transforms
from neuralbody.skinning.trilinear import check_grid, trilinear

WEIGHT_FLOOR = 1e-6  # smallest initial weight: finite logits; all far bones together shift points by ~0.1 mm
DEFAULT_VOXEL_SIZE = 0.025  # metres between nodes
DEFAULT_PADDING = 0.15  # metres of canonical space kept around the rest mesh


class SkinningWeightGrid(torch.nn.Module):
    """Canonical skinning weights of B bones on an ``X x Y x Z`` grid of nodes.

    Attributes:
        logits: (X, Y, Z, B) learnable logits; node weights are their softmax over bones.
        origin: (3,) buffer, canonical position of node (0, 0, 0), metres.
        spacing: (3,) buffer, distance between nodes per axis, metres.
    """

    def __init__(self, logits: torch.Tensor, origin: torch.Tensor, spacing: torch.Tensor) -> None:
        super().__init__()
        check_grid(logits, "SkinningWeightGrid")
        if origin.shape != (3,) or spacing.shape != (3,) or not bool((spacing > 0).all()):
            raise ValueError(
                f"SkinningWeightGrid: origin must be (3,) and spacing (3,) positive, got {tuple(origin.shape)}, "
                f"{spacing.tolist() if spacing.numel() == 3 else tuple(spacing.shape)}"
            )
        self.logits = torch.nn.Parameter(logits)
        self.register_buffer("origin", origin.to(logits.dtype))
        self.register_buffer("spacing", spacing.to(logits.dtype))

    @property
    def num_bones(self) -> int:
        return int(self.logits.shape[3])

    def node_weights(self) -> torch.Tensor:
        """(X, Y, Z, B) skinning weights at the nodes (softmax of the logits)."""
        return torch.softmax(self.logits, dim=3)

    def weights(self, points: torch.Tensor) -> torch.Tensor:
        """(N, B) skinning weights at canonical points (N, 3), metres (the nearest grid point's outside).

        Takes the softmax of every node: for repeated lookups interpolate :meth:`node_weights` once.
        """
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"SkinningWeightGrid.weights: points must be (N, 3), got {tuple(points.shape)}")
        return trilinear(self.node_weights(), (points - self.origin) / self.spacing).values

    def field(self, bone_transforms: torch.Tensor) -> SkinningField:
        """The frame's forward skinning map for bone transforms (B, 4, 4), differentiable in both."""
        check_bone_transforms(bone_transforms, "SkinningWeightGrid.field", self.num_bones)
        transforms = blend_transforms(self.node_weights(), bone_transforms.to(self.logits.dtype))
        return SkinningField(transforms, self.origin, self.spacing)


def grid_nodes(origin: torch.Tensor, spacing: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(X, Y, Z, 3) canonical positions of the nodes of a grid, metres."""
    axes = [origin[a] + spacing[a] * torch.arange(shape[a], dtype=origin.dtype, device=origin.device) for a in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def surface_weights(vertices: torch.Tensor, faces: torch.Tensor, vertex_weights: torch.Tensor,
                    points: torch.Tensor) -> torch.Tensor:
    """(N, B) weights of the closest surface point of a mesh to each of points (N, 3), metres.

    Args:
        vertices: (V, 3) mesh vertices, metres (same frame as the points).
        faces: (F, 3) int64 triangles.
        vertex_weights: (V, B) per-vertex skinning weights.
        points: (N, 3) query points, metres.
    """
    from neuralbody.geometry.queries import closest_points

    if vertex_weights.ndim != 2 or vertex_weights.shape[0] != vertices.shape[0]:
        raise ValueError(f"surface_weights: vertex_weights must be ({vertices.shape[0]}, B), got "
                         f"{tuple(vertex_weights.shape)}")
    closest = closest_points(vertices.detach().cpu(), faces.cpu(), points.detach().cpu())
    corners = faces.cpu()[closest.face_ids]  # (N, 3) vertices of each point's closest face
    per_vertex = vertex_weights.detach().float().cpu()
    blended = sum(closest.barycentrics[:, k, None].float() * per_vertex[corners[:, k]] for k in range(3))
    return (blended / blended.sum(dim=1, keepdim=True)).to(points.device)


def weight_grid_from_mesh(
    rest_vertices: torch.Tensor,
    faces: torch.Tensor,
    skinning_weights: torch.Tensor,
    *,
    voxel_size: float = DEFAULT_VOXEL_SIZE,
    padding: float = DEFAULT_PADDING,
) -> SkinningWeightGrid:
    """A weight grid over the rest mesh's box, each node taking the closest surface point's weights.

    Args:
        rest_vertices: (V, 3) canonical (rest-pose) vertices, metres.
        faces: (F, 3) int64 triangles.
        skinning_weights: (V, B) per-vertex weights, rows summing to one.
        voxel_size: distance between nodes, metres (rounded so the nodes span the box exactly).
        padding: metres of canonical space added around the vertices' box.

    Returns:
        A float32 :class:`SkinningWeightGrid` on the CPU.
    """

    if rest_vertices.ndim != 2 or rest_vertices.shape[1] != 3:
        raise ValueError(f"weight_grid_from_mesh: rest_vertices must be (V, 3), got {tuple(rest_vertices.shape)}")
    if skinning_weights.ndim != 2 or skinning_weights.shape[0] != rest_vertices.shape[0]:
        raise ValueError(
            f"weight_grid_from_mesh: skinning_weights must be ({rest_vertices.shape[0]}, B), "
            f"got {tuple(skinning_weights.shape)}"
        )
    if voxel_size <= 0 or padding < 0:
        raise ValueError(f"weight_grid_from_mesh: voxel_size must be > 0 and padding >= 0, got {voxel_size}, {padding}")
    vertices = rest_vertices.detach().double().cpu()
    low, high = body_box(vertices, padding)
    shape = tuple(int(n) for n in (torch.ceil((high - low) / voxel_size).long() + 1).clamp_min(2))
    spacing = (high - low) / (torch.tensor(shape, dtype=torch.float64) - 1)
    nodes = grid_nodes(low, spacing, shape).reshape(-1, 3)
    node_weights = surface_weights(vertices, faces, skinning_weights, nodes)
    logits = torch.log(node_weights.clamp_min(WEIGHT_FLOOR)).reshape(*shape, -1)
    return SkinningWeightGrid(logits.float(), low.float(), spacing.float())
