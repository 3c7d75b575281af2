"""Shading: Lambert lights fixed in the world (directional key and fill, an optional point light),
ambient light, an optional Blinn-Phong sheen and optional shadows cast by the body.

For a unit normal ``n`` (turned to face the viewer), albedo ``a`` and unit directions ``l``
from the surface towards each light::

    colour = a * (ambient c_a + key v_k max(0, n . l_key) c_k + fill max(0, n . l_fill) c_f
                  + point v_p (r_0 / r)^2 max(0, n . l_point) c_p)
             + specular v_k max(0, n . h)^shininess c_k,        h = unit(l_key - view_dir)

with light colours ``c`` (RGB), ``r`` the distance to the point light, ``r_0`` its reference
distance, and ``v`` the visibility of the light (1, or 0 where the body itself blocks it, when
shadows are on; :func:`neuralbody.synth.generate.render_views` casts those rays). Lights are
fixed in the world (z up): as the body turns and moves, its shading and shadows change, and
they are consistent across cameras. The sheen depends on the view (as real fabric and skin do).
Smooth normals come from area-weighted vertex normals
(:func:`neuralbody.geometry.normals.vertex_normals`) interpolated with barycentrics.

:data:`LIGHTING_PRESETS` names the set-ups the synthetic captures use ("studio" is the default,
without point light, sheen or shadows).
"""

from __future__ import annotations

import dataclasses

import torch

