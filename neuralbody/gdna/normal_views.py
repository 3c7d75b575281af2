"""Small normal maps of a posed scan from a ring of views, each pixel with its canonical correspondence.

gDNA's adversarial loss compares normal maps rendered from the model with normal maps of the
scans. In the detail stage the coarse network is frozen, so the model's surface there is the
scan's own geometry as far as the detail network is concerned: a pixel's posed surface point
``x'`` (the first hit of its ray on the scan) has a canonical correspondence ``x*`` (the same
forward-skinning search as the normal loss's targets,
:func:`~neuralbody.gdna.correspondences.surface_correspondences`), and the model's normal there is
``J^{-T} N(x*) / |J^{-T} N(x*)|``. Rendering the scan once per view, before training, gives both
the "real" normal map (the scan's) and everything the "fake" one needs; a training step then only
evaluates the detail network at the pixels' ``x*`` (:mod:`neuralbody.gdna.adversarial`).

Views: ``V`` orthographic cameras on a ring around the body frame's z axis (z up; the person
faces -y), view ``k`` at yaw ``theta_k = 2 pi k / V`` (view 0 from the front, looking along +y).
A view's frame: x to the image's right, y up, z towards the camera; its rotation (body frame to
view) is ``R_k = R_0 Rz(theta_k)^T`` with ``R_0`` rows ``(1, 0, 0), (0, 0, 1), (0, -1, 0)``. Each
view sees the square ``[-h, h]^2`` (view x, y) around the scan's bounding-box centre ``c``, ``h``
= ``margin`` times half the box's largest side, ``size x size`` pixels, row 0 at the top; pixel
``(i, j)``'s ray starts at ``c + R_k^T (u_j, v_i, far)`` and runs along ``-z`` of the view. A hit
pixel's real normal is the scan's vertex normals interpolated at the hit (barycentric,
renormalised), in the view's frame; pixels without a hit, or whose hit has no correspondence,
are off the mask. Metres; body frame (:mod:`neuralbody.snarf.frame_pose`).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from neuralbody.gdna.correspondences import surface_correspondences
from neuralbody.gdna.shape_skinning import ShapeSkinning
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.raycast import cast_rays

FRONT = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Body frame to the front view's frame (x right, y up, z towards the camera)."""


@dataclasses.dataclass(frozen=True)
class ViewOptions:
    """``views`` cameras on the ring, ``size`` pixels a side, ``margin`` around the scan's box (module docstring)."""

    views: int = 4
    size: int = 96
    margin: float = 1.05

    def __post_init__(self) -> None:
        if self.views < 1 or self.size < 2 or not self.margin > 0:
            raise ValueError(f"ViewOptions: views >= 1, size >= 2, margin > 0; got {self}")


@dataclasses.dataclass
class ViewHits:
    """One view of a mesh.

    Attributes:
        hit: (S, S) bool, the pixel's ray meets the mesh.
        points: (S, S, 3) float32 first hits, the mesh's frame, metres (zeros off ``hit``).
        normals: (S, S, 3) float32 unit interpolated vertex normals in the view's frame (zeros off ``hit``).
    """

    hit: torch.Tensor
    points: torch.Tensor
    normals: torch.Tensor


@dataclasses.dataclass
class NormalViews:
    """A scan's views with the pixels' canonical correspondences.

    Attributes:
        rotations: (V, 3, 3) float32 body frame to each view's frame.
        mask: (V, S, S) bool, pixels with a hit and a correspondence.
        real: (V, S, S, 3) float32 the scan's unit normals in the view's frame (zeros off the mask).
        index: (V, S, S) int64 each masked pixel's row in ``canonical`` (-1 off the mask).
        canonical: (P, 3) float32 the masked pixels' canonical correspondences, metres.
        inverse_transpose: (P, 3, 3) float32 ``J^{-T}`` there.
    """

    rotations: torch.Tensor
    mask: torch.Tensor
    real: torch.Tensor
    index: torch.Tensor
    canonical: torch.Tensor
    inverse_transpose: torch.Tensor


def view_rotations(count: int) -> torch.Tensor:
    """(count, 3, 3) float32 body-to-view rotations of the ring, ``R_k = R_0 Rz(2 pi k / count)^T``."""
    if count < 1:
        raise ValueError(f"view_rotations: count must be >= 1, got {count}")
    out = []
    for k in range(count):
        angle = 2.0 * math.pi * k / count
        c, s = math.cos(angle), math.sin(angle)
        yaw = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        out.append(FRONT @ yaw.T)
    return torch.stack(out)


