"""A studio backdrop for rays that miss the body: a tiled floor and a soft-toned wall.

Real captures are filmed in a room; their images are blacked out outside the person mask
before training (Neural Body's convention), so the room shows only where the mask is wrong
(a dilated or ragged mask keeps a halo of floor and wall). A synthetic capture with mask
errors renders this backdrop behind the body, then blacks out outside its degraded mask.

World frame z up, metres. A ray ``o + t d`` with ``d_z < 0`` meets the floor ``z = floor_z`` at
``t = (floor_z - o_z) / d_z``: grey tiles of 0.5 m with 1 cm dark grout; other rays see the
wall, whose colour varies smoothly with the ray's azimuth and elevation. No lighting.
"""

from __future__ import annotations

import math

import torch

TILE = 0.5  # metres
GROUT = 0.01  # metres


def backdrop_colour(rays_o: torch.Tensor, rays_d: torch.Tensor, floor_z: float) -> torch.Tensor:
    """(N, 3) colour in [0, 1] seen along rays (origins (N, 3), world metres; unit directions (N, 3))."""
    if rays_o.shape != rays_d.shape or rays_o.ndim != 2 or rays_o.shape[1] != 3:
        raise ValueError(
            f"backdrop_colour: rays_o and rays_d must be (N, 3), got {tuple(rays_o.shape)}, {tuple(rays_d.shape)}"
        )
    down = rays_d[:, 2] < -1e-6
    t = torch.where(down, (floor_z - rays_o[:, 2]) / torch.where(down, rays_d[:, 2], -torch.ones_like(rays_d[:, 2])),
                    torch.zeros_like(rays_d[:, 2]))  # fmt: skip
    floor_hit = down & (t > 0)
    xy = rays_o[:, :2] + t[:, None] * rays_d[:, :2]
    cell = torch.floor(xy / TILE)
    parity = (cell[:, 0] + cell[:, 1]).remainder(2.0)
    within = xy - cell * TILE
    grout = ((within < GROUT) | (within > TILE - GROUT)).any(dim=1)
    floor = (0.42 + 0.08 * parity)[:, None] * torch.tensor([1.0, 0.97, 0.92], dtype=rays_d.dtype, device=rays_d.device)
    floor = torch.where(grout[:, None], floor * 0.45, floor)
    azimuth = torch.atan2(rays_d[:, 1], rays_d[:, 0])
    elevation = torch.asin(rays_d[:, 2].clamp(-1.0, 1.0))
    wall = torch.stack([
        0.55 + 0.12 * torch.sin(azimuth * 3.0),
        0.58 + 0.10 * torch.sin(azimuth * 2.0 + 1.0),
        0.60 + 0.12 * torch.cos(azimuth * 3.0 + 0.5),
    ], dim=1) * (0.85 + 0.3 * (elevation / math.pi + 0.5))[:, None]  # fmt: skip
    return torch.where(floor_hit[:, None], floor, wall).clamp(0.0, 1.0)