WHITE = (1.0, 1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Lighting:
    """Light directions (towards the light, world, z up; normalised on use), positions (world,
    metres), intensities and RGB colours.

    Attributes:
        key_direction, key, key_colour: the directional key light.
        fill_direction, fill, fill_colour: the directional fill light (never shadowed).
        ambient, ambient_colour: light from everywhere.
        point_position: world position of a point light (None: no point light), metres.
        point, point_colour: its intensity at ``point_reference`` metres, and colour.
        point_reference: metres at which the point light has intensity ``point``.
        specular, shininess: Blinn-Phong sheen of the key light (0: none).
        shadows: the body blocks the key and point lights (shadow rays).
    """

    key_direction: tuple[float, float, float] = (0.4, -0.6, 0.7)
    key: float = 0.75
    fill_direction: tuple[float, float, float] = (-0.6, 0.5, 0.2)
    fill: float = 0.2
    ambient: float = 0.3
    key_colour: tuple[float, float, float] = WHITE
    fill_colour: tuple[float, float, float] = WHITE
    ambient_colour: tuple[float, float, float] = WHITE
    point_position: tuple[float, float, float] | None = None
    point: float = 0.0
    point_colour: tuple[float, float, float] = WHITE
    point_reference: float = 3.0
    specular: float = 0.0
    shininess: float = 20.0
    shadows: bool = False


LIGHTING_PRESETS = {
    "studio": Lighting(),
    # a warm lamp up and to the front-left, fixed in the room; a dim cool fill; shadows
    "warm-point": Lighting(
        key=0.0, fill=0.2, fill_colour=(0.8, 0.9, 1.1), ambient=0.22, ambient_colour=(0.95, 0.95, 1.0),
        point_position=(1.6, -2.2, 2.6), point=1.05, point_colour=(1.1, 0.92, 0.72), point_reference=3.5,
        shadows=True,
    ),
    # a hard, low light from one side, cool tint, a little sheen, deep shadows
    "hard-side": Lighting(
        key_direction=(1.0, 0.25, 0.35), key=0.95, key_colour=(0.92, 0.97, 1.08), fill=0.08, ambient=0.14,
        specular=0.12, shininess=30.0, shadows=True,
    ),
    # ceiling light: bright from above, shadows under the arms and the chin
    "overhead": Lighting(
        key_direction=(0.1, -0.15, 1.0), key=0.85, fill=0.12, fill_direction=(0.0, -1.0, 0.1), ambient=0.22,
        specular=0.06, shininess=15.0, shadows=True,
    ),
}


def interpolate(
    values: torch.Tensor, faces: torch.Tensor, face_ids: torch.Tensor, barycentrics: torch.Tensor
) -> torch.Tensor:
    """(N, C) barycentric interpolation of per-vertex ``values`` (V, C) at hits.

    faces: (F, 3) int64; face_ids: (N,) hit faces; barycentrics: (N, 3) weights of the face's vertices.
    """
    corners = faces[face_ids]  # (N, 3)
    return (values[corners] * barycentrics[..., None].to(values.dtype)).sum(dim=1)


def _unit(vector, like: torch.Tensor) -> torch.Tensor:
    d = torch.as_tensor(vector, dtype=like.dtype, device=like.device)
    return d / d.norm(dim=-1, keepdim=True)


def _rgb(colour, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(colour, dtype=like.dtype, device=like.device)


def point_light_rays(points: torch.Tensor, lighting: Lighting) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit directions (N, 3) from surface points (N, 3), world metres, towards the point light, and distances (N,)."""
    if lighting.point_position is None:
        raise ValueError("point_light_rays: the lighting has no point light")
    offset = torch.as_tensor(lighting.point_position, dtype=points.dtype, device=points.device) - points
    distance = offset.norm(dim=1).clamp_min(1e-6)
    return offset / distance[:, None], distance


def shade(
    albedo: torch.Tensor,
    normals: torch.Tensor,
    view_dirs: torch.Tensor,
    lighting: Lighting = Lighting(),
    *,
    points: torch.Tensor | None = None,
    key_visible: torch.Tensor | None = None,
    point_visible: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, 3) shaded colour in [0, 1] (the module docstring's formula).

    Args:
        albedo: (N, 3) surface colour in [0, 1].
        normals: (N, 3) unit normals, world.
        view_dirs: (N, 3) unit ray directions (camera towards the surface), world.
        lighting: light set-up.
        points: (N, 3) surface points, world, metres (needed with a point light).
        key_visible: (N,) visibility in [0, 1] of the key light (None: 1).
        point_visible: (N,) visibility of the point light (None: 1).
    """
    if not (albedo.shape == normals.shape == view_dirs.shape) or albedo.ndim != 2 or albedo.shape[1] != 3:
        raise ValueError(
            f"shade: albedo, normals, view_dirs must all be (N, 3), got {tuple(albedo.shape)}, "
            f"{tuple(normals.shape)}, {tuple(view_dirs.shape)}"
        )
    if lighting.point_position is not None and (points is None or points.shape != albedo.shape):
        raise ValueError("shade: a lighting with a point light needs the surface points (N, 3)")
    facing = torch.where(((normals * view_dirs).sum(1, keepdim=True) > 0), -normals, normals)
    ones = torch.ones_like(albedo[:, 0])
    key_visible = ones if key_visible is None else key_visible.to(albedo.dtype)
    key_dir = _unit(lighting.key_direction, normals)
    key_term = lighting.key * (facing @ key_dir).clamp_min(0.0) * key_visible
    fill_term = lighting.fill * (facing @ _unit(lighting.fill_direction, normals)).clamp_min(0.0)
    light = (lighting.ambient * _rgb(lighting.ambient_colour, albedo) + key_term[:, None] * _rgb(lighting.key_colour, albedo)
             + fill_term[:, None] * _rgb(lighting.fill_colour, albedo))  # fmt: skip
    if lighting.point_position is not None and lighting.point > 0:
        to_light, distance = point_light_rays(points, lighting)
        visible = ones if point_visible is None else point_visible.to(albedo.dtype)
        falloff = (lighting.point_reference / distance) ** 2
        point_term = lighting.point * falloff * (facing * to_light).sum(1).clamp_min(0.0) * visible
        light = light + point_term[:, None] * _rgb(lighting.point_colour, albedo)
    colour = albedo * light
    if lighting.specular > 0:
        half = key_dir[None, :] - view_dirs
        half = half / half.norm(dim=1, keepdim=True).clamp_min(1e-12)
        sheen = lighting.specular * (facing * half).sum(1).clamp_min(0.0) ** lighting.shininess * key_visible
        colour = colour + sheen[:, None] * _rgb(lighting.key_colour, albedo)
    return colour.clamp(0.0, 1.0)


def lambert(
    albedo: torch.Tensor, normals: torch.Tensor, view_dirs: torch.Tensor, lighting: Lighting = Lighting()
) -> torch.Tensor:
    """(N, 3) :func:`shade` of a lighting without point light or shadows (the default studio set-up).

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
    return shade(albedo, normals, view_dirs, lighting)
