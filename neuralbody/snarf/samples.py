"""Points around a posed mesh, labelled inside or outside: what the occupancy is trained and scored on.

* :func:`near_surface_points`: points on the surface (area-uniform) moved along the face normal
  by a distance uniform in ``[-band, band]`` metres: half inside, half outside a smooth closed
  surface, all within ``band`` of it (the "near-surface" samples of the IoU).
* :func:`box_points`: uniform in the mesh's axis-aligned box grown by ``padding`` metres (the
  volumetric samples).
* :func:`training_points`: SNARF's training mix: surface points with isotropic Gaussian noise
  of ``sigma_near`` (most of them) and ``sigma_far``, plus uniform points in the padded box.

Inside-ness is the generalised winding number of the mesh above 0.5
(:meth:`neuralbody.geometry.queries.WarpMesh.inside`). Random numbers come from numpy
generators seeded by the caller, so every set is reproducible. Metres, in the mesh's frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.evaluation.geometry_metrics import sample_surface
from neuralbody.geometry.box import body_box
from neuralbody.geometry.queries import WarpMesh


@dataclasses.dataclass
class LabelledPoints:
    """Points with their ground-truth occupancy.

    Attributes:
        points: (N, 3) float32, metres.
        inside: (N,) bool, inside the mesh.
    """

    points: torch.Tensor
    inside: torch.Tensor


@dataclasses.dataclass(frozen=True)
class TrainingMix:
    """How training points are drawn around a posed mesh.

    Attributes:
        sigma_near: standard deviation of the Gaussian noise of most surface points, metres.
        sigma_far: standard deviation of the noise of the others, metres.
        far_fraction: share of surface points with ``sigma_far`` noise.
        box_fraction: share of points uniform in the padded box.
        padding: metres added around the mesh's box.
    """

    sigma_near: float = 0.01
    sigma_far: float = 0.05
    far_fraction: float = 0.3
    box_fraction: float = 0.2
    padding: float = 0.1

    def __post_init__(self) -> None:
        if not (self.sigma_near > 0 and self.sigma_far > 0 and self.padding >= 0):
            raise ValueError(f"TrainingMix: sigmas must be > 0 and padding >= 0 metres, got {self}")
        if not (0 <= self.far_fraction <= 1 and 0 <= self.box_fraction <= 1):
            raise ValueError(f"TrainingMix: fractions must lie in [0, 1], got {self.far_fraction}, {self.box_fraction}")


def near_surface_points(vertices: torch.Tensor, faces: torch.Tensor, count: int, band: float, seed: int) -> torch.Tensor:
    """(count, 3) float32 points within ``band`` metres of a mesh ((V, 3) metres, (F, 3)), see the module docstring."""
    if not band > 0:
        raise ValueError(f"near_surface_points: band must be > 0 metres, got {band}")
    samples = sample_surface(vertices, faces, count, seed)
    offsets = np.random.default_rng([seed, 1]).uniform(-band, band, (count, 1))
    return (samples.points + samples.normals * torch.as_tensor(offsets, device=samples.points.device)).float()


def box_points(vertices: torch.Tensor, count: int, padding: float, seed: int) -> torch.Tensor:
    """(count, 3) float32 points uniform in the box of vertices (V, 3), metres, grown by ``padding`` metres."""
    if count < 0 or padding < 0:
        raise ValueError(f"box_points: count and padding must be >= 0, got {count}, {padding}")
    low, high = body_box(vertices.detach().double(), padding)
    unit = torch.as_tensor(np.random.default_rng([seed, 2]).random((count, 3)), device=vertices.device)
    return (low + unit * (high - low)).float()


def training_points(mesh: WarpMesh, count: int, seed: int, mix: TrainingMix = TrainingMix()) -> LabelledPoints:
    """``count`` labelled points around ``mesh`` drawn by ``mix`` (module docstring), seeded by ``seed``."""
    if count < 1:
        raise ValueError(f"training_points: count must be >= 1, got {count}")
    in_box = int(round(mix.box_fraction * count))
    on_surface = count - in_box
    far = int(round(mix.far_fraction * on_surface))
    vertices = mesh.vertices.float()
    parts = []
    if on_surface:
        surface = sample_surface(mesh.vertices, mesh.faces, on_surface, seed).points.float()
        sigma = torch.full((on_surface, 1), mix.sigma_near)
        sigma[:far] = mix.sigma_far
        noise = torch.as_tensor(np.random.default_rng([seed, 3]).standard_normal((on_surface, 3)), dtype=torch.float32)
        parts.append(surface + sigma * noise)
    if in_box:
        parts.append(box_points(vertices, in_box, mix.padding, seed))
    points = torch.cat(parts)
    return LabelledPoints(points, mesh.inside(points))
