"""Clothing and hair as geometry: closed solids worn over the posed body, so that the person's
surface departs from the body model's.

Body frame at rest (Anny): z up, metres, the person faces -y, x towards their left. Every solid is
a closed triangle surface with outward winding and a topology fixed per person, so its rest-pose
position (where the solid texture is evaluated) stays attached to it over frames:

* **shell** over a region of the body surface (a shirt; a coat's body and sleeves; baggy
  trousers; hair): the slab between the inner surface ``x_v - INNER_OFFSET n_v`` and the outer
  surface ``x_v + d_v n_v`` over the region's faces, closed by a wall along the region's border
  (``x_v`` a posed body vertex, ``n_v`` its unit area-weighted normal, both recomputed every frame,
  so the shell follows the body exactly). The thickness is ``d_v = thickness * taper_v *
  (1 + ripple * fbm(rest x_v))``, the taper rising from ``taper_floor`` at the region's border to 1
  at ``taper_width`` metres from it (distance along the mesh's edges): a coat keeps a hem, hair
  thins out at the hairline.
* **frustum** (a skirt, a coat's tails): a solid ring-stacked tube from the waist down to a hem,
  closed by a top and a bottom cap. Ring ``i`` at height ``z_i`` has, in each direction ``u(theta)``
  around the hips' axis, the radius ``max(h(theta, z_i) + clearance, lerp(top, hem, s_i))`` with
  ``h`` the support function (``max_v (x_v - c) . u``) of the rest body's torso and legs near
  ``z_i``; radii never shrink going down (an A-line), the hem gets ``flare`` more. Posed by linear
  blend skinning: the root's weight ``1 - s``, the thighs' ``s``, split between the left and the
  right thigh by a smooth step across the body's mid-plane (``s`` the fraction of the way down).
* **bun**: an ellipsoid at the back of the head, rigid with the head bone.

The clothed person occupies ``inside(body) OR inside(any solid)``. On the concatenation of all
closed surfaces the generalised winding number is the sum of theirs, so that union is where it
exceeds 1/2 (:func:`clothed_occupancy`), and its boundary is made of the faces just outside which
the winding number is 0, i.e. which lie inside no other solid (:func:`union_surface`): that is the
ground-truth surface, with cracks of about a triangle where two solids meet.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from neuralbody.body import lbs
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.queries import WarpMesh
from neuralbody.synth.texture import HAIR, TOP, TROUSERS, fbm, make_texture

TOPS = ("tee", "shirt", "coat")
BOTTOMS = ("trousers", "baggy", "skirt")
HAIRSTYLES = ("short", "volume", "bun")
INNER_OFFSET = 0.003  # metres: a shell's inner surface lies this far inside the skin
UNION_PROBE = 0.0005  # metres: how far out of a face its centroid is tested (union_surface)
_TORSO_LEG_BONES = ("root", "pelvis", "spine", "upperleg", "lowerleg")


@dataclasses.dataclass(frozen=True)
class Outfit:
    """What one person wears; lengths in metres.

    Attributes:
        top: one of :data:`TOPS` (a tee is only a texture; shirt and coat stand off the skin).
        bottom: one of :data:`BOTTOMS` (trousers are only a texture).
        hair: one of :data:`HAIRSTYLES` (a bun sits on short hair).
        top_thickness: shirt or coat thickness over the skin.
        bottom_thickness: baggy trousers' thickness.
        hair_thickness: hair volume over the scalp.
        hem: height of a skirt's hem between the knee (0) and 15 cm below the hip joint (1).
        flare: extra radius of the skirt's (or coat tails') hem.
        coat_hem: height of the coat tails' hem, same scale as ``hem``.
        bun_radius: radius of the bun.
    """

    top: str = "tee"
    bottom: str = "trousers"
    hair: str = "short"
    top_thickness: float = 0.02
    bottom_thickness: float = 0.015
    hair_thickness: float = 0.01
    hem: float = 0.5
    flare: float = 0.06
    coat_hem: float = 0.6
    bun_radius: float = 0.055

    def __post_init__(self) -> None:
        for name, value, choices in (("top", self.top, TOPS), ("bottom", self.bottom, BOTTOMS),
                                     ("hair", self.hair, HAIRSTYLES)):  # fmt: skip
            if value not in choices:
                raise ValueError(f"Outfit: {name} must be one of {choices}, got {value!r}")
        lengths = (self.top_thickness, self.bottom_thickness, self.hair_thickness, self.flare, self.bun_radius)
        if min(lengths) < 0 or max(lengths) > 0.3:
            raise ValueError(f"Outfit: thicknesses, flare and bun radius must be in [0, 0.3] m, got {lengths}")
        if not (0.0 <= self.hem <= 1.0 and 0.0 <= self.coat_hem <= 1.0):
            raise ValueError(f"Outfit: hem and coat_hem must be in [0, 1], got {self.hem}, {self.coat_hem}")


def random_outfit(rng: np.random.Generator) -> Outfit:
    """A seeded outfit: each garment kind about equally likely, sizes uniform in plausible ranges."""
    top, hair = TOPS[rng.integers(len(TOPS))], HAIRSTYLES[rng.integers(len(HAIRSTYLES))]
    return Outfit(
        top=top,
        bottom=BOTTOMS[rng.integers(len(BOTTOMS))],
        hair=hair,
        top_thickness=float(rng.uniform(0.025, 0.05) if top == "coat" else rng.uniform(0.01, 0.025)),
        bottom_thickness=float(rng.uniform(0.01, 0.03)),
        hair_thickness=float(rng.uniform(0.025, 0.05) if hair == "volume" else rng.uniform(0.006, 0.015)),
        hem=float(rng.uniform(0.0, 1.0)),
        flare=float(rng.uniform(0.02, 0.12)),
        coat_hem=float(rng.uniform(0.3, 1.0)),
        bun_radius=float(rng.uniform(0.045, 0.07)),
    )


@dataclasses.dataclass
class Shell:
    """A slab over a region of the body surface (see the module docstring).

    Attributes:
        body_ids: (n,) int64 body vertices of the region (outer vertex k and inner vertex n + k sit on body_ids[k]).
        faces: (F, 3) int64 triangles over the 2n shell vertices, outward winding.
        thickness: (n,) float32 outer offset of each vertex, metres.
        region: texture region (:data:`neuralbody.synth.texture.REGIONS`).
    """

    body_ids: torch.Tensor
    faces: torch.Tensor
    thickness: torch.Tensor
    region: int


@dataclasses.dataclass
class SkinnedSolid:
    """A closed surface posed by linear blend skinning with the body's bones.

    Attributes:
        rest_vertices: (n, 3) rest-pose vertices, body frame, metres.
        faces: (F, 3) int64 triangles, outward winding.
        weights: (n, J) skinning weights over the body's bones (rows sum to one).
        region: texture region.
    """

    rest_vertices: torch.Tensor
    faces: torch.Tensor
    weights: torch.Tensor
    region: int


@dataclasses.dataclass
class Wardrobe:
    """A person's clothing and hair, built once on the rest body and posed every frame.

    Attributes:
        outfit: what was asked for.
        shells: slabs over body regions.
        solids: skinned frusta and buns.
    """

    outfit: Outfit
    shells: list[Shell]
    solids: list[SkinnedSolid]


# --- shells --------------------------------------------------------------------------------------
def region_shell_faces(faces: torch.Tensor, selected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The closed slab's topology over the faces whose three vertices are all ``selected``.

    Args:
        faces: (F, 3) int64 body triangles, outward winding.
        selected: (V,) bool region vertices.

    Returns:
        body_ids (n,) int64 region vertices used by a region face; shell faces (M, 3) int64 over
        2n vertices (outer k, inner n + k); border (n,) bool vertices on the region's border.
    """
    region_faces = faces[selected[faces].all(dim=1)]
    if region_faces.shape[0] == 0:
        raise ValueError("region_shell_faces: the region holds no whole face")
    body_ids, local = torch.unique(region_faces, return_inverse=True)  # local: (Fr, 3)
    n = body_ids.shape[0]
    edges = torch.cat([local[:, [0, 1]], local[:, [1, 2]], local[:, [2, 0]]])  # directed, face on the left
    keys = edges[:, 0] * n + edges[:, 1]
    reverse = edges[:, 1] * n + edges[:, 0]
    border_edges = edges[~torch.isin(keys, reverse)]
    a, b = border_edges[:, 0], border_edges[:, 1]
    # outer a, inner a, inner b and outer a, inner b, outer b: the wall faces away from the region
    wall = torch.cat([torch.stack([a, a + n, b + n], dim=1), torch.stack([a, b + n, b], dim=1)])
    shell_faces = torch.cat([local, local[:, [0, 2, 1]] + n, wall])
    border = torch.zeros(n, dtype=torch.bool)
    border[border_edges.reshape(-1)] = True
    return body_ids, shell_faces, border


