"""Many different clothed people, each a small calibrated multi-view capture: a training corpus for
methods that learn one model for everyone (PIFu, the multi-view multi-scale implicit function,
KeypointNeRF). The layout on disk is :mod:`neuralbody.data.corpus`'s.

Person ``k`` of a corpus (all of it seeded by ``(seed, k)``, world frame z up, metres):

* body: Anny's six phenotypes drawn uniformly in :data:`PHENOTYPE_RANGES` (adults and teenagers of
  every gender, weight, height, muscle and proportions);
* clothing and hair that stand off the skin (:mod:`neuralbody.synth.garments`): a tee, a shirt
  or a coat with tails; trousers, baggy trousers or a skirt; short hair, voluminous hair or a bun;
  colours and patterns from :func:`neuralbody.synth.texture.make_texture`;
* poses: ``frames - heldout_pose_frames`` frames from one procedural motion
  (:data:`neuralbody.synth.motion.MOTIONS`) at random times, the other frames from a different
  motion (the held-out poses), each turned to a random heading about z and standing at the origin;
* cameras: a ring of ``views`` cameras (:func:`neuralbody.synth.rig.ring_cameras`) of random radius
  (2.4-3.6 m) and height (0.8-1.8 m) that sees every frame;
* per frame: the images, masks and depths of the clothed person (ray cast with Warp, Lambert
  shading, as :mod:`neuralbody.synth.generate`), the body model's parameters and vertices (unclothed),
  the clothed surface with its albedo (unshaded vertex colours, the solid texture at each vertex's
  rest position), occupancy samples near it and in its box (:mod:`neuralbody.synth.occupancy`)
  and the posed joints.

The last ``round(heldout_people * subjects)`` people (at least one when there are two or more) are
held out whole. A person whose folder is already complete for the same settings is not rendered
again, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.body.base import BodyModel
from neuralbody.data.corpus import OccupancyArrays, save_frame_extras, write_corpus_index
from neuralbody.data.writer import CaptureWriter
from neuralbody.geometry.queries import WarpMesh
from neuralbody.io.progress import progress_bar
from neuralbody.synth import motion as motion_lib
from neuralbody.synth.garments import Outfit, RestBody, build_wardrobe, dress, random_outfit, union_surface_indices
from neuralbody.synth.generate import BACKGROUND, Appearance, camera_rays, load_body, render_views
from neuralbody.synth.occupancy import OccupancySampling, sample_occupancy
from neuralbody.synth.rig import RigConfig, ring_cameras, split_cameras
from neuralbody.synth.texture import REGIONS, albedo, make_texture, vertex_regions

log = logging.getLogger(__name__)

CORPUS_GENERATOR = "neuralbody.synth.corpus/1"
PHENOTYPE_RANGES = {
    "gender": (0.0, 1.0),
    "age": (0.55, 1.0),  # Anny: 1/3 child, 2/3 young adult, 1 old
    "muscle": (0.1, 0.9),
    "weight": (0.05, 0.95),
    "height": (0.05, 0.95),
    "proportions": (0.0, 0.8),
}
MOTION_FRAMES = 60  # frames of each motion that poses are drawn from (6 s at 10 fps)


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What to generate.

    Attributes:
        subjects: number of people.
        frames: frames per person.
        heldout_pose_frames: of those, how many come from a second motion (the held-out poses).
        heldout_people: fraction of the people held out whole.
        views: cameras on each person's ring.
        resolution: square image side, pixels.
        supersample: s x s rays a pixel.
        sampling: occupancy samples per frame.
        seed: seeds everything.
        body: body-model name.
    """

    subjects: int = 32
    frames: int = 3
    heldout_pose_frames: int = 1
    heldout_people: float = 0.2
    views: int = 8
    resolution: int = 256
    supersample: int = 2
    sampling: OccupancySampling = OccupancySampling()
    seed: int = 0
    body: str = "anny"

    def __post_init__(self) -> None:
        if self.subjects < 1 or self.frames < 1 or self.views < 1:
            raise ValueError(f"CorpusConfig: subjects, frames and views must be >= 1, got {self.subjects}, "
                             f"{self.frames}, {self.views}")  # fmt: skip
        if not 0 <= self.heldout_pose_frames < self.frames:
            raise ValueError(f"CorpusConfig: heldout_pose_frames must be in [0, frames), got {self.heldout_pose_frames}")
        if not 0.0 <= self.heldout_people < 1.0:
            raise ValueError(f"CorpusConfig: heldout_people must be a fraction in [0, 1), got {self.heldout_people}")
        if self.resolution < 16 or self.supersample < 1:
            raise ValueError(f"CorpusConfig: resolution must be >= 16 and supersample >= 1, got {self.resolution}, "
                             f"{self.supersample}")  # fmt: skip

    def num_heldout_people(self) -> int:
        if self.subjects < 2 or self.heldout_people == 0.0:
            return 0
        return min(self.subjects - 1, max(1, round(self.heldout_people * self.subjects)))


