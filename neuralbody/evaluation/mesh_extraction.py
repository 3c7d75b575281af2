"""Meshes from a radiance field: density on a world grid, mask carving, marching cubes.

Neural Body's protocol (its public code): the density ``sigma`` (1/metres) is sampled on a
regular grid of ``voxel_size`` metres (5 mm there) over the posed body's box, grid points are
kept only where they project inside the person masks of *all* training views (mask carving),
and marching cubes extracts the level set ``sigma = threshold`` (5 for the ZJU-MoCap configs).

Grid point ``(i, j, k)`` lies at ``origin + (i, j, k) * voxel_size`` in WORLD coordinates,
metres; marching cubes runs with ``spacing = voxel_size`` and the origin is added back, so
mesh vertices come out in world metres, in the place the person stands (not in voxel units).
The volume is padded with one layer of zero density so the surface is closed where the body
touches the box.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.cameras import Camera, project_points
from neuralbody.io.atomic import atomic_path
from neuralbody.io.progress import progress_bar
from neuralbody.models.base import FrameField

log = logging.getLogger(__name__)


@dataclasses.dataclass
class MeshSettings:
    """How a mesh is extracted.

    Attributes:
        voxel_size: grid spacing, metres (the original uses 0.005).
        threshold: density level of the surface, 1/metres (5 in the original ZJU configs).
        chunk_points: grid points per model query.
        largest_component: keep only the connected component with the most faces.
        progress: show a bar while sampling the grid (if progress is on: :mod:`neuralbody.io.progress`).
    """

    voxel_size: float = 0.01
    threshold: float = 5.0
    chunk_points: int = 65536
    largest_component: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.voxel_size > 0:
            raise ValueError(f"MeshSettings: voxel_size must be positive metres, got {self.voxel_size}")
        if self.chunk_points < 1:
            raise ValueError(f"MeshSettings: chunk_points must be positive, got {self.chunk_points}")


@dataclasses.dataclass
class DensityGrid:
    """Density on a regular grid.

    Attributes:
        density: (X, Y, Z) float32, 1/metres; ``density[i, j, k]`` at ``origin + (i, j, k) * voxel_size``.
        origin: (3,) world position of grid point (0, 0, 0), metres.
        voxel_size: grid spacing, metres.
    """

    density: np.ndarray
    origin: np.ndarray
    voxel_size: float

    def points(self) -> np.ndarray:
        """(X * Y * Z, 3) world positions of the grid points, metres, in ``density.ravel()`` order."""
        axes = [self.origin[a] + np.arange(n) * self.voxel_size for a, n in enumerate(self.density.shape)]
        grid = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.ravel() for g in grid], axis=1)


@dataclasses.dataclass
class Mesh:
    """A triangle mesh: vertices (V, 3) float64 world metres, faces (F, 3) int64, outward winding."""

    vertices: np.ndarray
    faces: np.ndarray

    def to_trimesh(self):
        import trimesh

        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, process=False)


def grid_over_box(box_min: np.ndarray, box_max: np.ndarray, voxel_size: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Origin (3,) metres and shape of the grid covering the box: ``n_a = ceil(extent_a / voxel) + 1`` points per axis."""
    box_min = np.asarray(box_min, dtype=np.float64).reshape(3)
    box_max = np.asarray(box_max, dtype=np.float64).reshape(3)
    if np.any(box_max <= box_min):
        raise ValueError(f"empty box: box_min {box_min.tolist()} must lie below box_max {box_max.tolist()}")
    shape = tuple(int(math.ceil(e / voxel_size - 1e-9)) + 1 for e in (box_max - box_min))
    return box_min, shape


