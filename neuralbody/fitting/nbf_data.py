"""Synthetic training data for Neural Body Fitting: random bodies, random cameras, part maps and RGB crops.

Each sample (world z up, metres; camera OpenCV axes, world-to-camera ``x_cam = R x + T``):

1. shape: each of Anny's 6 phenotypes uniform in [0.3, 0.7];
2. pose: each bone of :data:`NBF_BONES` gets anatomical rotations (flex / abduct / twist /
   bend, :mod:`neuralbody.synth.motion`'s axes) drawn uniformly from :data:`POSE_RANGES`;
   every other bone stays at its rest rotation;
3. global rotation ``Rh``: a uniform yaw about z and tilts of up to 0.2 rad about x and y; ``Th = 0``;
4. camera: at a uniform azimuth, 2.5-5 m away and 0.3-2.2 m high, looking at the root joint
   (plus up to 10 cm of jitter); its intrinsics frame a square *crop* around the projected body:
   centre = centre of the vertices' bounding box (jittered by up to 5 % of the side),
   side = longest box side x U(1.1, 1.3), mapped onto ``resolution`` pixels. At inference the
   same crop is cut from a person mask's bounding box (:func:`crop_camera`, factor 1.2);
5. rendering with the Warp ray caster, ``supersample``² rays a pixel: the part map (majority
   label over a pixel's rays, :mod:`~neuralbody.fitting.nbf_parts`) and an RGB image (the
   synthetic captures' solid textures with a random palette, Lambert shading with a random key
   light, over a random background: three times in four a cluttered one (a colour gradient,
   3-8 random rectangles, pixel noise), else a plain one, black half of those times).

Ground truth stored with each sample: shapes, the bones' axis-angle (world-aligned rest axes,
as :class:`~neuralbody.body.anny.AnnyBody` takes them), the global rotation in the camera
frame ``G = R_cam R(Rh)``, the joints :data:`NBF_JOINTS` in the camera frame relative to the
root joint (metres), and their perspective projections in normalised image coordinates
``2 (u + 0.5) / resolution - 1`` (u right, v down, in [-1, 1] inside the image).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.body.base import BodyModel
from neuralbody.data.cameras import Camera, pixel_rays
from neuralbody.fitting import nbf_parts
from neuralbody.fitting.optimize import DEFAULT_BONES
from neuralbody.geometry.normals import vertex_normals
from neuralbody.geometry.raycast import cast_rays
from neuralbody.geometry.rotations import axis_angle_to_matrix, look_at_rotation, matrix_to_axis_angle
from neuralbody.io.atomic import atomic_path
from neuralbody.io.progress import progress_bar
from neuralbody.synth import motion as motion_lib
from neuralbody.synth.shading import Lighting, interpolate, lambert
from neuralbody.synth.texture import REGIONS, albedo, make_texture, vertex_regions

log = logging.getLogger(__name__)

NBF_BONES = DEFAULT_BONES
"""Bones the network predicts (the multi-view fitter's default subset, :data:`optimize.DEFAULT_BONES`)."""

NBF_JOINTS = (
    "root", "spine03", "neck01", "head",
    "upperleg01.L", "lowerleg01.L", "foot.L", "upperleg01.R", "lowerleg01.R", "foot.R",
    "upperarm01.L", "lowerarm01.L", "wrist.L", "upperarm01.R", "lowerarm01.R", "wrist.R",
)  # fmt: skip
"""The 16 joints (Anny bone heads: pelvis, mid spine, neck, head, hips, knees, ankles, shoulders,
elbows, wrists) of the 3D/2D losses and of MPJPE; ``root`` (the pelvis centre) is the alignment root."""

ROOT_JOINT = "root"

POSE_RANGES = {
    "spine04": (("flex", -0.2, 0.45), ("bend", -0.25, 0.25), ("twist", -0.3, 0.3)),
    "spine03": (("flex", -0.1, 0.2), ("bend", -0.1, 0.1), ("twist", -0.15, 0.15)),
    "spine02": (("flex", -0.1, 0.2), ("bend", -0.1, 0.1), ("twist", -0.15, 0.15)),
    "neck02": (("flex", -0.3, 0.4), ("bend", -0.2, 0.2), ("twist", -0.5, 0.5)),
    "head": (("flex", -0.3, 0.3), ("bend", -0.15, 0.15), ("twist", -0.3, 0.3)),
    "upperleg01.L": (("flex", -0.4, 1.3), ("abduct", -0.15, 0.6), ("twist", -0.3, 0.3)),
    "upperleg01.R": (("flex", -0.4, 1.3), ("abduct", -0.15, 0.6), ("twist", -0.3, 0.3)),
    "lowerleg01.L": (("flex", -1.9, 0.0),),
    "lowerleg01.R": (("flex", -1.9, 0.0),),
    "foot.L": (("flex", -0.4, 0.4),),
    "foot.R": (("flex", -0.4, 0.4),),
    "upperarm01.L": (("flex", -0.8, 1.6), ("abduct", -0.5, 1.5), ("twist", -0.5, 0.5)),
    "upperarm01.R": (("flex", -0.8, 1.6), ("abduct", -0.5, 1.5), ("twist", -0.5, 0.5)),
    "lowerarm01.L": (("flex", 0.0, 2.0), ("twist", -0.4, 0.4)),
    "lowerarm01.R": (("flex", 0.0, 2.0), ("twist", -0.4, 0.4)),
}
"""Anatomical rotation ranges per bone, radians (uniform; kinds as in :mod:`neuralbody.synth.motion`)."""

SHAPE_RANGE = (0.3, 0.7)
CROP_FACTOR = 1.2


@dataclasses.dataclass(frozen=True)
class NBFDataConfig:
    """What to generate. resolution: square crop side, pixels; supersample: s (s x s rays a pixel)."""

    count: int = 4000
    resolution: int = 64
    supersample: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.count < 1 or self.resolution < 8 or self.supersample < 1:
            raise ValueError(
                f"NBFDataConfig: need count >= 1, resolution >= 8, supersample >= 1; got {self.count}, "
                f"{self.resolution}, {self.supersample}"
            )


@dataclasses.dataclass
class NBFDataset:
    """N rendered samples with ground truth (numpy).

    Attributes:
        parts: (N, H, W) uint8 labels (0 background, p + 1 part p of :data:`nbf_parts.PART_NAMES`).
        rgb: (N, H, W, 3) uint8 images.
        bone_poses: (N, n, 3) axis-angle of :data:`NBF_BONES`, radians, world-aligned rest axes.
        global_rotation: (N, 3, 3) body-to-camera rotation ``R_cam R(Rh)``.
        shapes: (N, 6) phenotypes.
        joints3d: (N, J, 3) :data:`NBF_JOINTS`, camera frame, relative to the root joint, metres.
        joints2d: (N, J, 2) their projections, normalised image coordinates in [-1, 1].
        K, R, T: (N, 3, 3), (N, 3, 3), (N, 3) the crop cameras (pixels; world-to-camera; metres).
        Rh: (N, 3) global rotations, axis-angle, radians.
        seconds: generation time.
    """

    parts: np.ndarray
    rgb: np.ndarray
    bone_poses: np.ndarray
    global_rotation: np.ndarray
    shapes: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray
    K: np.ndarray
    R: np.ndarray
    T: np.ndarray
    Rh: np.ndarray
    seconds: float = 0.0

    def __len__(self) -> int:
        return self.parts.shape[0]

    def subset(self, index) -> "NBFDataset":
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seconds"}
        return NBFDataset(**{k: v[index] for k, v in fields.items()}, seconds=self.seconds)

    def save(self, path: str | Path) -> Path:
        """Write a compressed .npz (atomically, :func:`neuralbody.io.atomic.atomic_path`)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: savez adds no .npz suffix
            np.savez_compressed(handle, **dataclasses.asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "NBFDataset":
        with np.load(path, allow_pickle=False) as data:
            missing = {f.name for f in dataclasses.fields(cls)} - set(data.files)
            if missing:
                raise ValueError(f"{path}: not an NBF dataset (missing {sorted(missing)}); regenerate it")
            values = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        values["seconds"] = float(values["seconds"])
        return cls(**values)


def anatomical_axes(body: BodyModel) -> dict[str, np.ndarray]:
    """Unit axes (world = rest body frame) of the rotation kinds for left limbs / the spine; right limbs
    abduct about ``-front`` (see :mod:`neuralbody.synth.motion`)."""
    with torch.no_grad():
        rest = body(torch.zeros(1, body.pose_dim, device=body.faces.device))
    axes = motion_lib.body_axes(rest.rest_joints[0].double().cpu().numpy(), motion_lib.joint_names_of(body))
    return {"flex": axes.flex, "abduct": axes.front, "twist": axes.up, "bend": axes.front}


def sample_bone_poses(body: BodyModel, rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, n, 3) axis-angle of :data:`NBF_BONES` in the body model's convention, radians.

    Per bone the drawn anatomical angles are summed as world-axis rotation vectors and converted
    with the bone's local frame (:func:`neuralbody.synth.motion.joint_frames`).
    """
    names = motion_lib.joint_names_of(body)
    axes = anatomical_axes(body)
    frames = motion_lib.joint_frames(body, [names.index(b) for b in NBF_BONES]).numpy()  # (n, 3, 3)
    out = np.zeros((count, len(NBF_BONES), 3))
    for k, bone in enumerate(NBF_BONES):
        side = -1.0 if bone.endswith(".R") else 1.0
        world = np.zeros((count, 3))
        for kind, low, high in POSE_RANGES[bone]:
            axis = axes[kind] * (side if kind == "abduct" else 1.0)
            world += rng.uniform(low, high, count)[:, None] * axis[None]
        out[:, k] = np.linalg.solve(frames[k], world.T).T
    return out


def random_global_rotation(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 3) axis-angle: uniform yaw about z, then tilts of up to 0.2 rad about x and y."""
    yaw = rng.uniform(-math.pi, math.pi, count)
    tilt = rng.uniform(-0.2, 0.2, (count, 2))
    Rz = axis_angle_to_matrix(torch.tensor(np.stack([0 * yaw, 0 * yaw, yaw], 1)))
    Rx = axis_angle_to_matrix(torch.tensor(np.stack([tilt[:, 0], 0 * yaw, 0 * yaw], 1)))
    Ry = axis_angle_to_matrix(torch.tensor(np.stack([0 * yaw, tilt[:, 1], 0 * yaw], 1)))
    return matrix_to_axis_angle(Rz @ Rx @ Ry).numpy()


def crop_intrinsics(xy_min: np.ndarray, xy_max: np.ndarray, resolution: int, factor: float,
                    shift: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """(3, 3) intrinsics mapping a square crop around a box in normalised camera coordinates to the image.

    The box ``[xy_min, xy_max]`` (x = X/Z, y = Y/Z) has centre ``c`` and longest side ``a``; the crop
    has side ``a * factor`` and centre ``c + shift * a * factor`` and covers pixels ``[-0.5, res - 0.5]``:
    ``f = res / side``, principal point ``res / 2 - 0.5 - f c``.
    """
    centre = (np.asarray(xy_min, np.float64) + np.asarray(xy_max, np.float64)) / 2.0
    side = float(np.max(np.asarray(xy_max) - np.asarray(xy_min))) * factor
    if not np.isfinite(side) or side <= 0:
        raise ValueError(f"crop_intrinsics: empty box {xy_min} .. {xy_max}")
    if shift is not None:
        centre = centre + np.asarray(shift) * side
    focal = resolution / side
    principal = resolution / 2.0 - 0.5 - focal * centre
    return np.array([[focal, 0.0, principal[0]], [0.0, focal, principal[1]], [0.0, 0.0, 1.0]])


def crop_camera(camera: Camera, box_uv: np.ndarray, resolution: int, factor: float = CROP_FACTOR) -> Camera:
    """The camera of a square ``resolution``² crop around a pixel box ``[u0, v0, u1, v1]`` of ``camera``'s image.

    Same rotation and translation; the box corners are undistorted to normalised coordinates and
    framed as in training (:func:`crop_intrinsics`); the crop has no distortion (small boxes).
    """
    from neuralbody.data.cameras import undistort_points

    box_uv = np.asarray(box_uv, np.float64).reshape(-1)
    if box_uv.shape != (4,) or box_uv[2] <= box_uv[0] or box_uv[3] <= box_uv[1]:
        raise ValueError(f"crop_camera: box_uv must be [u0, v0, u1, v1] with u1 > u0, v1 > v0; got {box_uv}")
    corners = np.array([[box_uv[0], box_uv[1]], [box_uv[2], box_uv[3]], [box_uv[0], box_uv[3]], [box_uv[2], box_uv[1]]])
    uv = undistort_points(camera, corners)
    xy = (uv - camera.K[:2, 2]) / np.diag(camera.K)[:2]
    K = crop_intrinsics(xy.min(0), xy.max(0), resolution, factor)
    return Camera(K=K, R=camera.R, T=camera.T, D=np.zeros(5), width=resolution, height=resolution, name=camera.name)


def random_background(rng: np.random.Generator, resolution: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: a random colour gradient, 3-8 random rectangles and pixel noise; one
    time in four a plain background instead (black half of those times, as in masked captures)."""
    if rng.random() < 0.25:
        colour = np.zeros(3) if rng.random() < 0.5 else rng.uniform(0, 1, 3)
        return np.clip(colour + rng.normal(0.0, 0.02, (resolution, resolution, 3)), 0.0, 1.0)
    ramp = np.linspace(0.0, 1.0, resolution)
    angle = rng.uniform(0, 2 * math.pi)
    t = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    image = a + (b - a) * t[..., None]
    for _ in range(rng.integers(3, 9)):
        u0, v0 = rng.integers(0, resolution, 2)
        w, h = rng.integers(resolution // 16 + 1, resolution // 2, 2)
        image[v0 : v0 + h, u0 : u0 + w] = rng.uniform(0, 1, 3)
    return np.clip(image + rng.normal(0.0, 0.03, image.shape), 0.0, 1.0)


@dataclasses.dataclass
class _BodyLook:
    """What the renderer needs about the body besides its pose (per model, fixed)."""

    faces: torch.Tensor  # (F, 3) int64
    vertex_part: torch.Tensor  # (V,) int64
    region_onehot: torch.Tensor  # (V, R) float
    floor_z: float


def _body_look(body: BodyModel) -> _BodyLook:
    names = motion_lib.joint_names_of(body)
    with torch.no_grad():
        rest = body(torch.zeros(1, body.pose_dim, device=body.faces.device))
    regions = vertex_regions(rest_vertices=rest.rest_vertices[0], skinning_weights=rest.skinning_weights,
                             joint_names=names, rest_joints=rest.rest_joints[0])  # fmt: skip
    return _BodyLook(
        faces=rest.faces.long().cpu(),
        vertex_part=nbf_parts.vertex_parts(rest.skinning_weights, names).cpu(),
        region_onehot=torch.nn.functional.one_hot(regions, len(REGIONS)).float().cpu(),
        floor_z=float(rest.rest_vertices[0, :, 2].min()) + 0.025,
    )


def render_crop(
    camera: Camera,
    vertices: torch.Tensor,
    rest_vertices: torch.Tensor,
    look: _BodyLook,
    rng: np.random.Generator,
    supersample: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one body in one (crop) camera: part labels (H, W) uint8 and RGB (H, W, 3) uint8.

    vertices: (V, 3) posed, world, metres; rest_vertices: (V, 3) canonical (for the solid texture).
    The palette, light and background are drawn from ``rng``.
    """
    s, height, width = supersample, camera.height, camera.width
    offsets = (np.arange(s) + 0.5) / s - 0.5
    v, u, dv, du = np.meshgrid(np.arange(height), np.arange(width), offsets, offsets, indexing="ij")
    rays_o, rays_d = pixel_rays(camera, np.stack([(u + du).ravel(), (v + dv).ravel()], axis=1))
    rays_o, rays_d = torch.tensor(rays_o, dtype=torch.float32), torch.tensor(rays_d, dtype=torch.float32)
    hits = cast_rays(vertices.float().cpu(), look.faces, rays_o, rays_d)
    labels = nbf_parts.hit_labels(look.vertex_part, look.faces, hits.face_ids, hits.barycentrics)
    votes = torch.nn.functional.one_hot(labels, nbf_parts.NUM_LABELS).reshape(height, width, s * s, -1).sum(2)
    parts = votes.argmax(-1).to(torch.uint8).numpy()

    colour = torch.tensor(random_background(rng, height * s).reshape(height, s, width, s, 3).transpose(0, 2, 1, 3, 4)
                          .reshape(-1, 3), dtype=torch.float32)  # fmt: skip
    if bool(hits.hit.any()):
        face_ids, bary = hits.face_ids[hits.hit], hits.barycentrics[hits.hit]
        canonical = interpolate(rest_vertices.float().cpu(), look.faces, face_ids, bary)
        regions = interpolate(look.region_onehot, look.faces, face_ids, bary).argmax(1)
        texture = make_texture(int(rng.integers(1 << 30)), floor_z=look.floor_z)
        normals = interpolate(vertex_normals(vertices.float().cpu(), look.faces), look.faces, face_ids, bary)
        normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
        key = rng.normal(size=3)
        key[2] = abs(key[2]) + 0.3
        lighting = Lighting(key_direction=tuple(key), key=float(rng.uniform(0.5, 0.9)),
                            ambient=float(rng.uniform(0.2, 0.45)))  # fmt: skip
        shaded = lambert(albedo(texture, canonical, regions), normals, rays_d[hits.hit], lighting)
        colour[hits.hit] = shaded
    rgb = colour.reshape(height, width, s * s, 3).mean(2)
    return parts, (rgb * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def generate_dataset(body: BodyModel, config: NBFDataConfig, *, progress: bool = True,
                     chunk: int = 64) -> NBFDataset:  # fmt: skip
    """Render ``config.count`` random samples (see the module docstring); deterministic in ``config.seed``."""
    started = time.perf_counter()
    names = motion_lib.joint_names_of(body)
    missing = [b for b in NBF_BONES + NBF_JOINTS if b not in names]
    if missing:
        raise ValueError(f"generate_dataset: body model {body.name!r} lacks bones {missing}; NBF needs Anny")
    device = body.faces.device
    rng = np.random.default_rng([config.seed, 4004])
    look = _body_look(body)
    bone_ids = [names.index(b) for b in NBF_BONES]
    joint_ids = [names.index(j) for j in NBF_JOINTS]
    root = NBF_JOINTS.index(ROOT_JOINT)
    res, n = config.resolution, config.count
    out = {
        "parts": np.zeros((n, res, res), np.uint8), "rgb": np.zeros((n, res, res, 3), np.uint8),
        "bone_poses": np.zeros((n, len(NBF_BONES), 3), np.float32), "global_rotation": np.zeros((n, 3, 3), np.float32),
        "shapes": np.zeros((n, 6), np.float32), "joints3d": np.zeros((n, len(NBF_JOINTS), 3), np.float32),
        "joints2d": np.zeros((n, len(NBF_JOINTS), 2), np.float32), "K": np.zeros((n, 3, 3), np.float32),
        "R": np.zeros((n, 3, 3), np.float32), "T": np.zeros((n, 3), np.float32), "Rh": np.zeros((n, 3), np.float32),
    }  # fmt: skip
    bar = progress_bar(total=n, enabled=progress, desc="rendering NBF samples", unit="sample")
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        shapes = rng.uniform(*SHAPE_RANGE, (count, body.shape_dim))
        bones = sample_bone_poses(body, rng, count)
        Rh = random_global_rotation(rng, count)
        poses = np.zeros((count, body.num_joints, 3))
        poses[:, bone_ids] = bones
        with torch.no_grad():
            output = body(torch.tensor(poses.reshape(count, -1), dtype=torch.float32, device=device),
                          torch.tensor(shapes, dtype=torch.float32, device=device),
                          torch.tensor(Rh, dtype=torch.float32, device=device))  # fmt: skip
        vertices = output.vertices.double().cpu().numpy()
        joints = output.joints[:, joint_ids].double().cpu().numpy()
        for k in range(count):
            i = start + k
            target = joints[k, root] + rng.uniform(-0.1, 0.1, 3)
            azimuth, distance = rng.uniform(-math.pi, math.pi), rng.uniform(2.5, 5.0)
            centre = target + np.array([distance * math.cos(azimuth), distance * math.sin(azimuth), 0.0])
            centre[2] = rng.uniform(0.3, 2.2)
            R = look_at_rotation(centre, target)
            T = -R @ centre
            cam_vertices = vertices[k] @ R.T + T
            xy = cam_vertices[:, :2] / cam_vertices[:, 2:]
            K = crop_intrinsics(xy.min(0), xy.max(0), res, rng.uniform(1.1, 1.3), rng.uniform(-0.05, 0.05, 2))
            camera = Camera(K=K, R=R, T=T, D=np.zeros(5), width=res, height=res)
            parts, rgb = render_crop(camera, output.vertices[k], output.rest_vertices[k], look, rng, config.supersample)
            cam_joints = joints[k] @ R.T + T
            uv = cam_joints[:, :2] / cam_joints[:, 2:] * K[0, 0] + K[:2, 2]
            out["parts"][i], out["rgb"][i] = parts, rgb
            out["bone_poses"][i], out["shapes"][i], out["Rh"][i] = bones[k], shapes[k], Rh[k]
            out["global_rotation"][i] = R @ axis_angle_to_matrix(torch.tensor(Rh[k])).numpy()
            out["joints3d"][i] = cam_joints - cam_joints[root]
            out["joints2d"][i] = 2.0 * (uv + 0.5) / res - 1.0
            out["K"][i], out["R"][i], out["T"][i] = K, R, T
        bar.update(count)
    bar.close()
    seconds = time.perf_counter() - started
    log.info("rendered %d NBF samples at %dx%d in %.1f s", n, res, res, seconds)
    return NBFDataset(**out, seconds=seconds)


def load_or_generate(path: str | Path, body: BodyModel, config: NBFDataConfig, *, progress: bool = True) -> NBFDataset:
    """The dataset cached at ``path`` (.npz) if it is there with ``config.count`` samples, else generated and saved."""
    path = Path(path)
    if path.is_file():
        dataset = NBFDataset.load(path)
        if len(dataset) == config.count and dataset.parts.shape[1] == config.resolution:
            log.info("loaded %d cached NBF samples from %s", len(dataset), path)
            return dataset
        log.warning("%s holds %d samples at %d px, not %d at %d px: regenerating", path, len(dataset),
                    dataset.parts.shape[1], config.count, config.resolution)  # fmt: skip
    dataset = generate_dataset(body, config, progress=progress)
    dataset.save(path)
    return dataset
