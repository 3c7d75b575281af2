"""neuralbody.geometry: triangle-mesh queries with NVIDIA Warp (CPU or CUDA).

``queries``: closest points, winding-number inside tests and signed distances (:class:`WarpMesh`
holds the BVH for repeated queries). ``raycast``: first ray hits, for rendering synthetic images.
"""

from neuralbody.geometry.queries import (
    WINDING_THRESHOLD,
    ClosestPoints,
    WarpMesh,
    closest_point_on_triangles,
    closest_points,
    closest_points_reference,
    inside,
    signed_distance,
    winding_number_reference,
)

__all__ = [
    "WINDING_THRESHOLD",
    "ClosestPoints",
    "WarpMesh",
    "closest_point_on_triangles",
    "closest_points",
    "closest_points_reference",
    "inside",
    "signed_distance",
    "winding_number_reference",
]
