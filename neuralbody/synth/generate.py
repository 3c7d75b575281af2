"""Synthetic multi-view captures: a textured body model, moving, seen by a ring of cameras.

Pipeline (world frame z up, metres):

1. pose the body for every frame of a procedural motion (:mod:`neuralbody.synth.motion`);
2. place V cameras on a ring that sees every vertex of every frame (:mod:`neuralbody.synth.rig`);
3. per frame and view, cast one ray per sub-pixel sample (``supersample``² per pixel, rays from
   :func:`neuralbody.data.cameras.pixel_rays`, so lens distortion is rendered exactly) against
   the posed mesh with Warp; at each hit, interpolate the rest-pose position and region with
   the barycentrics, evaluate the solid texture there and shade it (:mod:`neuralbody.synth.shading`:
   lights fixed in the world, optional shadow rays cast against the same mesh);
4. average the samples of a pixel (black background), mask = hit coverage >= 1/2, depth =
   camera z of the nearest hit sample (no averaging across depth edges);
5. optionally give the masks the errors of a real segmentation
   (:mod:`neuralbody.synth.mask_errors`): then the missed rays see a studio backdrop
   (:mod:`neuralbody.synth.backdrop`) and each image is blacked out outside its degraded mask,
   as real captures are;
6. stream the frame to :class:`neuralbody.data.writer.CaptureWriter` (PNG or JPEG images; the
   body as posed vertices and parameters of the body model, or as what a ZJU-MoCap user holds:
   a 6,890-vertex subset, SMPL-shaped parameters and no ``neuralbody.json``,
   :mod:`neuralbody.synth.smpl_like`).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.body.base import BodyModel, BodyOutput
from neuralbody.data.cameras import Camera, pixel_rays, project_points
from neuralbody.data.writer import CaptureWriter
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.raycast import cast_rays
from neuralbody.io.progress import progress_bar
from neuralbody.synth import motion as motion_lib
from neuralbody.synth import smpl_like
from neuralbody.synth.backdrop import backdrop_colour
from neuralbody.synth.mask_errors import MASK_ERRORS, degrade_mask
from neuralbody.synth.rig import RigConfig, ring_cameras, split_cameras
from neuralbody.synth.shading import LIGHTING_PRESETS, Lighting, interpolate, point_light_rays, shade
from neuralbody.synth.texture import REGIONS, SolidTexture, TextureStyle, albedo, make_texture, vertex_regions

log = logging.getLogger(__name__)

GENERATOR_VERSION = "neuralbody.synth/2"
BODY_FORMATS = ("anny", "smpl-like")
BACKGROUND = (0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes:
        frames: number of frames T.
        views: number of cameras V.
        resolution: square image side, pixels.
        motion: one of :data:`neuralbody.synth.motion.MOTIONS`.
        seed: seeds appearance, body shape, motion phases and lens distortion.
        distortion: render through small per-camera lens distortion.
        body: body-model name.
        supersample: s, rendering s x s samples per pixel (anti-aliasing).
        train_views: number of training cameras (spread evenly); the rest are held out.
        train_fraction: leading fraction of the frames used for training; the rest are unseen poses.
        phenotype: the body model's shape parameters (Anny: gender, age, muscle, weight, height,
            proportions in [0, 1]); None: seeded near the mean person.
        top_pattern, skin_tone, trousers: the clothing and skin
            (:class:`~neuralbody.synth.texture.TextureStyle`; None: the seed's choice).
        lighting: a name in :data:`~neuralbody.synth.shading.LIGHTING_PRESETS`.
        image_format: "png" or "jpg" (JPEG at ``jpeg_quality``).
        jpeg_quality: 1-95.
        mask_errors: names in :data:`~neuralbody.synth.mask_errors.MASK_ERRORS`, applied in order
            to every mask (then the images are blacked out outside them and ``exact_masks`` is off).
        mask_error_px: size of the mask errors, pixels.
        body_format: "anny" (the body model's vertices and parameters, ``neuralbody.json``) or
            "smpl-like" (6,890 vertices, SMPL-shaped parameters, no ``neuralbody.json``).
    """

    frames: int = 30
    views: int = 8
    resolution: int = 256
    motion: str = "sway"
    seed: int = 0
    distortion: bool = False
    body: str = "anny"
    supersample: int = 2
    train_views: int = 4
    train_fraction: float = 2.0 / 3.0
    phenotype: tuple[float, ...] | None = None
    top_pattern: str = "plaid"
    skin_tone: str | None = None
    trousers: str | None = None
    lighting: str = "studio"
    image_format: str = "png"
    jpeg_quality: int = 90
    mask_errors: tuple[str, ...] = ()
    mask_error_px: float = 2.0
    body_format: str = "anny"

    def __post_init__(self) -> None:
        if self.frames < 1 or self.views < 1:
            raise ValueError(f"SynthConfig: frames and views must be >= 1, got {self.frames}, {self.views}")
        if self.supersample < 1:
            raise ValueError(f"SynthConfig: supersample must be >= 1, got {self.supersample}")
        if self.motion not in motion_lib.MOTIONS:
            choices = ", ".join(motion_lib.MOTIONS)
            raise ValueError(f"SynthConfig: unknown motion {self.motion!r}; choose one of {choices}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"SynthConfig: train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.phenotype is not None and not all(0.0 <= float(v) <= 1.0 for v in self.phenotype):
            raise ValueError(f"SynthConfig: phenotype values must be in [0, 1], got {self.phenotype}")
        TextureStyle(self.top_pattern, self.skin_tone, self.trousers)  # checks the names
        choices = (("lighting", self.lighting, LIGHTING_PRESETS), ("image_format", self.image_format, ("png", "jpg")),
                   ("body_format", self.body_format, BODY_FORMATS))  # fmt: skip
        for what, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"SynthConfig: unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"SynthConfig: jpeg_quality must be in 1..95, got {self.jpeg_quality}")
        unknown = [e for e in self.mask_errors if e not in MASK_ERRORS]
        if unknown:
            raise ValueError(f"SynthConfig: unknown mask errors {unknown}; choose from {', '.join(MASK_ERRORS)}")
        if self.mask_errors and self.mask_error_px <= 0:
            raise ValueError(f"SynthConfig: mask_error_px must be > 0, got {self.mask_error_px}")


@dataclasses.dataclass
class RenderedViews:
    """One frame seen by every camera.

    Attributes:
        images: (C, H, W, 3) uint8 RGB.
        masks: (C, H, W) bool, person coverage >= 1/2.
        depths: (C, H, W) float32 camera z of the nearest surface sample in the pixel, metres
            (0 where no person).
    """

    images: np.ndarray
    masks: np.ndarray
    depths: np.ndarray


@dataclasses.dataclass
class Appearance:
    """Everything about the person's look that stays fixed over frames.

    Attributes:
        rest_vertices: (V, 3) canonical vertices, metres (where the solid texture is evaluated).
        region_onehot: (V, R) one-hot body region of each vertex.
        texture: the seeded solid texture.
        lighting: light set-up.
    """

    rest_vertices: torch.Tensor
    region_onehot: torch.Tensor
    texture: SolidTexture
    lighting: Lighting = Lighting()


@dataclasses.dataclass
class CameraRays:
    """Sub-pixel rays of every camera, precomputed once (cameras do not move).

    Attributes:
        rays_o: (C, H*W*s*s, 3) origins, metres; samples of a pixel are contiguous.
        rays_d: (C, H*W*s*s, 3) unit directions, world.
        forward: (C, 3) camera z axes in world (for z-depth = t * d . forward).
        height, width: image size in pixels.
        supersample: s, samples per pixel along each image axis.
        cameras: the C cameras.
    """

    rays_o: torch.Tensor
    rays_d: torch.Tensor
    forward: torch.Tensor
    height: int
    width: int
    supersample: int
    cameras: list[Camera]


def load_body(name: str) -> BodyModel:
    """The body model called ``name`` (``neuralbody.body.load_body_model`` or ``neuralbody.body.<name>``)."""
    body_pkg = importlib.import_module("neuralbody.body")
    if hasattr(body_pkg, "load_body_model"):
        return body_pkg.load_body_model(name)
    try:
        module = importlib.import_module(f"neuralbody.body.{name}")
    except ModuleNotFoundError as error:
        raise ValueError(f"unknown body model {name!r}: no module neuralbody.body.{name}") from error
    return getattr(module, f"load_{name}")()


def camera_rays(cameras: list[Camera], supersample: int, device: torch.device | str = "cpu") -> CameraRays:
    """Rays through an s x s grid of sub-pixel points in every pixel, lens distortion included."""
    s = supersample
    height, width = cameras[0].height, cameras[0].width
    offsets = (np.arange(s) + 0.5) / s - 0.5
    v, u, dv, du = np.meshgrid(np.arange(height), np.arange(width), offsets, offsets, indexing="ij")
    uv = np.stack([(u + du).ravel(), (v + dv).ravel()], axis=1)
    origins, directions = [], []
    for camera in cameras:
        if (camera.height, camera.width) != (height, width):
            raise ValueError("camera_rays: all cameras must share one image size")
        o, d = pixel_rays(camera, uv)
        origins.append(o)
        directions.append(d)
    forward = np.stack([c.R[2] for c in cameras])
    return CameraRays(
        rays_o=torch.tensor(np.stack(origins), dtype=torch.float32, device=device),
        rays_d=torch.tensor(np.stack(directions), dtype=torch.float32, device=device),
        forward=torch.tensor(forward, dtype=torch.float32, device=device),
        height=height,
        width=width,
        supersample=s,
        cameras=list(cameras),
    )


def _candidate_rays(rays: CameraRays, vertices: torch.Tensor) -> torch.Tensor:
    """(M,) indices of the flattened rays whose pixel lies in the bounding rectangle (+2 px) of the
    projected vertices in their camera: only those can hit the mesh."""
    s2, width, height = rays.supersample**2, rays.width, rays.height
    device = rays.rays_o.device
    chunks = []
    points = vertices.detach().double().cpu().numpy()
    for index, camera in enumerate(rays.cameras):
        uv, depth = project_points(camera, points)
        if np.any(depth <= 0):  # behind the camera: no safe rectangle, keep every ray
            u0, v0, u1, v1 = 0, 0, width - 1, height - 1
        else:
            u0, v0 = np.floor(uv.min(0) - 2).astype(int).clip(0, [width - 1, height - 1])
            u1, v1 = np.ceil(uv.max(0) + 2).astype(int).clip(0, [width - 1, height - 1])
        vv, uu = torch.meshgrid(
            torch.arange(v0, v1 + 1, device=device), torch.arange(u0, u1 + 1, device=device), indexing="ij"
        )
        pixel = (vv * width + uu).reshape(-1, 1)
        rows = pixel * s2 + torch.arange(s2, device=device) + index * height * width * s2
        chunks.append(rows.reshape(-1))
    return torch.cat(chunks)


def _light_visibility(
    vertices: torch.Tensor, faces: torch.Tensor, points: torch.Tensor, normals: torch.Tensor, lighting: Lighting
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(N,) float visibility of the key and the point light from surface points (N, 3), world metres
    (1: lit, 0: the body is in the way), or None for a light that casts no shadow.

    ``normals`` (N, 3) face the viewer; shadow rays start 2 mm off the surface along them.
    """
    if not lighting.shadows or points.shape[0] == 0:
        return None, None
    origins = points + 0.002 * normals
    key = None
    if lighting.key > 0:
        direction = torch.tensor(lighting.key_direction, dtype=points.dtype, device=points.device)
        direction = (direction / direction.norm()).expand_as(points).contiguous()
        key = (~cast_rays(vertices, faces, origins, direction).hit).to(points.dtype)
    point = None
    if lighting.point_position is not None and lighting.point > 0:
        direction, distance = point_light_rays(origins, lighting)
        hits = cast_rays(vertices, faces, origins, direction.contiguous())
        point = (~(hits.hit & (hits.t < distance))).to(points.dtype)
    return key, point


def _surface_colour(rays_o, rays_d, hits, vertices, faces, appearance: Appearance, flat: bool) -> torch.Tensor:
    """(N, 3) shaded colour at the N hits of rays (N, 3) on the posed mesh (see :func:`render_views`)."""
    face_ids, bary = hits.face_ids[hits.hit], hits.barycentrics[hits.hit]
    device = vertices.device
    canonical = interpolate(appearance.rest_vertices.to(device), faces, face_ids, bary)
    regions = interpolate(appearance.region_onehot.to(device), faces, face_ids, bary).argmax(dim=1)
    texture = appearance.texture.to(device)
    colour_in = texture.palette[regions, 0] if flat else albedo(texture, canonical, regions)
    normals = interpolate(vertex_normals(vertices, faces), faces, face_ids, bary)
    normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
    points = rays_o + hits.t[hits.hit, None] * rays_d
    facing = torch.where(((normals * rays_d).sum(1, keepdim=True) > 0), -normals, normals)
    key_visible, point_visible = _light_visibility(vertices, faces, points, facing, appearance.lighting)
    return shade(colour_in, normals, rays_d, appearance.lighting, points=points, key_visible=key_visible,
                 point_visible=point_visible)  # fmt: skip


def render_views(
    *,
    rays: CameraRays,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    appearance: Appearance,
    flat: bool = False,
    backdrop_floor: float | None = None,
) -> RenderedViews:
    """Render one posed mesh in every camera.

    Args:
        rays: from :func:`camera_rays`.
        vertices: (V, 3) posed vertices, world, metres.
        faces: (F, 3) int64 triangles.
        appearance: texture, regions, rest vertices, lighting.
        flat: use each region's flat base colour instead of the texture (a reference render).
        backdrop_floor: None: black behind the person; else the height of the floor, metres, of
            the studio backdrop (:func:`neuralbody.synth.backdrop.backdrop_colour`) seen behind it.
    """
    count, samples, _ = rays.rays_o.shape
    device = rays.rays_o.device
    rays_o, rays_d = rays.rays_o.reshape(-1, 3), rays.rays_d.reshape(-1, 3)
    vertices = vertices.to(device=device, dtype=torch.float32)
    faces = faces.to(device)
    candidates = _candidate_rays(rays, vertices)
    hits = cast_rays(vertices, faces, rays_o[candidates], rays_d[candidates])
    hit_rows = candidates[hits.hit]
    shaded = _surface_colour(rays_o[hit_rows], rays_d[hit_rows], hits, vertices, faces, appearance, flat)

    camera_of_row = hit_rows // samples
    z = hits.t[hits.hit] * (rays_d[hit_rows] * rays.forward[camera_of_row]).sum(1)
    if backdrop_floor is None:
        colour = torch.tensor(BACKGROUND, device=device).repeat(count * samples, 1)
    else:
        colour = backdrop_colour(rays_o, rays_d, backdrop_floor)
    colour[hit_rows] = shaded
    covered = torch.zeros(count * samples, device=device)
    covered[hit_rows] = 1.0
    depth_min = torch.full((count * samples,), float("inf"), device=device)
    depth_min[hit_rows] = z
    s2 = rays.supersample**2
    shape = (count, rays.height, rays.width)
    colour = colour.reshape(*shape, s2, 3).mean(3)
    coverage = covered.reshape(*shape, s2).sum(3)
    depth = depth_min.reshape(*shape, s2).amin(3)
    mask = coverage >= s2 / 2.0
    images = (colour * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    return RenderedViews(
        images=images.cpu().numpy(),
        masks=mask.cpu().numpy(),
        depths=torch.where(mask, depth, torch.zeros_like(depth)).cpu().numpy().astype(np.float32),
    )


def _seeded_shapes(body: BodyModel, seed: int) -> torch.Tensor:
    """(S,) shape parameters: seed 0 is the mean person; other seeds nudge each phenotype by up to
    0.15, kept in [0.3, 0.7]."""
    base = body.default_shapes(1)[0].float()
    rng = np.random.default_rng([seed, 271828])
    nudge = torch.tensor(rng.uniform(-0.15, 0.15, base.shape[0]), dtype=torch.float32)
    return (base + nudge).clamp(0.3, 0.7) if seed != 0 else base


def _shapes(body: BodyModel, config: SynthConfig) -> torch.Tensor:
    """(S,) the configured phenotype, else :func:`_seeded_shapes`."""
    if config.phenotype is None:
        return _seeded_shapes(body, config.seed)
    if len(config.phenotype) != body.shape_dim:
        raise ValueError(f"SynthConfig: phenotype needs {body.shape_dim} values for body model {body.name!r}, "
                         f"got {len(config.phenotype)}")  # fmt: skip
    return torch.tensor([float(v) for v in config.phenotype], dtype=torch.float32)


@dataclasses.dataclass
class PosedSequence:
    """The body in every frame.

    Attributes:
        shapes: (S,) shape parameters.
        motion: the per-frame pose, Rh, Th.
        out: the body model's output for all T frames (vertices (T, V, 3) world, metres, ...).
    """

    shapes: torch.Tensor
    motion: motion_lib.Motion
    out: BodyOutput


def pose_sequence(body: BodyModel, config: SynthConfig) -> PosedSequence:
    """Pose ``body`` for every frame of the configured motion (one batch)."""
    device = body.faces.device
    shapes = _shapes(body, config)
    motion = motion_lib.make_motion(config.motion, body=body, num_frames=config.frames, seed=config.seed, shapes=shapes)
    with torch.no_grad():
        out = body(
            motion.poses.to(device),
            shapes.to(device).reshape(1, -1).expand(config.frames, -1),
            motion.Rh.to(device),
            motion.Th.to(device),
        )
    return PosedSequence(shapes=shapes, motion=motion, out=out)


def make_appearance(body: BodyModel, config: SynthConfig, out: BodyOutput) -> Appearance:
    """Regions, solid texture and lighting of the configured person (rest pose of ``out``'s first frame)."""
    regions = vertex_regions(
        rest_vertices=out.rest_vertices[0],
        skinning_weights=out.skinning_weights,
        joint_names=motion_lib.joint_names_of(body),
        rest_joints=out.rest_joints[0],
    )
    floor_z = float(out.rest_vertices[0, :, 2].min()) + 0.025
    style = TextureStyle(top_pattern=config.top_pattern, skin_tone=config.skin_tone, trousers=config.trousers)
    return Appearance(
        rest_vertices=out.rest_vertices[0].float(),
        region_onehot=torch.nn.functional.one_hot(regions, len(REGIONS)).float(),
        texture=make_texture(config.seed, floor_z=floor_z, style=style),
        lighting=LIGHTING_PRESETS[config.lighting],
    )


def train_frame_count(config: SynthConfig) -> int:
    """Training frames ``0 .. n - 1`` of a capture made with ``config`` (the rest are unseen poses)."""
    return max(1, int(math.ceil(config.train_fraction * config.frames)))


def capture_meta(config: SynthConfig, body: BodyModel, shapes: torch.Tensor) -> dict:
    """The ``neuralbody.json`` description of a capture made with ``config`` (before the writer's additions)."""
    train_cams, test_cams = split_cameras(config.views, config.train_views)
    num_train = train_frame_count(config)
    return {
        "generator": GENERATOR_VERSION,
        "body_model": body.name,
        "shapes": [round(float(x), 6) for x in shapes],
        "motion": config.motion,
        "fps": motion_lib.FPS,
        "seed": config.seed,
        "resolution": config.resolution,
        "supersample": config.supersample,
        # rendered coverage: training may use rays right up to the mask border
        "exact_masks": not config.mask_errors,
        "mask_errors": {"kinds": list(config.mask_errors), "pixels": config.mask_error_px} if config.mask_errors else None,
        "appearance": {"top_pattern": config.top_pattern, "skin_tone": config.skin_tone, "trousers": config.trousers},
        "lighting": config.lighting,
        "image_format": config.image_format,
        "distortion": config.distortion,
        "background": list(BACKGROUND),
        "train_cameras": train_cams,
        "test_cameras": test_cams,
        "frames": {"train": [0, num_train], "novel_pose": [num_train, config.frames]},
        "regions": list(REGIONS),
        "up_axis": "z",
        "units": "metres (annots T in millimetres, depth PNG in millimetres)",
    }


def body_files(config: SynthConfig, body: BodyModel, posed: PosedSequence):
    """``frame -> (params, vertices)`` as the capture stores them in ``params/`` and ``vertices/``:
    the body model's own, or the SMPL-like form (:mod:`neuralbody.synth.smpl_like`) for
    ``body_format="smpl-like"``. The true surface (``gt_meshes/``) is the whole mesh either way."""
    out, motion, shapes = posed.out, posed.motion, posed.shapes
    if config.body_format == "anny":
        def own(frame: int):
            params = {"poses": motion.poses[frame].numpy(), "Rh": motion.Rh[frame].numpy(),
                      "Th": motion.Th[frame].numpy(), "shapes": shapes.numpy()}  # fmt: skip
            return params, out.vertices[frame].cpu().numpy()

        return own
    subset = smpl_like.vertex_subset(out.rest_vertices[0].double().cpu().numpy())
    poses = smpl_like.smpl_like_poses(out.bone_transforms, motion.Rh, motion_lib.joint_names_of(body))

    def smpl_shaped(frame: int):
        params = {"poses": poses[frame], "Rh": motion.Rh[frame].numpy(), "Th": motion.Th[frame].numpy(),
                  "shapes": np.zeros(smpl_like.SMPL_NUM_BETAS, dtype=np.float32)}  # fmt: skip
        return params, out.vertices[frame].cpu().numpy()[subset]

    return smpl_shaped


def finish_views(views: RenderedViews, config: SynthConfig, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W, 3) images and (C, H, W) masks as stored: the renders and exact masks, or, with
    ``mask_errors``, the degraded masks and the images blacked out outside them."""
    if not config.mask_errors:
        return views.images, views.masks
    rng = np.random.default_rng([config.seed, 4099, frame])
    masks = np.stack([degrade_mask(mask, config.mask_errors, config.mask_error_px, rng) for mask in views.masks])
    return np.where(masks[..., None], views.images, 0).astype(np.uint8), masks


def generate_capture(
    root: str | Path, config: SynthConfig, *, body: BodyModel | None = None, progress: bool = True
) -> Path:
    """Render a synthetic capture into ``root`` in ZJU-MoCap layout; returns ``root``.

    Reproducible: the same ``config`` (seed included) and body model give the same bytes, file
    for file, on the same machine and software. Frame ``i`` does not depend on the number of
    frames, up to rounding: all frames are posed in one batch, and a batch of another size may
    round the float32 vertices differently (2.4e-7 m seen on one CPU; the tests allow 1e-6 m).

    Args:
        root: output folder.
        config: what to generate.
        body: an already loaded body model (else loaded by ``config.body``).
        progress: show a bar over frames (if progress is on: :mod:`neuralbody.io.progress`).
    """
    started = time.perf_counter()
    body = body if body is not None else load_body(config.body)
    posed = pose_sequence(body, config)
    out = posed.out
    faces = out.faces.long()
    appearance = make_appearance(body, config, out)
    rig = RigConfig(
        num_views=config.views, resolution=config.resolution, distortion=config.distortion, seed=config.seed
    )
    cameras = ring_cameras(rig, out.vertices.reshape(-1, 3).double().cpu().numpy())
    rays = camera_rays(cameras, config.supersample, device=body.faces.device)
    files = body_files(config, body, posed)
    floor = float(out.vertices[..., 2].min()) if config.mask_errors else None
    setup = time.perf_counter() - started
    writer = CaptureWriter(root, cameras, capture_meta(config, body, posed.shapes), image_format=config.image_format,
                           jpeg_quality=config.jpeg_quality, write_meta=config.body_format == "anny")  # fmt: skip
    render_start = time.perf_counter()
    for frame in progress_bar(range(config.frames), enabled=progress, desc="synth frames", unit="frame"):
        views = render_views(rays=rays, vertices=out.vertices[frame], faces=faces, appearance=appearance,
                             backdrop_floor=floor)  # fmt: skip
        images, masks = finish_views(views, config, frame)
        params, vertices = files(frame)
        writer.add_frame(images=images, masks=masks, depths=views.depths, params=params, vertices=vertices,
                         faces=faces.cpu().numpy(),
                         gt_mesh=(out.vertices[frame].cpu().numpy(), faces.cpu().numpy()))  # fmt: skip
    writer.close()
    log.info(
        "rendered %d frames x %d views at %dx%d (%s, seed %d) in %.1f s (set-up %.1f s, %.2f s a frame)",
        config.frames, config.views, config.resolution, config.resolution, config.motion, config.seed,
        time.perf_counter() - started, setup, (time.perf_counter() - render_start) / config.frames,
    )  # fmt: skip
    return Path(root)
