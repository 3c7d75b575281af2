"""Occupancy samples for training implicit surfaces: labelled points near the surface and in the box.

As PIFu draws them: points on the surface (area-uniform,
:func:`neuralbody.geometry.surface_sampling.sample_surface`) displaced by isotropic Gaussian
noise of a few standard deviations ``sigma`` (each sigma an equal share), plus points uniform in
a box around the person; every point labelled by an inside test (for a clothed person,
:func:`neuralbody.synth.garments.clothed_occupancy`). World coordinates, metres.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from neuralbody.geometry.surface_sampling import sample_surface


@dataclasses.dataclass(frozen=True)
class OccupancySampling:
    """How many points and how far from the surface.

    Attributes:
        near: points near the surface (split evenly over ``sigmas``).
        uniform: points uniform in the padded box.
        sigmas: standard deviations of the displacement, metres.
        box_padding: metres added on every side of the surface's bounding box.
    """

    near: int = 12000
    uniform: int = 4000
    sigmas: tuple[float, ...] = (0.01, 0.04)
    box_padding: float = 0.1

    def __post_init__(self) -> None:
        if self.near < len(self.sigmas) or self.uniform < 0 or not self.sigmas or min(self.sigmas) <= 0:
            raise ValueError(
                f"OccupancySampling: need near >= len(sigmas) > 0, uniform >= 0 and positive sigmas, got {self}"
            )


@dataclasses.dataclass
class OccupancySamples:
    """Labelled points.

    Attributes:
        points: (N, 3) float32 world coordinates, metres (near-surface points first, by sigma, then uniform).
        inside: (N,) bool occupancy.
        box_min, box_max: (3,) float32 the padded box the uniform points fill, metres.
    """

    points: np.ndarray
    inside: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray


def sample_occupancy(
    surface_vertices: torch.Tensor,
    surface_faces: torch.Tensor,
    inside_test: Callable[[torch.Tensor], torch.Tensor],
    sampling: OccupancySampling,
    *,
    seed: int,
) -> OccupancySamples:
    """Points near the surface ``(surface_vertices (V, 3) metres, surface_faces (F, 3))`` and in its
    padded box, labelled by ``inside_test`` ((N, 3) float64 points -> (N,) bool)."""
    rng = np.random.default_rng([seed, 8191])
    shares = np.diff(np.linspace(0, sampling.near, len(sampling.sigmas) + 1).round().astype(int))
    on_surface = sample_surface(surface_vertices, surface_faces, sampling.near, seed=int(rng.integers(2**31))).points
    noise = torch.as_tensor(rng.standard_normal((sampling.near, 3)))
    scale = torch.as_tensor(np.repeat(np.asarray(sampling.sigmas, dtype=np.float64), shares))[:, None]
    vertices = surface_vertices.detach().double()
    box_min = vertices.amin(dim=0) - sampling.box_padding
    box_max = vertices.amax(dim=0) + sampling.box_padding
    uniform = box_min + torch.as_tensor(rng.random((sampling.uniform, 3))) * (box_max - box_min)
    points = torch.cat([on_surface.cpu() + noise * scale, uniform.cpu()])
    inside = torch.as_tensor(inside_test(points)).cpu().numpy().astype(bool)
    return OccupancySamples(
        points=points.float().numpy(),
        inside=inside,
        box_min=box_min.float().cpu().numpy(),
        box_max=box_max.float().cpu().numpy(),
    )
