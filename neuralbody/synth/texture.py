"""A clothed-looking appearance for a body model: body-part regions and procedural solid textures.

Regions come from the skinning weights: each vertex belongs to the bone that dominates it,
and bone names map to clothing (torso and upper arms -> top, pelvis and legs -> trousers,
feet -> shoes, head -> skin or hair, eyes -> eyes, the rest -> skin). On the torso a
waistband 3 cm above the ``spine04`` joint separates top and trousers. Hair covers the head
above the eyes and its back half.

Colours are *solid textures*: functions of the canonical (rest-pose) position ``p`` of the
surface point, metres, z up, so the pattern moves with the body. Each region mixes a few
deterministic ingredients (all seeded):

* bands ``pulse(u; period, width) = smoothstep`` edges of a periodic square wave,
* value noise ``n(p)`` on an integer lattice with a hashed permutation table, trilinearly
  interpolated with smoothstep weights, and its fractal sum ``fbm``.

top: by default a plaid of 6 cm checks plus fabric grain (:data:`TOP_PATTERNS` has finer ones:
scattered 1 cm dots about 3 cm apart, 4 mm pinstripes 1.5 cm apart, a small-scale print with
5 mm detail);
trousers: diagonal twill ridges (3 cm) and mottling; shoes: a dark upper with a white sole;
skin: a base tone with a few per cent of low-frequency variation; hair: streaks around the
head; eyes: near black. The skin tone and the trousers' colour are drawn from the seed unless
a :class:`TextureStyle` names them (:data:`SKIN_TONES`, :data:`TROUSER_COLOURS`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

REGIONS = ("skin", "top", "trousers", "shoes", "hair", "eyes")
SKIN, TOP, TROUSERS, SHOES, HAIR, EYES = range(len(REGIONS))

_TOP_BONES = ("spine", "clavicle", "shoulder", "upperarm")
_TROUSER_BONES = ("root", "pelvis", "upperleg", "lowerleg")
_SHOE_BONES = ("foot", "toe")


def bone_region(name: str) -> int:
    """Region of a bone by its name (Anny / MakeHuman naming; unknown names -> skin)."""
    base = name.split(".")[0].lower()
    if base.startswith("eye"):
        return EYES
    if base.startswith(_SHOE_BONES):
        return SHOES
    if base.startswith(_TROUSER_BONES):
        return TROUSERS
    if base.startswith(_TOP_BONES):
        return TOP
    return SKIN


def vertex_regions(
    *,
    rest_vertices: torch.Tensor,
    skinning_weights: torch.Tensor,
    joint_names: list[str],
    rest_joints: torch.Tensor,
) -> torch.Tensor:
    """(V,) int64 region index of each vertex.

    Args:
        rest_vertices: (V, 3) canonical vertices, metres, z up.
        skinning_weights: (V, J) skinning weights.
        joint_names: J bone names.
        rest_joints: (J, 3) canonical joint positions, metres.
    """
    if skinning_weights.ndim != 2 or skinning_weights.shape != (rest_vertices.shape[0], len(joint_names)):
        raise ValueError(
            f"vertex_regions: skinning_weights must be (V, J) = ({rest_vertices.shape[0]}, {len(joint_names)}), "
            f"got {tuple(skinning_weights.shape)}"
        )
    bone_regions = torch.tensor([bone_region(n) for n in joint_names], device=rest_vertices.device)
    dominant = skinning_weights.argmax(dim=1)
    regions = bone_regions[dominant].clone()
    names = list(joint_names)
    torso = torch.tensor(
        [n.split(".")[0].startswith(("spine", "root", "pelvis")) for n in names], device=regions.device
    )
    if "spine04" in names:  # the waistband: torso above it wears the top, below it the trousers
        waist_z = rest_joints[names.index("spine04"), 2] + 0.03
        on_torso = torso[dominant]
        regions[on_torso & (rest_vertices[:, 2] >= waist_z)] = TOP
        regions[on_torso & (rest_vertices[:, 2] < waist_z)] = TROUSERS
    if "head" in names:
        head = rest_joints[names.index("head")]
        eyes = [rest_joints[names.index(n)] for n in names if n.startswith("eye")]
        eye_centre = torch.stack(eyes).mean(0) if eyes else head + torch.tensor([0.0, 0.0, 0.04], device=head.device)
        front = eye_centre - head
        front[2] = 0.0
        front = front / front.norm().clamp_min(1e-6)
        rel = rest_vertices - head
        along_front = rel @ front
        z_above_eyes = rest_vertices[:, 2] - eye_centre[2]
        on_head = dominant == names.index("head")
        hair = on_head & ((z_above_eyes > 0.035) | ((along_front < -0.005) & (z_above_eyes > -0.11)))
        regions[hair] = HAIR
    return regions


@dataclasses.dataclass
class SolidTexture:
    """Seeded parameters of the procedural appearance.

    Attributes:
        palette: (R, 3, 3) three colours per region in [0, 1] (base, second, accent).
        permutation: (256,) int64 hash table for value noise.
        lattice_values: (256,) lattice values in [0, 1].
        phases: (8,) pattern offsets, metres.
        floor_z: canonical height of the sole's top edge, metres.
        pattern: the top's pattern, one of :data:`TOP_PATTERNS`.
    """

    palette: torch.Tensor
    permutation: torch.Tensor
    lattice_values: torch.Tensor
    phases: torch.Tensor
    floor_z: float
    pattern: str = "plaid"

    def to(self, device) -> "SolidTexture":
        return dataclasses.replace(
            self,
            palette=self.palette.to(device),
            permutation=self.permutation.to(device),
            lattice_values=self.lattice_values.to(device),
            phases=self.phases.to(device),
        )


_SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.87, 0.67, 0.53], [0.74, 0.53, 0.39], [0.55, 0.37, 0.26]])
_TOP_COLOURS = np.array(
    [[0.75, 0.12, 0.12], [0.15, 0.30, 0.65], [0.12, 0.45, 0.25], [0.85, 0.65, 0.15], [0.45, 0.20, 0.55]]
)
_TROUSER_COLOURS = np.array([[0.16, 0.22, 0.42], [0.55, 0.48, 0.35], [0.25, 0.25, 0.27], [0.36, 0.24, 0.16]])
_HAIR_COLOURS = np.array([[0.10, 0.07, 0.05], [0.30, 0.18, 0.09], [0.65, 0.50, 0.28], [0.08, 0.08, 0.08]])


TOP_PATTERNS = ("plaid", "dots", "pinstripe", "print")
SKIN_TONES = {
    "light": (0.96, 0.80, 0.69),
    "medium": (0.87, 0.67, 0.53),
    "tan": (0.74, 0.53, 0.39),
    "brown": (0.55, 0.37, 0.26),
    "dark": (0.42, 0.27, 0.18),
    "deep": (0.30, 0.19, 0.13),
}
TROUSER_COLOURS = {
    "navy": (0.16, 0.22, 0.42),
    "khaki": (0.55, 0.48, 0.35),
    "charcoal": (0.25, 0.25, 0.27),
    "brown": (0.36, 0.24, 0.16),
    "light": (0.80, 0.77, 0.68),
    "white": (0.90, 0.90, 0.87),
}


@dataclasses.dataclass(frozen=True)
class TextureStyle:
    """Choices that override the seed's draw (None: the seed's choice, as without a style).

    Attributes:
        top_pattern: one of :data:`TOP_PATTERNS`.
        skin_tone: a key of :data:`SKIN_TONES`, or None.
        trousers: a key of :data:`TROUSER_COLOURS`, or None.
    """

    top_pattern: str = "plaid"
    skin_tone: str | None = None
    trousers: str | None = None

    def __post_init__(self) -> None:
        choices = ((self.top_pattern, TOP_PATTERNS, "top_pattern"), (self.skin_tone, SKIN_TONES, "skin_tone"),
                   (self.trousers, TROUSER_COLOURS, "trousers"))  # fmt: skip
        for value, table, what in choices:
            if value is not None and value not in table:
                raise ValueError(f"TextureStyle: unknown {what} {value!r}; choose one of {', '.join(table)}")


def make_texture(seed: int, *, floor_z: float, style: TextureStyle | None = None) -> SolidTexture:
    """Seeded appearance. ``floor_z``: canonical z of the soles plus the sole height, metres.

    ``style`` overrides the pattern of the top and, where it names them, the skin tone and the
    trousers' colour; the seed's other draws are the same with or without it.
    """
    style = style if style is not None else TextureStyle()
    rng = np.random.default_rng([seed, 104729])
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))]
    top = _TOP_COLOURS[rng.permutation(len(_TOP_COLOURS))[:2]]
    trousers = _TROUSER_COLOURS[rng.integers(len(_TROUSER_COLOURS))]
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]
    skin = np.array(SKIN_TONES[style.skin_tone]) if style.skin_tone else skin
    trousers = np.array(TROUSER_COLOURS[style.trousers]) if style.trousers else trousers
    palette = np.stack(
        [
            [skin, skin * np.array([1.0, 0.85, 0.85]), skin * 0.8],
            [top[0], top[1], np.array([0.95, 0.95, 0.9])],
            [trousers, trousers * 1.7 + 0.08, trousers * 0.6],
            [np.array([0.12, 0.12, 0.14]), np.array([0.92, 0.92, 0.9]), np.array([0.8, 0.2, 0.1])],
            [hair, hair * 1.6 + 0.05, hair * 0.6],
            [np.array([0.05, 0.04, 0.04]), np.array([0.9, 0.9, 0.9]), np.array([0.2, 0.3, 0.4])],
        ]
    ).clip(0.0, 1.0)
    return SolidTexture(
        palette=torch.tensor(palette, dtype=torch.float32),
        permutation=torch.tensor(rng.permutation(256), dtype=torch.int64),
        lattice_values=torch.tensor(rng.uniform(0.0, 1.0, 256), dtype=torch.float32),
        phases=torch.tensor(rng.uniform(0.0, 0.1, 8), dtype=torch.float32),
        floor_z=float(floor_z),
        pattern=style.top_pattern,
    )


def value_noise(texture: SolidTexture, points: torch.Tensor) -> torch.Tensor:
    """(N,) lattice value noise in [0, 1] at ``points`` (N, 3) in lattice units (1 = one cell)."""
    cell = torch.floor(points)
    frac = points - cell
    weight = frac * frac * (3.0 - 2.0 * frac)  # smoothstep
    cell = cell.long()
    perm, values = texture.permutation, texture.lattice_values
    out = torch.zeros(points.shape[0], dtype=points.dtype, device=points.device)
    for dx in (0, 1):
        hx = perm[(cell[:, 0] + dx) & 255]
        wx = weight[:, 0] if dx else 1.0 - weight[:, 0]
        for dy in (0, 1):
            hy = perm[(hx + cell[:, 1] + dy) & 255]
            wy = weight[:, 1] if dy else 1.0 - weight[:, 1]
            for dz in (0, 1):
                hz = perm[(hy + cell[:, 2] + dz) & 255]
                wz = weight[:, 2] if dz else 1.0 - weight[:, 2]
                out = out + wx * wy * wz * values[hz]
    return out


def feature_distance(texture: SolidTexture, points: torch.Tensor, *, cell: float) -> torch.Tensor:
    """(N,) distance, metres, from points (N, 3) to the nearest of the seeded feature points, one
    per cube of side ``cell`` metres (cellular noise: the 27 neighbouring cubes are searched)."""
    base = torch.floor(points / cell).long()
    perm, values = texture.permutation, texture.lattice_values
    best = torch.full((points.shape[0],), float("inf"), dtype=points.dtype, device=points.device)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                c = base + torch.tensor([dx, dy, dz], device=points.device)
                h = perm[(perm[(perm[c[:, 0] & 255] + c[:, 1]) & 255] + c[:, 2]) & 255]
                jitter = torch.stack([values[h], values[(h + 85) & 255], values[(h + 170) & 255]], dim=1)
                feature = (c.to(points.dtype) + jitter.to(points.dtype)) * cell
                best = torch.minimum(best, (points - feature).norm(dim=1))
    return best


def fbm(texture: SolidTexture, points: torch.Tensor, *, scale: float, octaves: int = 3) -> torch.Tensor:
    """(N,) fractal value noise in about [-0.5, 0.5]; ``scale``: size of the largest blobs, metres."""
    total = torch.zeros(points.shape[0], dtype=points.dtype, device=points.device)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        frequency = (2.0**octave) / scale
        total = total + amplitude * (value_noise(texture, points * frequency + 17.0 * octave) - 0.5)
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def pulse(u: torch.Tensor, *, period: float, width: float, softness: float = 0.004) -> torch.Tensor:
    """Periodic band indicator in [0, 1]: 1 within ``width`` of each multiple of ``period`` (soft edges, metres)."""
    distance = torch.abs(u - period * torch.round(u / period))
    return torch.clamp((width / 2.0 - distance) / softness + 0.5, 0.0, 1.0)


def _mix(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t[:, None]


def albedo(texture: SolidTexture, points_canonical: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Surface colour before lighting.

    Args:
        texture: from :func:`make_texture` (on the points' device).
        points_canonical: (N, 3) rest-pose surface positions, metres, z up.
        regions: (N,) int64 region of each point.

    Returns:
        (N, 3) albedo in [0, 1].
    """
    if points_canonical.ndim != 2 or points_canonical.shape[1] != 3:
        raise ValueError(f"albedo: points_canonical must be (N, 3), got {tuple(points_canonical.shape)}")
    if regions.shape != points_canonical.shape[:1]:
        raise ValueError(f"albedo: regions must be ({points_canonical.shape[0]},), got {tuple(regions.shape)}")
    p = points_canonical.float()
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ph = texture.phases
    pal = texture.palette[regions]  # (N, 3, 3)
    base, second, accent = pal[:, 0], pal[:, 1], pal[:, 2]
    grain = fbm(texture, p, scale=0.015, octaves=2)
    blobs = fbm(texture, p + 3.0, scale=0.08)
    colour = base.clone()

    top = _top_pattern(texture, p, base, second, accent, grain)

    # trousers: diagonal twill ridges every 3 cm, mottled.
    twill = pulse(x + y + 0.5 * z + ph[2], period=0.03, width=0.012, softness=0.006)
    trousers = _mix(base, second, 0.7 * twill) * (1.0 + 0.4 * blobs + 0.25 * grain)[:, None]

    # shoes: white sole below floor_z, dark upper with an accent stripe.
    sole = (z < texture.floor_z).float()
    stripe = pulse(z - texture.floor_z - 0.035, period=1.0, width=0.012)
    shoes = _mix(_mix(base, accent, stripe), second, sole) * (1.0 + 0.2 * grain)[:, None]

    # skin: a few per cent of low-frequency variation, blotches of redness.
    skin = _mix(base, second, (blobs + 0.5).clamp(0, 1) * 0.5) * (1.0 + 0.08 * grain)[:, None]

    # hair: streaks around the vertical axis, perturbed by noise.
    angle = torch.atan2(x, y)
    streak = 0.5 + 0.5 * torch.sin(angle * 90.0 + 8.0 * blobs + z * 40.0)
    hair = _mix(base, second, 0.6 * streak) * (1.0 + 0.2 * grain)[:, None]

    for region, value in ((TOP, top), (TROUSERS, trousers), (SHOES, shoes), (SKIN, skin), (HAIR, hair)):
        chosen = regions == region
        colour = torch.where(chosen[:, None], value, colour)
    return colour.clamp(0.0, 1.0)