@dataclasses.dataclass
class SubjectPlan:
    """Everything random about one person, drawn before anything is rendered.

    Attributes:
        id: folder name, ``s0000``...
        split: "train" or "heldout_people".
        shapes: (6,) Anny phenotypes in :data:`PHENOTYPE_RANGES` order.
        outfit: the clothing and hair.
        texture_seed: seeds the colours and patterns (and the garments' ripples).
        frame_motions: motion of each frame.
        frame_times: time index of each frame in its motion (of :data:`MOTION_FRAMES`).
        yaws: (F,) heading of each frame about z, radians.
        rig_radius, rig_height: the camera ring, metres.
    """

    id: str
    split: str
    shapes: np.ndarray
    outfit: Outfit
    texture_seed: int
    frame_motions: list[str]
    frame_times: list[int]
    yaws: np.ndarray
    rig_radius: float
    rig_height: float

    def frame_splits(self, heldout_pose_frames: int) -> list[str]:
        count = len(self.frame_times)
        if self.split == "heldout_people":
            return ["heldout_people"] * count
        return ["train"] * (count - heldout_pose_frames) + ["heldout_poses"] * heldout_pose_frames

    def describe(self, heldout_pose_frames: int) -> dict:
        """The JSON description kept in the index and the subject's ``neuralbody.json``."""
        return {
            "id": self.id,
            "path": self.id,
            "split": self.split,
            "frame_splits": self.frame_splits(heldout_pose_frames),
            "phenotypes": {k: round(float(v), 6) for k, v in zip(PHENOTYPE_RANGES, self.shapes)},
            "outfit": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self.outfit).items()},
            "texture_seed": self.texture_seed,
            "frame_motions": list(self.frame_motions),
            "frame_times": list(self.frame_times),
            "yaws": [round(float(y), 6) for y in self.yaws],
            "rig": {"radius": round(self.rig_radius, 6), "height": round(self.rig_height, 6)},
        }


def plan_subject(config: CorpusConfig, index: int) -> SubjectPlan:
    """The seeded plan of person ``index`` (it does not depend on the number of people)."""
    rng = np.random.default_rng([config.seed, index, 5107])
    shapes = np.array([rng.uniform(lo, hi) for lo, hi in PHENOTYPE_RANGES.values()])
    outfit = random_outfit(rng)
    texture_seed = int(rng.integers(2**31))
    motions = list(motion_lib.MOTIONS)
    first = motions[rng.integers(len(motions))]
    second = [m for m in motions if m != first][rng.integers(len(motions) - 1)]
    train_count = config.frames - config.heldout_pose_frames
    times = [int(t) for t in rng.choice(MOTION_FRAMES, size=train_count, replace=False)]
    times += [int(t) for t in rng.choice(MOTION_FRAMES, size=config.heldout_pose_frames, replace=False)]
    heldout = index >= config.subjects - config.num_heldout_people()
    return SubjectPlan(
        id=f"s{index:04d}",
        split="heldout_people" if heldout else "train",
        shapes=shapes,
        outfit=outfit,
        texture_seed=texture_seed,
        frame_motions=[first] * train_count + [second] * config.heldout_pose_frames,
        frame_times=times,
        yaws=rng.uniform(0.0, 2.0 * math.pi, config.frames),
        rig_radius=float(rng.uniform(2.4, 3.6)),
        rig_height=float(rng.uniform(0.8, 1.8)),
    )


