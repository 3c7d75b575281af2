"""Choosing the density level of IMAvatar's canonical surface so that it shows what volume rendering shows.

A trained grid avatar is foggy: its density rises over centimetres, and a volume-rendered pixel
is covered where the accumulated opacity passes 1/2, which no single density level marks
exactly. The level is therefore chosen by comparison with the volume render itself, on a
frame that needs no data: the face model's rest pose (zero expression and pose), seen by
``views`` cameras around the face (:func:`neuralbody.head.camera_path.orbit_camera`, azimuths
``azimuths`` degrees, 5 degrees up) at ``resolution`` pixels. For every candidate level the
canonical surface is extracted and ray cast (one ray a pixel), and the level whose silhouette
(coverage >= 1/2) best agrees with the volume render's (opacity >= 1/2), by intersection over
union summed over the views, is kept; ties go to the lower level. The depth where both
cover is reported beside it (the volume render's surface depth is quantised by its samples,
about 9 mm apart in a head's box at 32 samples, so it is only a coarse check).

The choice reads no ground truth and no held-out frame; it costs a few volume renders at low
resolution (seconds, once per run).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from neuralbody.head.avatar import ImAvatar
from neuralbody.head.camera_path import orbit_camera
from neuralbody.head.canonical_surface import CanonicalSurface, extract_canonical_surface
from neuralbody.head.capture import FrameParams
from neuralbody.head.fast_render import render_image_fast
from neuralbody.head.frame import head_frame
from neuralbody.head.rig import BONES, NUM_ACTIONS, HeadRig, bone_transforms
from neuralbody.head.surface_render import SurfaceSettings, render_surface

LEVELS = (5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 56.0, 80.0)  # candidate densities, 1/metres
PLAIN = SurfaceSettings(supersample=1, band=None)  # silhouettes of the bare surface, one ray a pixel


@dataclasses.dataclass
class LevelChoice:
    """The chosen level and how every candidate compared.

    Attributes:
        surface: the canonical surface at the chosen level.
        levels: (L,) candidate densities, 1/metres.
        iou: (L,) mean silhouette IoU with the volume render over the views.
        depth_mm: (L,) mean |surface depth - volume render's surface depth| where both cover, millimetres.
        seconds: time of the whole choice (volume renders, extractions, ray casts).
    """

    surface: CanonicalSurface
    levels: np.ndarray
    iou: np.ndarray
    depth_mm: np.ndarray
    seconds: float


def rest_frame_params(rig: HeadRig) -> FrameParams:
    """The face model's rest pose: zero expression and pose, its bone transforms."""
    pose = torch.zeros(len(BONES), 3)
    return FrameParams(expression=np.zeros(NUM_ACTIONS, np.float32), pose=pose.numpy(),
                       bone_transforms=bone_transforms(rig.rest_joints, pose[None])[0].numpy())


def choose_level(avatar: ImAvatar, rig: HeadRig, *, levels: tuple[float, ...] = LEVELS, resolution: int = 64,
                 azimuths: tuple[float, ...] = (-40.0, 0.0, 40.0), subdivide: int = 1,
                 workers: int = 0) -> LevelChoice:
    """The module docstring's choice of the canonical surface's level for a trained avatar.

    Args:
        avatar: the trained :class:`ImAvatar`.
        rig: its face model (for the rest pose and the frame's box).
        levels: candidate densities, 1/metres (those above the density's maximum are skipped).
        resolution: side of the comparison images, pixels.
        azimuths: camera azimuths, degrees (0: frontal).
        subdivide: passed to :func:`~neuralbody.head.canonical_surface.extract_canonical_surface`.
        workers: rendering threads (0: ``$NEURALBODY_THREADS``, else one per core).
    """
    if not levels or resolution < 8 or not azimuths:
        raise ValueError(f"choose_level: levels, resolution >= 8 and azimuths needed, got {levels}, {resolution}, "
                         f"{azimuths}")
    start = time.perf_counter()
    frame = head_frame(rig, rest_frame_params(rig))
    cameras = [orbit_camera(math.radians(a), math.radians(5.0), resolution) for a in azimuths]
    volumes = [render_image_fast(avatar, frame, camera, workers=workers) for camera in cameras]
    peak = avatar.settings.density_scale * float(torch.nn.functional.softplus(avatar.canonical[..., 0].detach()).max())
    kept, ious, depths, surfaces = [], [], [], []
    for level in sorted(levels):
        if level >= peak:
            continue
        surface = extract_canonical_surface(avatar, level, subdivide=subdivide)
        iou, error = [], []
        for camera, volume in zip(cameras, volumes):
            shown = render_surface(avatar, surface, frame, camera, settings=PLAIN, workers=workers)
            a, b = volume.opacity >= 0.5, shown.opacity >= 0.5
            iou.append((a & b).sum() / max(1, (a | b).sum()))
            both = a & b & (volume.surface > 0)
            error.append(np.abs(shown.surface - volume.surface)[both].mean() * 1000.0 if both.any() else np.nan)
        kept.append(level)
        ious.append(float(np.mean(iou)))
        depths.append(float(np.nanmean(error)) if np.isfinite(error).any() else float("nan"))
        surfaces.append(surface)
    if not kept:
        raise ValueError(f"choose_level: every candidate level is above the canonical density's maximum {peak:.3g}/m")
    best = int(np.argmax(ious))  # the first (lowest) of equal scores
    return LevelChoice(surface=surfaces[best], levels=np.array(kept), iou=np.array(ious), depth_mm=np.array(depths),
                       seconds=time.perf_counter() - start)