def orthographic_rays(rotation: torch.Tensor, centre: torch.Tensor, half: float, size: int,
                      far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(origins (size * size, 3), directions (size * size, 3)) float32 of an orthographic view, row-major, row 0
    at the top (module docstring): pixel ``(i, j)`` starts at ``centre + R^T (u_j, v_i, far)`` and runs along the
    view's ``-z``; ``rotation`` (3, 3) the frame of ``centre`` (3,) to the view's, ``half`` and ``far`` metres."""
    if rotation.shape != (3, 3) or centre.shape != (3,) or size < 1 or not half > 0:
        raise ValueError(f"orthographic_rays: rotation (3, 3), centre (3,), size >= 1, half > 0; got "
                         f"{tuple(rotation.shape)}, {tuple(centre.shape)}, {size}, {half}")
    rotation, centre = rotation.float(), centre.float()
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2.0 - 1.0
    v, u = torch.meshgrid(-half * steps, half * steps, indexing="ij")  # row 0 at the top
    local = torch.stack([u, v, torch.full_like(u, far)], dim=-1).reshape(-1, 3)
    origins = centre + local @ rotation  # R^T applied to each row
    return origins, (-rotation[2]).expand(len(origins), 3).contiguous()


def cast_view(vertices: torch.Tensor, faces: torch.Tensor, normals: torch.Tensor, rotation: torch.Tensor,
              centre: torch.Tensor, half: float, size: int) -> ViewHits:
    """One orthographic view of a mesh (module docstring).

    Args:
        vertices: (V, 3) mesh vertices, metres.
        faces: (F, 3) int64 triangles.
        normals: (V, 3) unit vertex normals, the vertices' frame.
        rotation: (3, 3) the vertices' frame to the view's.
        centre: (3,) centre of the view, the vertices' frame, metres.
        half: half the side of the square seen, metres.
        size: pixels a side.
    """
    if vertices.ndim != 2 or vertices.shape[1] != 3 or normals.shape != vertices.shape:
        raise ValueError(f"cast_view: vertices and normals (V, 3), got {tuple(vertices.shape)}, {tuple(normals.shape)}")
    far = float((vertices.float() - centre.float()).norm(dim=1).max()) + 1.0
    origins, directions = orthographic_rays(rotation, centre, half, size, far)
    rotation = rotation.float()
    hits = cast_rays(vertices.float(), faces, origins, directions)
    corners = faces[hits.face_ids.clamp_min(0)]  # (N, 3)
    blended = (hits.barycentrics[:, :, None] * normals.float()[corners]).sum(dim=1)
    unit = torch.nn.functional.normalize(blended, dim=1) @ rotation.T
    hit = hits.hit
    points = torch.where(hit[:, None], hits.points(origins, directions), torch.zeros_like(origins))
    unit = torch.where(hit[:, None], unit, torch.zeros_like(unit))
    return ViewHits(hit.reshape(size, size), points.reshape(size, size, 3), unit.reshape(size, size, 3))


def scan_views(skinning: ShapeSkinning, bone_transforms: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor,
               options: ViewOptions = ViewOptions()) -> NormalViews:
    """The views of a posed scan (vertices (V, 3), body frame, faces (F, 3)) with correspondences (bone transforms
    (B, 4, 4), canonical to body frame)."""
    vertices = vertices.float()
    low, high = vertices.min(dim=0).values, vertices.max(dim=0).values
    centre, half = 0.5 * (low + high), options.margin * 0.5 * float((high - low).max())
    normals = vertex_normals(vertices, faces)
    rotations = view_rotations(options.views)
    masks, reals, indices, canonical, inverse_t = [], [], [], [], []
    count = 0
    for rotation in rotations:
        view = cast_view(vertices, faces, normals, rotation, centre, half, options.size)
        found = surface_correspondences(skinning, bone_transforms, view.points[view.hit])
        mask = view.hit.clone()
        mask[view.hit] = found.kept
        index = torch.full(mask.shape, -1, dtype=torch.int64)
        index[mask] = torch.arange(count, count + int(mask.sum()))
        count += int(mask.sum())
        masks.append(mask)
        reals.append(torch.where(mask[..., None], view.normals, torch.zeros_like(view.normals)))
        indices.append(index)
        canonical.append(found.canonical)
        inverse_t.append(found.inverse_transpose)
    return NormalViews(rotations, torch.stack(masks), torch.stack(reals), torch.stack(indices),
                       torch.cat(canonical), torch.cat(inverse_t))