def pose_subject(body: BodyModel, plan: SubjectPlan):
    """The body of every frame of ``plan`` (a batched :class:`~neuralbody.body.base.BodyOutput`) and
    its parameters ``(poses (F, P), Rh (F, 3), Th (F, 3), shapes (6,))`` as float32 tensors."""
    shapes = torch.tensor(plan.shapes, dtype=torch.float32)
    motions = {name: motion_lib.make_motion(name, body=body, num_frames=MOTION_FRAMES, seed=plan.texture_seed, shapes=shapes)
               for name in dict.fromkeys(plan.frame_motions)}  # fmt: skip
    poses, Rh = [], []
    for name, time_index, yaw in zip(plan.frame_motions, plan.frame_times, plan.yaws):
        motion = motions[name]
        poses.append(motion.poses[time_index])
        Rh.append(torch.tensor([0.0, 0.0, float(motion.Rh[time_index, 2]) + float(yaw)]))
    poses, Rh = torch.stack(poses), torch.stack(Rh)
    Th = torch.zeros_like(Rh)
    count = poses.shape[0]
    with torch.no_grad():
        out = body(poses, shapes[None].expand(count, -1), Rh, Th)
    return out, (poses, Rh, Th, shapes)


def _rest_body(body: BodyModel, out) -> RestBody:
    names = motion_lib.joint_names_of(body)
    regions = vertex_regions(rest_vertices=out.rest_vertices[0], skinning_weights=out.skinning_weights,
                             joint_names=names, rest_joints=out.rest_joints[0])  # fmt: skip
    return RestBody(vertices=out.rest_vertices[0].float(), faces=out.faces.long(), joints=out.rest_joints[0].float(),
                    joint_names=names, dominant=out.skinning_weights.argmax(dim=1), regions=regions)  # fmt: skip


def _capture_meta(config: CorpusConfig, plan: SubjectPlan, body: BodyModel) -> dict:
    train_cams, test_cams = split_cameras(config.views, min(4, config.views))
    train_frames = config.frames - config.heldout_pose_frames
    return {
        "generator": CORPUS_GENERATOR,
        "body_model": body.name,
        "shapes": [round(float(x), 6) for x in plan.shapes],
        "seed": config.seed,
        "resolution": config.resolution,
        "supersample": config.supersample,
        "exact_masks": True,
        "distortion": False,
        "background": list(BACKGROUND),
        "train_cameras": train_cams,
        "test_cameras": test_cams,
        "frames": {"train": [0, train_frames], "novel_pose": [train_frames, config.frames]},
        "regions": list(REGIONS),
        "up_axis": "z",
        "units": "metres (annots T in millimetres, depth PNG in millimetres)",
        "corpus_subject": plan.describe(config.heldout_pose_frames),
        "corpus_settings": _settings(config),
    }


def _settings(config: CorpusConfig) -> dict:
    """What a subject's files depend on besides its plan (to tell a complete folder from a stale one)."""
    return {"views": config.views, "resolution": config.resolution, "supersample": config.supersample,
            "frames": config.frames, "sampling": dataclasses.asdict(config.sampling), "generator": CORPUS_GENERATOR}  # fmt: skip


def _complete(subject_root: Path, meta: dict) -> bool:
    path = subject_root / "neuralbody.json"
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    same = all(json.dumps(stored.get(k), sort_keys=True) == json.dumps(meta[k], sort_keys=True)
               for k in ("corpus_subject", "corpus_settings", "body_model"))  # fmt: skip
    return same and stored.get("num_frames") == meta["corpus_settings"]["frames"]