def border_distance(rest_vertices: torch.Tensor, faces: torch.Tensor, sources: torch.Tensor, limit: float) -> np.ndarray:
    """(V,) shortest distance along mesh edges from each vertex to the ``sources`` (V,) bool, metres,
    capped at ``limit`` (Dijkstra over the edge graph of ``faces`` (F, 3) on ``rest_vertices`` (V, 3))."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    count = rest_vertices.shape[0]
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).numpy()
    lengths = np.linalg.norm(rest_vertices.numpy()[edges[:, 0]] - rest_vertices.numpy()[edges[:, 1]], axis=1)
    graph = coo_matrix((lengths + 1e-9, (edges[:, 0], edges[:, 1])), shape=(count, count)).tocsr()
    indices = np.flatnonzero(sources.numpy())
    if indices.size == 0:
        return np.full(count, limit)
    distance = dijkstra(graph, directed=False, indices=indices, limit=limit, min_only=True)
    return np.minimum(distance, limit)


def make_shell(
    rest_vertices: torch.Tensor,
    faces: torch.Tensor,
    selected: torch.Tensor,
    *,
    thickness: float,
    region: int,
    taper_width: float,
    taper_floor: float,
    ripple: float,
    noise_seed: int,
) -> Shell:
    """A :class:`Shell` over the ``selected`` (V,) bool vertices of the rest body ``rest_vertices``
    (V, 3) metres, ``faces`` (F, 3); thickness as in the module docstring."""
    body_ids, shell_faces, border = region_shell_faces(faces, selected)
    sources = torch.zeros(rest_vertices.shape[0], dtype=torch.bool)
    sources[body_ids[border]] = True
    distance = border_distance(rest_vertices.float(), faces, sources, taper_width)[body_ids.numpy()]
    t = np.clip(distance / max(taper_width, 1e-9), 0.0, 1.0)
    taper = taper_floor + (1.0 - taper_floor) * t * t * (3.0 - 2.0 * t)
    noise = fbm(make_texture(noise_seed, floor_z=0.0), rest_vertices[body_ids].float(), scale=0.12).numpy()
    values = thickness * taper * (1.0 + ripple * 2.0 * noise)
    return Shell(body_ids=body_ids, faces=shell_faces, thickness=torch.tensor(values, dtype=torch.float32), region=region)


def shell_vertices(shell: Shell, body_vertices: torch.Tensor, body_normals: torch.Tensor) -> torch.Tensor:
    """(2n, 3) outer then inner vertices of ``shell`` over body vertices (V, 3) metres with unit normals (V, 3)."""
    x, n = body_vertices[shell.body_ids], body_normals[shell.body_ids]
    d = shell.thickness.to(x)[:, None]
    return torch.cat([x + d * n, x - INNER_OFFSET * n])


# --- frusta and buns ------------------------------------------------------------------------------
def support_radii(points: torch.Tensor, centre: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """(K,) support function ``max_p (p - centre) . u_k`` of ``points`` (P, 2) for unit ``directions`` (K, 2)."""
    if points.shape[0] == 0:
        return torch.zeros(directions.shape[0], dtype=directions.dtype)
    return ((points - centre) @ directions.T).amax(dim=0)


def ring_tube_faces(rings: int, sectors: int) -> torch.Tensor:
    """(F, 3) faces of a closed tube: ``rings`` rings of ``sectors`` vertices (ring r vertex k at
    ``r * sectors + k``, angle increasing counter-clockwise seen from above, ring 0 on top), then a
    top-cap centre and a bottom-cap centre; outward winding."""
    r = torch.arange(rings - 1)[:, None]
    k = torch.arange(sectors)[None, :]
    a, b = r * sectors + k, r * sectors + (k + 1) % sectors
    c, d = a + sectors, b + sectors
    side = torch.cat([torch.stack([a, c, d], -1).reshape(-1, 3), torch.stack([a, d, b], -1).reshape(-1, 3)])
    top, bottom = rings * sectors, rings * sectors + 1
    ring0, last = torch.arange(sectors), (rings - 1) * sectors + torch.arange(sectors)
    top_cap = torch.stack([torch.full_like(ring0, top), ring0, (ring0 + 1) % sectors], dim=1)
    bottom_cap = torch.stack([torch.full_like(last, bottom), (rings - 1) * sectors + (ring0 + 1) % sectors, last], dim=1)
    return torch.cat([side, top_cap, bottom_cap]).long()


@dataclasses.dataclass(frozen=True)
class RestBody:
    """The rest body a wardrobe is built on.

    Attributes:
        vertices: (V, 3) rest vertices, body frame, metres.
        faces: (F, 3) int64 triangles.
        joints: (J, 3) rest joint positions, metres.
        joint_names: J bone names (Anny naming).
        dominant: (V,) int64 the bone that dominates each vertex's skinning weights.
        regions: (V,) int64 texture region of each vertex.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    joints: torch.Tensor
    joint_names: list[str]
    dominant: torch.Tensor
    regions: torch.Tensor

    def joint(self, name: str) -> torch.Tensor:
        return self.joints[self.joint_names.index(name)]

    def bone_mask(self, prefixes: tuple[str, ...]) -> torch.Tensor:
        """(V,) bool vertices dominated by a bone whose name starts with one of ``prefixes``."""
        chosen = torch.tensor([n.split(".")[0].startswith(prefixes) for n in self.joint_names])
        return chosen[self.dominant]


