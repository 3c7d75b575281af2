"""neuralbody.geometry: the geometric primitives every other layer builds on.

``rotations``: axis-angle <-> matrix and look-at (one implementation each). ``box``: the
padded box around a posed body. ``normals``: face and vertex normals of triangle meshes.
``surface_sampling``: area-uniform points on a mesh.
``queries``: closest points, winding-number inside tests and signed distances on triangle
meshes with NVIDIA Warp (:class:`WarpMesh` holds the BVH for repeated queries). ``raycast``:
first ray hits, for rendering synthetic images. (Triangulation needs cameras: it lives in
:mod:`neuralbody.data.triangulation`.)

The Warp-backed names are imported on first use, so ``rotations``, ``box`` and ``normals``
load without Warp. Nothing here imports another ``neuralbody`` package.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "WINDING_THRESHOLD": "queries",
    "ClosestPoints": "queries",
    "WarpMesh": "queries",
    "closest_point_on_triangles": "queries",
    "closest_points": "queries",
    "closest_points_reference": "queries",
    "inside": "queries",
    "signed_distance": "queries",
    "winding_number_reference": "queries",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuralbody.geometry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"neuralbody.geometry.{module}"), name)