def render_subject(subject_root: Path, config: CorpusConfig, plan: SubjectPlan, body: BodyModel) -> None:
    """Render and write one person's capture, clothed surfaces, occupancy samples and joints."""
    out, (poses, Rh, Th, shapes) = pose_subject(body, plan)
    rest = _rest_body(body, out)
    wardrobe = build_wardrobe(rest, plan.outfit, seed=plan.texture_seed)
    rest_clothed = dress(wardrobe, rest.vertices, rest.faces, rest.regions, None)
    floor_z = float(rest.vertices[:, 2].min()) + 0.025
    appearance = Appearance(
        rest_vertices=rest_clothed.vertices,
        region_onehot=torch.nn.functional.one_hot(rest_clothed.regions, len(REGIONS)).float(),
        texture=make_texture(plan.texture_seed, floor_z=floor_z),
    )
    colours = (255.0 * albedo(appearance.texture, rest_clothed.vertices, rest_clothed.regions)).round().to(torch.uint8)
    clothed = [dress(wardrobe, out.vertices[f].float(), rest.faces, rest.regions, out.bone_transforms[f].float())
               for f in range(len(plan.frame_times))]  # fmt: skip
    rig = RigConfig(num_views=config.views, resolution=config.resolution, radius=plan.rig_radius, height=plan.rig_height)
    cameras = ring_cameras(rig, torch.cat([c.vertices for c in clothed]).double().numpy())
    rays = camera_rays(cameras, config.supersample)
    writer = CaptureWriter(subject_root, cameras, _capture_meta(config, plan, body))
    for frame, mesh in enumerate(clothed):
        warp_mesh = WarpMesh(mesh.vertices, mesh.faces)
        used, surface_faces = union_surface_indices(mesh, warp_mesh=warp_mesh)
        surface_vertices = mesh.vertices[used]
        samples = sample_occupancy(surface_vertices, surface_faces, warp_mesh.inside, config.sampling,
                                   seed=plan.texture_seed + frame)  # fmt: skip
        views = render_views(rays=rays, vertices=mesh.vertices, faces=mesh.faces, appearance=appearance)
        writer.add_frame(
            images=views.images,
            masks=views.masks,
            depths=views.depths,
            params={"poses": poses[frame].numpy(), "Rh": Rh[frame].numpy(), "Th": Th[frame].numpy(), "shapes": shapes.numpy()},
            vertices=out.vertices[frame].numpy(),
            faces=rest.faces.numpy(),
            gt_mesh=(surface_vertices.numpy(), surface_faces.numpy()),
            gt_colours=colours[used].numpy(),
        )
        occupancy = OccupancyArrays(samples.points, samples.inside, samples.box_min, samples.box_max)
        save_frame_extras(subject_root, frame, occupancy=occupancy, joints=out.joints[frame].numpy())
    writer.close()


def generate_corpus(root: str | Path, config: CorpusConfig, *, body: BodyModel | None = None, progress: bool = True) -> Path:
    """Render a corpus into ``root`` (see the module docstring); returns ``root``.

    Args:
        root: output folder (created); people already complete there for the same settings are kept.
        config: what to generate.
        body: an already loaded body model (else loaded by ``config.body``).
        progress: show a bar over people (if progress is on: :mod:`neuralbody.io.progress`).
    """
    started = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    body = body if body is not None else load_body(config.body)
    entries, splits, rendered = [], {"train": [], "heldout_poses": [], "heldout_people": []}, 0
    for index in progress_bar(range(config.subjects), enabled=progress, desc="synth-corpus", unit="person"):
        plan = plan_subject(config, index)
        subject_root = root / plan.id
        if not _complete(subject_root, _capture_meta(config, plan, body)):
            render_subject(subject_root, config, plan, body)
            rendered += 1
        entry = plan.describe(config.heldout_pose_frames)
        entries.append(entry)
        for frame, split in enumerate(entry["frame_splits"]):
            splits[split].append([plan.id, frame])
    index_document = {
        "generator": CORPUS_GENERATOR,
        "body_model": body.name,
        "joint_names": motion_lib.joint_names_of(body),
        "config": {"subjects": config.subjects, "heldout_pose_frames": config.heldout_pose_frames,
                   "heldout_people": config.heldout_people, "seed": config.seed, **_settings(config)},  # fmt: skip
        "subjects": entries,
        "splits": splits,
    }
    write_corpus_index(root, index_document)
    log.info("corpus of %d people x %d frames x %d views at %d px in %s: %d rendered, %d kept, %.1f s",
             config.subjects, config.frames, config.views, config.resolution, root, rendered,
             config.subjects - rendered, time.perf_counter() - started)  # fmt: skip
    return root
