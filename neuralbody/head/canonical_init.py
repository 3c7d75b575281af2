"""IMAvatar's canonical fields started from the face model instead of from a uniform fog.

IMAvatar starts its canonical geometry from a shape (its occupancy network's geometric
initialisation) and pulls its deformation fields towards FLAME's at every canonical point,
each point taking the values of its nearest FLAME vertex. The same here, from the face
model's rest mesh (metres, its rest frame):

* **density** (:func:`mesh_density_raw`): at a node ``x`` with signed distance ``s(x)`` to the
  rest mesh (negative inside, by winding number;
  :func:`neuralbody.geometry.queries.signed_distance`) the raw density is

      raw(x) = raw_out + (raw_in - raw_out) sigmoid(-s(x) / width),   raw_in = softplus^-1(sigma_in / scale),

  so the density is ``sigma_in`` (1/m) well inside, ``scale softplus(raw_out)`` well outside
  and changes over a few ``width`` across the surface;
* **deformation** (:func:`surface_deformation_grid`): at every node of the deformation grid,
  the face model's own fields at the node's closest point ``q = sum_k beta_k v_k`` of the rest
  mesh (``beta`` the barycentrics of the closest face's vertices ``v_k``): blend shapes
  ``E = sum_k beta_k D[:, v_k]``, zero pose correctives and skinning logits ``log max(W(q), 1e-4)``
  with ``W(q) = sum_k beta_k W_{v_k}`` (their softmax is ``W(q)`` up to the floor). Without this,
  nodes away from the mesh stay at zero (no expression, equal weights on the four bones), so
  the fog around the head follows no bone in particular.

:func:`closest_surface_values_reference` is the slow oracle (per node, brute force over the
faces, float64).
"""

from __future__ import annotations

import math

import torch

from neuralbody.geometry.queries import closest_points, closest_points_reference, signed_distance
from neuralbody.head.deformation import NUM_POSE_FEATURES, channel_count
from neuralbody.head.grid_box import GridBox
from neuralbody.head.rig import NUM_ACTIONS, HeadRig

WEIGHT_FLOOR = 1e-4


def node_positions(box: GridBox) -> torch.Tensor:
    """(X Y Z, 3) float32 positions of a box's nodes, metres, x slowest (the grid's memory order)."""
    axes = [torch.arange(n, dtype=torch.float64) * box.spacing + o for n, o in zip(box.shape, box.origin)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3).float()


def mesh_density_raw(rig: HeadRig, box: GridBox, *, inside_density: float, outside_raw: float, scale: float,
                     width: float) -> torch.Tensor:
    """(X, Y, Z) raw density of the box's nodes from the rest mesh (module docstring).

    Args:
        rig: the face model (its rest mesh, metres).
        box: the canonical grid's lattice.
        inside_density: sigma_in, 1/metres, > 0.
        outside_raw: raw_out.
        scale: the avatar's ``sigma = scale softplus(raw)``, 1/metres.
        width: metres, > 0: the surface's blur.
    """
    if inside_density <= 0 or scale <= 0 or width <= 0:
        raise ValueError(f"mesh_density_raw: inside_density, scale and width must be > 0, got "
                         f"{inside_density}, {scale}, {width}")
    ratio = inside_density / scale
    inside_raw = ratio + math.log(-math.expm1(-ratio))  # softplus^-1, stable for large ratios
    distance = signed_distance(rig.rest_vertices, rig.faces, node_positions(box))
    blend = torch.sigmoid(-distance.float() / width)
    return (outside_raw + (inside_raw - outside_raw) * blend).reshape(box.shape)


def _fields_at(rig: HeadRig, faces: torch.Tensor, barycentrics: torch.Tensor) -> torch.Tensor:
    """(N, C) deformation-grid values at surface points given by faces (N,) and barycentrics (N, 3)."""
    corners = rig.faces[faces]  # (N, 3)
    beta = barycentrics.to(rig.expression_basis.dtype)
    expression = torch.einsum("nk,ankc->nca", beta, rig.expression_basis[:, corners])  # (N, 3, A)
    weights = torch.einsum("nk,nkb->nb", beta, rig.weights[corners])
    correctives = expression.new_zeros(expression.shape[0], 3 * NUM_POSE_FEATURES)
    logits = torch.log(weights.clamp_min(WEIGHT_FLOOR))
    return torch.cat([expression.reshape(expression.shape[0], -1), correctives, logits], dim=1)


def surface_deformation_grid(rig: HeadRig, box: GridBox) -> torch.Tensor:
    """(X, Y, Z, C) the face model's fields at each node's closest rest-mesh point (module docstring)."""
    found = closest_points(rig.rest_vertices, rig.faces, node_positions(box))
    if bool((found.face_ids < 0).any()):
        raise ValueError("surface_deformation_grid: the rest mesh has no usable (non-degenerate) face")
    values = _fields_at(rig, found.face_ids.long(), found.barycentrics)
    return values.float().reshape(*box.shape, channel_count(NUM_ACTIONS, NUM_POSE_FEATURES, rig.weights.shape[1]))


def closest_surface_values_reference(rig: HeadRig, points: torch.Tensor) -> torch.Tensor:
    """(N, C) float64 slow oracle of :func:`surface_deformation_grid`'s values at points (N, 3), metres.

    Brute-force closest points (:func:`neuralbody.geometry.queries.closest_points_reference`), then
    the channels filled one by one in loops, in the deformation grid's layout (E as (3, A) row-major,
    then Pc, then the logits).
    """
    found = closest_points_reference(rig.rest_vertices.double().numpy(), rig.faces.numpy(), points.double().numpy())
    bones = rig.weights.shape[1]
    out = torch.zeros(points.shape[0], channel_count(NUM_ACTIONS, NUM_POSE_FEATURES, bones), dtype=torch.float64)
    for n in range(points.shape[0]):
        corners = rig.faces[int(found.face_ids[n])].tolist()
        beta = [float(b) for b in found.barycentrics[n]]
        for c in range(3):
            for a in range(NUM_ACTIONS):
                out[n, c * NUM_ACTIONS + a] = sum(b * float(rig.expression_basis[a, v, c]) for b, v in zip(beta, corners))
        for j in range(bones):
            weight = sum(b * float(rig.weights[v, j]) for b, v in zip(beta, corners))
            out[n, 3 * (NUM_ACTIONS + NUM_POSE_FEATURES) + j] = math.log(max(weight, WEIGHT_FLOOR))
    return out