def frustum_solid(body: RestBody, *, top_z: float, hem_z: float, flare: float, region: int, sectors: int = 40,
                  rings: int = 10, clearance: float = 0.012) -> SkinnedSolid:  # fmt: skip
    """A skirt-like solid from ``top_z`` down to ``hem_z`` (metres, rest body frame); see the module docstring."""
    if not hem_z < top_z:
        raise ValueError(f"frustum_solid: the hem ({hem_z:.3f} m) must lie below the top ({top_z:.3f} m)")
    trunk = body.bone_mask(_TORSO_LEG_BONES)
    points = body.vertices[trunk]
    near_top = points[(points[:, 2] - top_z).abs() < 0.02]
    centre = near_top[:, :2].mean(dim=0)
    angles = torch.arange(sectors, dtype=torch.float32) * (2 * math.pi / sectors)
    directions = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    heights = torch.linspace(top_z, hem_z, rings)
    radii = []
    for i, z in enumerate(heights):
        band = points[(points[:, 2] - z).abs() < 0.02][:, :2]
        need = support_radii(band, centre, directions) + clearance
        if i == 0:
            radius = support_radii(near_top[:, :2], centre, directions) - 0.01  # tucked in at the waist
        else:
            radius = torch.maximum(need, radii[-1] + flare / (rings - 1))
        radii.append(radius)
    radii = torch.stack(radii)  # (rings, sectors)
    xy = centre + radii[..., None] * directions  # (rings, sectors, 2)
    ring_vertices = torch.cat([xy, heights[:, None, None].expand(-1, sectors, 1)], dim=-1).reshape(-1, 3)
    caps = torch.stack([torch.cat([centre, heights[:1]]), torch.cat([centre, heights[-1:]])])
    rest = torch.cat([ring_vertices, caps])
    down = ((top_z - rest[:, 2]) / (top_z - hem_z)).clamp(0.0, 1.0)
    left = torch.sigmoid((rest[:, 0] - centre[0]) / 0.04)
    weights = torch.zeros(rest.shape[0], len(body.joint_names))
    weights[:, body.joint_names.index("root")] = 1.0 - down
    weights[:, body.joint_names.index("upperleg01.L")] = down * left
    weights[:, body.joint_names.index("upperleg01.R")] = down * (1.0 - left)
    return SkinnedSolid(rest_vertices=rest, faces=ring_tube_faces(rings, sectors), weights=weights, region=region)


