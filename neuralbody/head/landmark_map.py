"""Where MediaPipe's 478 face landmarks sit on Anny's head: a surface point each, derived here.

MediaPipe's face mesh predicts the points of its own 468-vertex face model (plus 10 iris
points); Anny's head is another mesh. The correspondence is ours, measured once
(``docs/make_head_landmark_table.py``, stored in :mod:`neuralbody.head.landmark_table`):

1. Anny's neutral head (expression 0, pose 0, the rest mesh) is rendered by
   :func:`neuralbody.head.mesh_render.render_mesh` from ``C`` known cameras around the face
   (nine: azimuths -0.35, 0, 0.35 rad by elevations -0.2, 0, 0.2 rad; 512 x 512) and MediaPipe
   finds its landmarks in every view;
2. each landmark is triangulated from the views (:func:`neuralbody.data.triangulation.triangulate`,
   robust DLT) to a point ``X_l`` in Anny's rest frame (metres);
3. ``X_l`` is snapped to the closest point of Anny's surface
   (:func:`neuralbody.geometry.queries.closest_points`): a face ``f_l`` and barycentrics
   ``b_l``, so the landmark follows the mesh through expressions and skinning:
   ``p_l = sum_k b_lk x[faces[f_l, k]]``;
4. its weight in the fit is ``w_l = 1 / (1 + (d_l / 4 mm)^2 + (e_l / 4 px)^2)``, with
   ``d_l`` the snapping distance (how far the triangulated point is off Anny's surface: the
   two face models disagree there, e.g. on the jaw line) and ``e_l`` the triangulation's
   RMS reprojection error over the views (the landmark is unstable across views: silhouette
   points slide).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.cameras import Camera
from neuralbody.data.triangulation import triangulate
from neuralbody.geometry.queries import closest_points

SNAP_SCALE = 0.004  # metres
RESIDUAL_SCALE = 4.0  # pixels (of the 512 x 512 derivation views)


@dataclasses.dataclass
class LandmarkMap:
    """Each landmark as a point of a triangle of the head mesh.

    Attributes:
        face_ids: (L,) int64 triangle of each landmark (rows of the rig's ``faces``).
        barycentrics: (L, 3) float weights of the triangle's vertices (sum to 1).
        weights: (L,) float in (0, 1]: the landmark's weight in the fit.
    """

    face_ids: torch.Tensor
    barycentrics: torch.Tensor
    weights: torch.Tensor

    def __post_init__(self) -> None:
        count = self.face_ids.shape[0]
        if self.face_ids.shape != (count,) or self.barycentrics.shape != (count, 3) or self.weights.shape != (count,):
            raise ValueError(f"LandmarkMap: face_ids (L,), barycentrics (L, 3), weights (L,) needed, got "
                             f"{tuple(self.face_ids.shape)}, {tuple(self.barycentrics.shape)}, {tuple(self.weights.shape)}")


def default_landmark_map() -> LandmarkMap:
    """The stored map of MediaPipe's 478 landmarks on Anny's head (:mod:`neuralbody.head.landmark_table`)."""
    from neuralbody.head.landmark_table import TABLE

    table = np.asarray(TABLE, dtype=np.float64)
    b = table[:, 1:3]
    return LandmarkMap(face_ids=torch.from_numpy(table[:, 0].astype(np.int64)),
                       barycentrics=torch.from_numpy(np.concatenate([b, 1.0 - b.sum(1, keepdims=True)], 1)).float(),
                       weights=torch.from_numpy(table[:, 3]).float())


def landmark_vertices(faces: torch.Tensor, landmarks: LandmarkMap) -> tuple[torch.Tensor, torch.Tensor]:
    """The vertices (L, 3) int64 and their weights (L, 3) that make each landmark (faces (F, 3))."""
    if int(landmarks.face_ids.max()) >= faces.shape[0] or int(landmarks.face_ids.min()) < 0:
        raise ValueError(f"landmark_vertices: the map names triangle {int(landmarks.face_ids.max())} of a mesh "
                         f"with {faces.shape[0]}; it was derived for another mesh")
    return faces[landmarks.face_ids], landmarks.barycentrics


def landmark_points(vertices: torch.Tensor, faces: torch.Tensor, landmarks: LandmarkMap) -> torch.Tensor:
    """(..., L, 3) landmark positions on meshes with vertices (..., V, 3), metres."""
    index, weights = landmark_vertices(faces, landmarks)
    return (vertices[..., index, :] * weights.to(vertices)[..., None]).sum(dim=-2)


def derive_landmark_map(vertices: torch.Tensor, faces: torch.Tensor, cameras: list[Camera],
                        detections: np.ndarray) -> tuple[LandmarkMap, dict[str, np.ndarray]]:
    """The map from landmarks seen on a rendered mesh (the module docstring, steps 2-4).

    Args:
        vertices: (V, 3) the rendered mesh, metres. faces: (F, 3).
        cameras: the C views the mesh was rendered by.
        detections: (C, L, 3) ``(u, v, found)`` pixels per view (found 0: not seen in that view).

    Returns:
        the map, and per-landmark diagnostics: ``snap_m`` (L,) snapping distance, metres;
        ``residual_px`` (L,) RMS reprojection error of the triangulated point; ``points`` (L, 3).
    """
    detections = np.asarray(detections, dtype=np.float64)
    if detections.ndim != 3 or detections.shape[0] != len(cameras) or detections.shape[2] != 3:
        raise ValueError(f"derive_landmark_map: detections must be ({len(cameras)}, L, 3), got {detections.shape}")
    if (detections[..., 2] > 0).sum(0).min() < 2:
        raise ValueError("derive_landmark_map: every landmark must be seen in at least two views")
    result = triangulate(cameras, detections, sigma_px=RESIDUAL_SCALE)
    residual = np.sqrt(np.nanmean(result.residual_px**2, axis=0))
    snapped = closest_points(vertices.double(), faces, torch.from_numpy(result.points))
    distance = snapped.distances.double().numpy()
    weights = 1.0 / (1.0 + (distance / SNAP_SCALE) ** 2 + (residual / RESIDUAL_SCALE) ** 2)
    landmarks = LandmarkMap(face_ids=snapped.face_ids.long(), barycentrics=snapped.barycentrics.float(),
                            weights=torch.from_numpy(weights).float())
    return landmarks, {"snap_m": distance, "residual_px": residual, "points": result.points}
