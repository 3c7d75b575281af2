"""IMAvatar's canonical head as a triangle mesh: one iso-surface of its canonical density.

The canonical density is ``sigma(x) = s softplus(r(x))`` (1/metres) with ``r`` the trilinear
interpolation of the raw node values (:class:`neuralbody.head.avatar.ImAvatar`). ``softplus`` is
increasing, so the level set ``sigma = level`` is the level set ``r = r*`` with

    r* = softplus^{-1}(level / s) = log(exp(level / s) - 1),

and marching cubes (``skimage.measure.marching_cubes``) on the raw nodes at ``r*`` places each
vertex where ``r`` crosses ``r*`` along a grid edge, on which ``r`` is linear: the vertices lie
exactly on the level set of the field the volume renderer reads. ``subdivide = k`` first
resamples the raw grid trilinearly at ``spacing / k`` (the same interpolant, sampled finer), so
the facets follow the trilinear field more closely between the nodes.

Outside the canonical box the avatar has no density (a candidate outside it is invalid), so the
grid is padded with an empty layer before marching (the surface closes where the head meets
the box, e.g. the neck's cut) and the closing vertices are clamped back onto the box's faces.
The mesh is in the face model's rest frame (metres); the renderer forward-maps it per frame
(:mod:`neuralbody.head.surface_render`). Extraction is once per run (milliseconds to a second).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from neuralbody.head.avatar import ImAvatar


@dataclasses.dataclass
class CanonicalSurface:
    """The canonical iso-surface of an avatar.

    Attributes:
        vertices: (V, 3) float32 canonical points, metres (the face model's rest frame).
        faces: (F, 3) int64 vertex indices, wound so normals point out of the head.
        level: the density of the iso-surface, 1/metres.
        seconds: time the extraction took.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    level: float
    seconds: float


def raw_level(level: float, scale: float) -> float:
    """``softplus^{-1}(level / scale)``: the raw value where ``scale softplus(raw) = level`` (level, scale > 0)."""
    if level <= 0 or scale <= 0:
        raise ValueError(f"raw_level: level and scale must be > 0, got {level}, {scale}")
    ratio = level / scale
    return ratio + math.log(-math.expm1(-ratio))  # log(exp(r) - 1), stable for large and small r


def extract_canonical_surface(avatar: ImAvatar, level: float, *, subdivide: int = 1) -> CanonicalSurface:
    """The iso-surface ``sigma = level`` (1/metres) of the avatar's canonical density (module docstring).

    Args:
        avatar: a trained :class:`ImAvatar`.
        level: density of the surface, 1/metres (> 0).
        subdivide: marching-cubes cells per canonical voxel along each axis (>= 1).

    Raises:
        ValueError: when the density never crosses ``level`` (the message gives the range found).
    """
    from skimage.measure import marching_cubes

    if subdivide < 1:
        raise ValueError(f"extract_canonical_surface: subdivide must be >= 1, got {subdivide}")
    start = time.perf_counter()
    threshold = raw_level(level, avatar.settings.density_scale)
    box = avatar.box
    with torch.no_grad():
        raw = avatar.canonical[..., 0].detach().float()
        if subdivide > 1:
            size = [(n - 1) * subdivide + 1 for n in raw.shape]
            raw = F.interpolate(raw[None, None], size=size, mode="trilinear", align_corners=True)[0, 0]
    raw = raw.numpy()
    low, high = float(raw.min()), float(raw.max())
    if not high > threshold:
        scale = avatar.settings.density_scale
        raise ValueError(f"extract_canonical_surface: level {level}/m is above the canonical density's maximum "
                         f"{scale * math.log1p(math.exp(min(high, 50.0))):.3g}/m; choose a lower level")
    empty = min(low, threshold) - 1.0
    padded = np.pad(raw, 1, mode="constant", constant_values=empty)
    step = box.spacing / subdivide
    vertices, faces, _, _ = marching_cubes(padded, level=threshold, spacing=(step,) * 3)
    vertices = vertices + (np.asarray(box.origin) - step)
    vertices = np.clip(vertices, np.asarray(box.origin), np.asarray(box.box_max))
    # skimage winds the faces of a bright-inside object clockwise seen from outside: flip them
    faces = np.ascontiguousarray(faces[:, ::-1])
    return CanonicalSurface(vertices=torch.tensor(vertices, dtype=torch.float32),
                            faces=torch.tensor(faces, dtype=torch.int64), level=float(level),
                            seconds=time.perf_counter() - start)