def ellipsoid_surface(
    centre: torch.Tensor, radii: torch.Tensor, rings: int = 10, sectors: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed ellipsoid: vertices (n, 3) and outward faces (F, 3) from :func:`ring_tube_faces`
    (``rings`` latitude rings, the caps' centres being the poles). centre (3,), radii (3,), metres."""
    polar = torch.arange(1, rings + 1, dtype=torch.float32) * (math.pi / (rings + 1))
    azimuth = torch.arange(sectors, dtype=torch.float32) * (2 * math.pi / sectors)
    p, a = torch.meshgrid(polar, azimuth, indexing="ij")
    unit = torch.stack([torch.sin(p) * torch.cos(a), torch.sin(p) * torch.sin(a), torch.cos(p)], dim=-1).reshape(-1, 3)
    poles = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    vertices = centre + torch.cat([unit, poles]) * radii
    return vertices, ring_tube_faces(rings, sectors)


def bun_solid(body: RestBody, radius: float) -> SkinnedSolid:
    """An ellipsoid of ``radius`` metres half sunk into the back of the head, rigid with the head bone."""
    head = body.joint("head")
    on_head = body.bone_mask(("head",))
    back = float(body.vertices[on_head, 1].max())  # the person faces -y: the back of the head is max y
    top = float(body.vertices[on_head, 2].max())
    centre = torch.tensor([float(head[0]), back - 0.35 * radius, 0.5 * (float(head[2]) + top)])
    vertices, faces = ellipsoid_surface(centre, torch.tensor([radius, radius * 0.85, radius * 0.9]))
    weights = torch.zeros(vertices.shape[0], len(body.joint_names))
    weights[:, body.joint_names.index("head")] = 1.0
    return SkinnedSolid(rest_vertices=vertices, faces=faces, weights=weights, region=HAIR)


def _hem_height(body: RestBody, fraction: float) -> float:
    knee = 0.5 * float(body.joint("lowerleg01.L")[2] + body.joint("lowerleg01.R")[2])
    hip = 0.5 * float(body.joint("upperleg01.L")[2] + body.joint("upperleg01.R")[2])
    return knee + fraction * (hip - 0.15 - knee)


def build_wardrobe(body: RestBody, outfit: Outfit, *, seed: int = 0) -> Wardrobe:
    """The solids of ``outfit`` on the rest ``body`` (``seed`` picks the thickness ripples)."""
    shells, solids = [], []
    waist = float(body.joint("spine04")[2]) + 0.02
    cloth = dict(taper_width=0.02, taper_floor=0.5, ripple=0.15)
    if outfit.top in ("shirt", "coat"):
        selected = body.regions == TOP
        if outfit.top == "coat":  # sleeves to the wrist, the whole trunk down to the hips
            trunk_below_waist = body.bone_mask(("root", "pelvis", "spine")) & (body.regions == TROUSERS)
            selected = selected | body.bone_mask(("lowerarm",)) | trunk_below_waist
        shells.append(make_shell(body.vertices, body.faces, selected, thickness=outfit.top_thickness, region=TOP,
                                 noise_seed=seed, **cloth))  # fmt: skip
    if outfit.top == "coat":
        tails_hem = _hem_height(body, outfit.coat_hem)
        solids.append(frustum_solid(body, top_z=waist, hem_z=tails_hem, flare=outfit.flare / 2, region=TOP))
    if outfit.bottom == "baggy":
        loose = dict(cloth, taper_width=0.03, taper_floor=0.3)
        shells.append(make_shell(body.vertices, body.faces, body.regions == TROUSERS, thickness=outfit.bottom_thickness,
                                 region=TROUSERS, noise_seed=seed + 1, **loose))  # fmt: skip
    if outfit.bottom == "skirt":
        solids.append(frustum_solid(body, top_z=waist, hem_z=_hem_height(body, outfit.hem), flare=outfit.flare, region=TROUSERS))
    shells.append(make_shell(body.vertices, body.faces, body.regions == HAIR, thickness=outfit.hair_thickness, region=HAIR,
                             taper_width=0.04, taper_floor=0.15, ripple=0.3, noise_seed=seed + 2))  # fmt: skip
    if outfit.hair == "bun":
        solids.append(bun_solid(body, outfit.bun_radius))
    return Wardrobe(outfit=outfit, shells=shells, solids=solids)


# --- the clothed person ---------------------------------------------------------------------------
@dataclasses.dataclass
class ClothedMesh:
    """Body and wardrobe as one mesh of closed surfaces (body first).

    Attributes:
        vertices: (N, 3) metres (frame of the body vertices given).
        faces: (M, 3) int64, outward winding.
        regions: (N,) int64 texture region of each vertex (body vertices: the body's).
        parts: (N,) int64 0 for body vertices, k for the k-th solid (shells first, then skinned solids).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    regions: torch.Tensor
    parts: torch.Tensor


def dress(
    wardrobe: Wardrobe,
    body_vertices: torch.Tensor,
    body_faces: torch.Tensor,
    body_regions: torch.Tensor,
    bone_transforms: torch.Tensor | None,
) -> ClothedMesh:
    """The clothed person in one pose.

    Args:
        wardrobe: from :func:`build_wardrobe`.
        body_vertices: (V, 3) body vertices, metres (posed, world; or the rest body for rest positions).
        body_faces: (F, 3) int64.
        body_regions: (V,) int64 texture regions.
        bone_transforms: (J, 4, 4) the pose's skinning transforms; None: the rest pose (identity).
    """
    if body_vertices.ndim != 2 or body_vertices.shape[1] != 3:
        raise ValueError(f"dress: body_vertices must be (V, 3) metres, got {tuple(body_vertices.shape)}")
    vertices, faces = [body_vertices], [body_faces.long()]
    regions, parts = [body_regions.long()], [torch.zeros(body_vertices.shape[0], dtype=torch.long)]
    normals = vertex_normals(body_vertices, body_faces.long()) if wardrobe.shells else None
    offset = body_vertices.shape[0]
    pieces = [(shell_vertices(s, body_vertices, normals), s.faces, s.region) for s in wardrobe.shells]
    for solid in wardrobe.solids:
        rest = solid.rest_vertices.to(body_vertices)
        posed = rest if bone_transforms is None else lbs.linear_blend_skinning(
            rest[None], solid.weights.to(body_vertices), bone_transforms[None].to(body_vertices))[0]
        pieces.append((posed, solid.faces, solid.region))
    for part, (piece_vertices, piece_faces, region) in enumerate(pieces, start=1):
        vertices.append(piece_vertices)
        faces.append(piece_faces.long() + offset)
        regions.append(torch.full((piece_vertices.shape[0],), region, dtype=torch.long))
        parts.append(torch.full((piece_vertices.shape[0],), part, dtype=torch.long))
        offset += piece_vertices.shape[0]
    return ClothedMesh(torch.cat(vertices), torch.cat(faces), torch.cat(regions), torch.cat(parts))


def clothed_occupancy(mesh: ClothedMesh | WarpMesh, points) -> np.ndarray | torch.Tensor:
    """(N,) bool: inside the body or any solid, for points (N, 3) metres (summed winding number > 1/2).

    ``mesh``: the clothed mesh, or a :class:`WarpMesh` of it built once for many queries.
    """
    warp_mesh = mesh if isinstance(mesh, WarpMesh) else WarpMesh(mesh.vertices, mesh.faces)
    return warp_mesh.inside(points)


def union_surface(mesh: ClothedMesh, *, warp_mesh: WarpMesh | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The outer surface of the clothed person: vertices (n, 3) metres and faces (m, 3) int64 of the
    faces whose centroid, moved :data:`UNION_PROBE` out along the face normal, lies outside every
    closed surface (summed winding number < 1/2); unused vertices dropped.

    (At a point on a face the winding number jumps by one across the face, and Warp returns either
    side's value there, so the test is made just outside.)
    """
    used, faces = union_surface_indices(mesh, warp_mesh=warp_mesh)
    return mesh.vertices[used], faces


def union_surface_indices(mesh: ClothedMesh, *, warp_mesh: WarpMesh | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`union_surface` as indices: ``used`` (n,) int64, the clothed mesh's vertices kept (so that
    per-vertex values, colours or regions, follow them), and the faces (m, 3) int64 over those."""
    warp_mesh = warp_mesh if warp_mesh is not None else WarpMesh(mesh.vertices, mesh.faces)
    a, b, c = (mesh.vertices[mesh.faces[:, k]].double() for k in range(3))
    normals = torch.linalg.cross(b - a, c - a, dim=1)
    normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-20)
    keep = warp_mesh.winding_numbers((a + b + c) / 3 + UNION_PROBE * normals) < 0.5
    faces = mesh.faces[keep]
    used, remapped = torch.unique(faces, return_inverse=True)
    return used, remapped.reshape(-1, 3)