def _top_pattern(texture: SolidTexture, p: torch.Tensor, base, second, accent, grain) -> torch.Tensor:
    """(N, 3) colour of the top's pattern at canonical points p (N, 3), metres (see the module docstring)."""
    x, z, ph = p[:, 0], p[:, 2], texture.phases
    if texture.pattern == "plaid":  # 6 cm checks (bands along x and z), thin accent lines, fabric grain
        band_x = pulse(x + ph[0], period=0.06, width=0.025)
        band_z = pulse(z + ph[1], period=0.06, width=0.025)
        line = torch.maximum(
            pulse(x + ph[0] + 0.03, period=0.06, width=0.006), pulse(z + ph[1] + 0.03, period=0.06, width=0.006)
        )
        plaid = _mix(_mix(base, second, 0.55 * band_x + 0.45 * band_z), accent, 0.7 * line)
        return plaid * (1.0 + 0.25 * grain)[:, None]
    if texture.pattern == "dots":  # 1 cm dots: balls around one random point per 2 cm cell, cut by the surface
        distance = feature_distance(texture, p + ph[:3], cell=0.02)
        dot = torch.clamp((0.005 - distance) / 0.0015 + 0.5, 0.0, 1.0)
        return _mix(base, accent, dot) * (1.0 + 0.15 * grain)[:, None]
    if texture.pattern == "pinstripe":  # 4 mm stripes every 1.5 cm around the body, a 1 mm thread between
        angle_u = torch.atan2(x, p[:, 1]) * 0.15  # metres along the circumference of a ~15 cm radius
        stripe = pulse(angle_u + x * 0.2 + ph[3], period=0.015, width=0.004, softness=0.001)
        thread = pulse(angle_u + x * 0.2 + ph[3] + 0.0075, period=0.015, width=0.001, softness=0.0005)
        return _mix(_mix(base, second, stripe), accent, 0.6 * thread) * (1.0 + 0.2 * grain)[:, None]
    # print: a small-scale two-colour print (5 mm blobs), a 1 cm check underneath
    fine = fbm(texture, p + 7.0, scale=0.005, octaves=2)
    check = pulse(x + ph[4], period=0.02, width=0.01, softness=0.001)
    check = check * pulse(z + ph[5], period=0.02, width=0.01, softness=0.001)
    blots = torch.clamp(fine * 6.0 + 0.5, 0.0, 1.0)
    return _mix(_mix(base, second, blots), accent, 0.5 * check)


def flat_albedo(texture: SolidTexture, regions: torch.Tensor) -> torch.Tensor:
    """(N, 3) base colour of each region, without any pattern (a flat-colour reference)."""
    return texture.palette[regions, 0]
