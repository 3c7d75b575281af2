"""Lambert shading with a fixed key light, a fill light and ambient light (no shadows).

For a unit normal ``n`` (turned to face the viewer) and albedo ``a``::

    colour = a * (ambient + key * max(0, n . l_key) + fill * max(0, n . l_fill))

with unit directions ``l`` pointing from the surface towards the lights, fixed in the world
(z up), so the lighting does not depend on the view and is consistent across cameras.
Smooth normals come from area-weighted vertex normals
(:func:`neuralbody.geometry.normals.vertex_normals`) interpolated with barycentrics.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class Lighting:
    """Light directions (towards the light, world, z up; normalised on use) and intensities."""

    key_direction: tuple[float, float, float] = (0.4, -0.6, 0.7)
    key: float = 0.75
    fill_direction: tuple[float, float, float] = (-0.6, 0.5, 0.2)
    fill: float = 0.2
    ambient: float = 0.3


def interpolate(
    values: torch.Tensor, faces: torch.Tensor, face_ids: torch.Tensor, barycentrics: torch.Tensor
) -> torch.Tensor:
    """(N, C) barycentric interpolation of per-vertex ``values`` (V, C) at hits.

    faces: (F, 3) int64; face_ids: (N,) hit faces; barycentrics: (N, 3) weights of the face's vertices.
    """
    corners = faces[face_ids]  # (N, 3)
    return (values[corners] * barycentrics[..., None].to(values.dtype)).sum(dim=1)


def lambert(
    albedo: torch.Tensor, normals: torch.Tensor, view_dirs: torch.Tensor, lighting: Lighting = Lighting()
) -> torch.Tensor:
    """(N, 3) shaded colour in [0, 1].

    Args:
        albedo: (N, 3) surface colour in [0, 1].
        normals: (N, 3) unit normals, world.
        view_dirs: (N, 3) unit ray directions (camera towards the surface), world.
        lighting: light set-up.
    """
    if not (albedo.shape == normals.shape == view_dirs.shape) or albedo.ndim != 2 or albedo.shape[1] != 3:
        raise ValueError(
            f"lambert: albedo, normals, view_dirs must all be (N, 3), got {tuple(albedo.shape)}, "
            f"{tuple(normals.shape)}, {tuple(view_dirs.shape)}"
        )
    facing = torch.where(((normals * view_dirs).sum(1, keepdim=True) > 0), -normals, normals)
    light = torch.full_like(albedo[:, :1], lighting.ambient)
    for direction, intensity in ((lighting.key_direction, lighting.key), (lighting.fill_direction, lighting.fill)):
        d = torch.tensor(direction, dtype=normals.dtype, device=normals.device)
        d = d / d.norm()
        light = light + intensity * (facing @ d).clamp_min(0.0)[:, None]
    return (albedo * light).clamp(0.0, 1.0)
