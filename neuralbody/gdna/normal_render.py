"""Normal maps and colour renders of a mesh seen from the front, and a contact sheet of several.

An orthographic view along the body frame's +y axis (from the front of a person facing -y, z
up): one ray a pixel, parallel, cast with Warp (:func:`neuralbody.geometry.raycast.cast_rays`);
a hit pixel shows the mesh's vertex normals interpolated at the hit (barycentric weights,
renormalised) as the colour ``(n + 1) / 2``, a miss the background. A colour render shows the
vertex colours ``c`` interpolated the same way, shaded by a light at the viewer,
``c (a + (1 - a) |n_y|)`` with ambient ``a`` = :data:`AMBIENT` (``shade=False``: ``c`` unshaded).
The view covers the
square ``[cx - h, cx + h] x [cz - h, cz + h]`` around the given centre, ``h`` half its side,
metres; image row 0 at the top (largest z).
"""

from __future__ import annotations

import numpy as np
import torch

from neuralbody.gdna.meshing import NormalMesh
from neuralbody.gdna.normal_views import FRONT, orthographic_rays
from neuralbody.geometry.raycast import cast_rays

BACKGROUND = 1.0
AMBIENT = 0.35


def _cast(mesh: NormalMesh, size: int, centre: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hit (size * size,) bool, corners (H, 3) vertex ids, weights (H, 3, 1) barycentrics) of the view's rays."""
    if size < 1 or not half > 0 or np.shape(centre) != (3,):
        raise ValueError(f"render: size >= 1, half > 0, centre (3,); got {size}, {half}, {np.shape(centre)}")
    level = torch.tensor([centre[0], float(mesh.vertices[:, 1].min()) - 1.0, centre[2]], dtype=torch.float32)
    origins, directions = orthographic_rays(FRONT, level, half, size, far=0.0)  # rays start 1 m before the mesh
    hits = cast_rays(torch.as_tensor(mesh.vertices, dtype=torch.float32), torch.as_tensor(mesh.faces), origins,
                     directions)
    hit = hits.hit.numpy()
    return hit, mesh.faces[hits.face_ids.numpy()[hit]], hits.barycentrics.numpy()[hit][:, :, None]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def render_normals(mesh: NormalMesh, size: int, centre: np.ndarray, half: float) -> np.ndarray:
    """(size, size, 3) float32 normal map in [0, 1] of the mesh (module docstring).

    Args:
        mesh: the mesh with normals, body frame, metres.
        size: image side, pixels.
        centre: (3,) centre of the view (its y is ignored), metres.
        half: half the side of the square seen, metres.
    """
    hit, corners, weights = _cast(mesh, size, centre, half)
    image = np.full((size * size, 3), BACKGROUND, dtype=np.float32)
    normals = _unit((weights * mesh.normals[corners]).sum(axis=1))
    image[hit] = (0.5 * (normals + 1.0)).astype(np.float32)
    return image.reshape(size, size, 3)


def render_colours(mesh: NormalMesh, size: int, centre: np.ndarray, half: float, *, shade: bool = True) -> np.ndarray:
    """(size, size, 3) float32 colour render in [0, 1] of a mesh with colours (module docstring).

    Args:
        mesh: the mesh with normals and colours, body frame, metres.
        size: image side, pixels.
        centre: (3,) centre of the view (its y is ignored), metres.
        half: half the side of the square seen, metres.
        shade: light the colours (else the albedo as is).
    """
    if mesh.colours is None:
        raise ValueError("render_colours: the mesh has no colours")
    hit, corners, weights = _cast(mesh, size, centre, half)
    image = np.full((size * size, 3), BACKGROUND, dtype=np.float32)
    colours = (weights * np.asarray(mesh.colours)[corners]).sum(axis=1)
    if shade:
        light = np.abs(_unit((weights * mesh.normals[corners]).sum(axis=1))[:, 1:2])
        colours = colours * (AMBIENT + (1.0 - AMBIENT) * light)
    image[hit] = np.clip(colours, 0.0, 1.0).astype(np.float32)
    return image.reshape(size, size, 3)


def contact_sheet(images: list[np.ndarray], columns: int) -> np.ndarray:
    """(rows * h, columns * w, 3) images (h, w, 3) laid out row by row, empty tiles the background."""
    if not images or columns < 1 or len({im.shape for im in images}) != 1:
        raise ValueError(f"contact_sheet: need images of one shape and columns >= 1, got {len(images)}, {columns}")
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    sheet = np.full((rows * h, columns * w, 3), BACKGROUND, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    return sheet
