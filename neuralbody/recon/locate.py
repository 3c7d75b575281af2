"""Where the person is, from the masks alone: a coarse visual hull and its box.

1. Centre guess: the point nearest, in the least-squares sense, to the rays through each mask's
   centroid, ``c = argmin_x sum_v |(I - d_v d_v^T)(x - o_v)|^2`` (camera centres ``o_v``, unit
   directions ``d_v``, lens distortion included).
2. A cube of ``extent`` metres around it is sampled every ``4 voxel`` metres; a point is kept where
   every view whose image it projects into has it inside the mask (nearest pixel), and at least
   two views see it (a view the person leaves does not carve them away).
3. The box of the kept points, grown by one spacing on each side, is sampled again every ``voxel``
   metres, and the box of the points kept there, grown by one voxel, is the person's.

World coordinates, metres. The hull holds the person (it only errs outwards, by the concavities no
view sees into), so its box does too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from neuralbody.data.cameras import Camera, pixel_rays, project_points


@dataclasses.dataclass
class PersonBox:
    """box_min, box_max: (3,) world metres; centre: (3,) their midpoint; kept: grid points in the hull."""

    box_min: np.ndarray
    box_max: np.ndarray
    centre: np.ndarray
    kept: int


def nearest_point_to_rays(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(3,) the point minimising the summed squared distance to rays ``origins`` (R, 3) + t ``directions`` (R, 3)."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    projectors = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # (R, 3, 3)
    A = projectors.sum(axis=0)
    b = np.einsum("rij,rj->i", projectors, origins)
    if np.linalg.cond(A) > 1e8:
        raise ValueError("the masks' rays are (nearly) parallel: two views at an angle are needed to place the person")
    return np.linalg.solve(A, b)


def mask_votes(points: np.ndarray, cameras: list[Camera], masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For points (N, 3) world metres: (V, N) bool projecting into each image, and (V, N) bool inside each mask (H, W)."""
    in_image = np.zeros((len(cameras), len(points)), dtype=bool)
    in_mask = np.zeros_like(in_image)
    for view, (camera, mask) in enumerate(zip(cameras, masks)):
        uv, depth = project_points(camera, points)
        cols, rows = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
        seen = (depth > 0) & (cols >= 0) & (cols < camera.width) & (rows >= 0) & (rows < camera.height)
        in_image[view] = seen
        in_mask[view, seen] = mask[rows[seen], cols[seen]]
    return in_image, in_mask


def locate_person(cameras: list[Camera], masks: list[np.ndarray], *, voxel: float = 0.03, extent: float = 2.6) -> PersonBox:
    """The person's box from two or more calibrated masks (H, W) bool (see the module docstring)."""
    if len(cameras) != len(masks) or len(cameras) < 2:
        raise ValueError(f"locating the person needs masks from two or more views, got {len(masks)}")
    origins, directions = [], []
    for camera, mask in zip(cameras, masks):
        if mask.shape != (camera.height, camera.width):
            raise ValueError(f"mask of camera {camera.name!r} is {mask.shape}, expected {(camera.height, camera.width)}")
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            raise ValueError(f"the mask of camera {camera.name!r} is empty: nobody to locate")
        o, d = pixel_rays(camera, np.array([[cols.mean(), rows.mean()]]))
        origins.append(o[0])
        directions.append(d[0])
    centre = nearest_point_to_rays(np.array(origins), np.array(directions))
    low, high = centre - extent / 2, centre + extent / 2
    for spacing in (4 * voxel, voxel):  # coarse over the cube, then fine over the coarse hull's box
        axes = [np.arange(low[a], high[a] + 1e-9, spacing) for a in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        in_image, in_mask = mask_votes(grid, cameras, masks)
        kept = grid[(in_mask | ~in_image).all(axis=0) & (in_image.sum(axis=0) >= 2)]
        if len(kept) == 0:
            raise ValueError("the masks do not agree on any point in space: check the calibration and the masks")
        low, high = kept.min(axis=0) - spacing, kept.max(axis=0) + spacing
    return PersonBox(box_min=low, box_max=high, centre=(low + high) / 2, kept=len(kept))