def sample_density(
    field: FrameField,
    *,
    voxel_size: float,
    chunk_points: int = 65536,
    progress: bool = False,
) -> DensityGrid:
    """Query the frame ``field``'s density on a grid over its box (world, metres)."""
    origin, shape = grid_over_box(
        field.box_min.detach().cpu().numpy(), field.box_max.detach().cpu().numpy(), voxel_size
    )
    count = int(np.prod(shape))
    log.info("sampling density on a %dx%dx%d grid (%.1f M points, %.1f mm voxels)", *shape, count / 1e6, voxel_size * 1000)
    device = field.box_min.device
    axes = [torch.as_tensor(origin[a] + np.arange(n) * voxel_size, dtype=torch.float32, device=device) for a, n in enumerate(shape)]
    density = np.empty(count, dtype=np.float32)
    plane = shape[1] * shape[2]
    ys, zs = torch.meshgrid(axes[1], axes[2], indexing="ij")
    yz = torch.stack([ys.reshape(-1), zs.reshape(-1)], dim=1)
    slabs = max(1, chunk_points // plane)
    with torch.no_grad():
        for start in progress_bar(range(0, shape[0], slabs), enabled=progress, desc="density grid", unit="slab"):
            xs = axes[0][start : start + slabs]
            points = torch.cat(
                [xs.repeat_interleave(plane)[:, None], yz.repeat(xs.numel(), 1)], dim=1
            )
            sigma = field.density(points).sigma
            density[start * plane : start * plane + points.shape[0]] = sigma.float().cpu().numpy()
    return DensityGrid(density=density.reshape(shape), origin=origin, voxel_size=float(voxel_size))


def carve_mask(points_world: np.ndarray, cameras: list[Camera], masks: list[np.ndarray]) -> np.ndarray:
    """(N,) bool: points (N, 3) world metres that project inside every mask (H, W) bool (nearest pixel).

    Points behind a camera or projecting outside its image are carved away (False).
    """
    if len(cameras) != len(masks) or not cameras:
        raise ValueError(f"carving needs one mask per camera, got {len(cameras)} cameras and {len(masks)} masks")
    keep = np.ones(len(points_world), dtype=bool)
    for camera, mask in zip(cameras, masks):
        if mask.shape != (camera.height, camera.width):
            raise ValueError(f"mask of camera {camera.name!r} is {mask.shape}, expected {(camera.height, camera.width)}")
        uv, depth = project_points(camera, points_world)
        cols, rows = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
        inside = (depth > 0) & (cols >= 0) & (cols < camera.width) & (rows >= 0) & (rows < camera.height)
        hit = np.zeros(len(points_world), dtype=bool)
        hit[inside] = mask[rows[inside], cols[inside]]
        keep &= hit
    return keep


def carve_mask_reference(points_world: np.ndarray, cameras: list[Camera], masks: list[np.ndarray]) -> np.ndarray:
    """Point-by-point, camera-by-camera version of :func:`carve_mask` (test oracle)."""
    keep = []
    for point in np.asarray(points_world, dtype=np.float64):
        inside_all = True
        for camera, mask in zip(cameras, masks):
            uv, depth = project_points(camera, point[None])
            u, v = int(np.round(uv[0, 0])), int(np.round(uv[0, 1]))
            if depth[0] <= 0 or not (0 <= u < camera.width and 0 <= v < camera.height) or not mask[v, u]:
                inside_all = False
                break
        keep.append(inside_all)
    return np.array(keep, dtype=bool)


def carve_grid(grid: DensityGrid, cameras: list[Camera], masks: list[np.ndarray]) -> DensityGrid:
    """The grid with density set to 0 wherever :func:`carve_mask` is False."""
    keep = carve_mask(grid.points(), cameras, masks).reshape(grid.density.shape)
    log.info("mask carving keeps %.1f%% of the grid", 100.0 * keep.mean())
    return dataclasses.replace(grid, density=np.where(keep, grid.density, 0.0).astype(np.float32))


def marching_cubes_world(grid: DensityGrid, threshold: float) -> Mesh:
    """Level set ``density = threshold`` as a mesh in world metres (outward normals).

    Vertices: ``origin + index_position * voxel_size``. Raises ValueError when the level is
    never crossed (say which density range was found, so the user can pick --threshold).
    """
    from skimage.measure import marching_cubes

    padded = np.pad(grid.density, 1, mode="constant", constant_values=0.0)
    low, high = float(padded.min()), float(padded.max())
    if not low < threshold < high:
        raise ValueError(
            f"density threshold {threshold} is outside the sampled range [{low:.3g}, {high:.3g}] 1/m; "
            "choose --threshold inside it (or train longer: the field may be empty)"
        )
    vertices, faces, _, _ = marching_cubes(padded, level=threshold, spacing=(grid.voxel_size,) * 3)
    vertices = vertices.astype(np.float64) + (np.asarray(grid.origin, dtype=np.float64) - grid.voxel_size)
    # skimage winds the faces of a bright-inside object clockwise seen from outside: flip them
    # so that normals (right-hand rule) point out of the body.
    return Mesh(vertices=vertices, faces=np.ascontiguousarray(faces[:, ::-1]).astype(np.int64))


def largest_component(mesh: Mesh) -> Mesh:
    """The connected component (faces sharing vertices) with the most faces; unused vertices dropped."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(mesh.faces) == 0:
        return mesh
    edges = np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]]])
    n = len(mesh.vertices)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    face_labels = labels[mesh.faces[:, 0]]
    best = np.bincount(face_labels).argmax()
    faces = mesh.faces[face_labels == best]
    used = np.unique(faces)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return Mesh(vertices=mesh.vertices[used], faces=remap[faces])


def extract_mesh(
    field: FrameField,
    *,
    settings: MeshSettings,
    cameras: list[Camera] | None = None,
    masks: list[np.ndarray] | None = None,
) -> Mesh:
    """Density grid over the frame ``field``'s box -> optional mask carving (``cameras``, ``masks``) -> marching cubes -> world metres."""
    grid = sample_density(
        field, voxel_size=settings.voxel_size, chunk_points=settings.chunk_points, progress=settings.progress
    )
    if cameras is not None and masks is not None:
        grid = carve_grid(grid, cameras, masks)
    mesh = marching_cubes_world(grid, settings.threshold)
    if settings.largest_component:
        mesh = largest_component(mesh)
    log.info("mesh: %d vertices, %d faces", len(mesh.vertices), len(mesh.faces))
    return mesh


def write_mesh(mesh: Mesh, path: str | Path) -> Path:
    """Write a mesh as .ply or .obj (chosen by the suffix), vertices in metres, atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".ply", ".obj"):
        raise ValueError(f"{path}: mesh files must end in .ply or .obj")
    with atomic_path(path, keep_suffix=True) as tmp:  # trimesh picks the format from the suffix
        mesh.to_trimesh().export(tmp)
    return path
