"""New people from a trained model: meshes in canonical pose and in a motion, normal and colour renders, an interpolation.

``count`` codes ``c = [z_shape, z_detail, z_colour, beta]`` are drawn from the Gaussian fitted to the
training scans (:class:`~neuralbody.gdna.latents.LatentDistribution`). For each: the person's
skinning from ``beta`` (:mod:`neuralbody.gdna.shape_skinning`), the canonical surface with
the detail network's normals, refined so that its geometry carries them (the full model;
:mod:`neuralbody.gdna.detail_surface`; ``detail_geometry=None`` keeps the coarse network's surface,
still wearing the detail normals) and, for a model with colour, the colour network's vertex colours
(:mod:`neuralbody.gdna.meshing`), and, given a motion
(:data:`neuralbody.synth.motion.MOTIONS`), the same mesh posed in ``motion_frames`` frames of
it by forward skinning, in the body frame (the motion's global rotation and translation are
left out). The interpolation walks the straight line between the first two codes.

The output folder::

    person_<i>/canonical.ply          canonical pose, PLY with vertex normals (and colours; metres, z up)
    person_<i>/<motion>_<t>.ply       frame t of the motion
    interpolation/<k>.ply             step k of the interpolation between person 0 and person 1
    sheet.png                         normal renders: canonical row, then one row a motion frame
    sheet_colour.png                  the same as colour renders (a model with colour)
    interpolation.png                 normal renders of the interpolation
    interpolation_colour.png          colour renders of the interpolation (a model with colour)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.images import write_png
from neuralbody.gdna.detail_surface import RefineOptions, refine_normal_mesh
from neuralbody.gdna.meshing import (NormalMesh, Person, canonical_mesh, pose_mesh, vertex_colours_of, vertex_normals_of,
                                     write_ply)
from neuralbody.gdna.normal_render import contact_sheet, render_colours, render_normals
from neuralbody.gdna.run_files import LoadedGenerator
from neuralbody.gdna.shape_skinning import ShapeSkinning, shape_skinning
from neuralbody.io.progress import progress_bar
from neuralbody.synth.motion import MOTIONS, make_motion

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class GenerateSettings:
    """What to generate.

    Attributes:
        count: new people.
        motion: a motion name, or None for the canonical pose only.
        motion_frames: frames of the motion to pose each person in.
        interpolation_steps: meshes along the interpolation (0: none; needs count >= 2).
        voxel: marching-cubes grid spacing, metres.
        image_size: side of each normal render, pixels.
        seed: seeds the codes drawn.
        detail_geometry: how the canonical surface is refined by the detail normals, or None: the coarse surface.
    """

    count: int = 8
    motion: str | None = None
    motion_frames: int = 3
    interpolation_steps: int = 5
    voxel: float = 0.02
    image_size: int = 160
    seed: int = 0
    detail_geometry: RefineOptions | None = RefineOptions()

    def __post_init__(self) -> None:
        if self.count < 1 or self.motion_frames < 1 or self.interpolation_steps < 0 or self.image_size < 8:
            raise ValueError(f"GenerateSettings: count, motion_frames >= 1, interpolation_steps >= 0, image_size >= 8; "
                             f"got {self}")
        if self.motion is not None and self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}; choose one of {', '.join(MOTIONS)}")
        if not self.voxel > 0:
            raise ValueError(f"GenerateSettings: voxel must be positive metres, got {self.voxel}")


@dataclasses.dataclass
class GenerateResult:
    """The files written (``meshes``, ``images``) and the wall ``seconds`` it took."""

    meshes: list[Path]
    images: list[Path]
    seconds: float


def person_mesh(loaded: LoadedGenerator, person: Person, voxel: float,
                detail_geometry: RefineOptions | None = RefineOptions()) -> tuple[NormalMesh, ShapeSkinning]:
    """The canonical mesh of ``person`` with detail normals (and colours, when the person has a colour code),
    refined by them unless ``detail_geometry`` is None (module docstring), and their skinning."""
    skinning = shape_skinning(loaded.body, person.shapes, correction=loaded.model.skinning)
    mesh = canonical_mesh(loaded.model, person, skinning, voxel)
    worn = NormalMesh(mesh.vertices, mesh.faces, vertex_normals_of(loaded.model, person, mesh, detail=True))
    if detail_geometry is not None:
        worn = refine_normal_mesh(worn, detail_geometry)
    if person.colour_code is not None:
        worn.colours = vertex_colours_of(loaded.model, person, worn.vertices)
    return worn, skinning


def sample_people(loaded: LoadedGenerator, count: int, seed: int) -> list[Person]:
    """``count`` people drawn from the run's latent distribution (with colour codes when the model has colour)."""
    shape, detail, colour, shapes = loaded.distribution.split(loaded.distribution.sample(count, seed))
    coloured = loaded.model.colour is not None
    return [Person(shape[i], detail[i], shapes[i], colour[i] if coloured else None) for i in range(count)]


def _render(mesh: NormalMesh, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(normal render, colour render or None) of a mesh, framed on its extent."""
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    centre, half = 0.5 * (low + high), 0.55 * float((high - low)[[0, 2]].max())
    colour = None if mesh.colours is None else render_colours(mesh, size, centre, half)
    return render_normals(mesh, size, centre, half), colour


def _blend(a: Person, b: Person, t: float) -> Person:
    """The person a fraction ``t`` of the way from ``a`` to ``b`` (every code and the body shape)."""
    colour = None if a.colour_code is None or b.colour_code is None else torch.lerp(a.colour_code, b.colour_code, t)
    return Person(torch.lerp(a.shape_code, b.shape_code, t), torch.lerp(a.detail_code, b.detail_code, t),
                  torch.lerp(a.shapes, b.shapes, t), colour)


def _write_sheets(out: Path, name: str, renders: list[tuple[np.ndarray, np.ndarray | None]], columns: int) -> list[Path]:
    """``<name>.png`` of the normal renders and ``<name>_colour.png`` of the colour renders (when there are)."""
    paths = [out / f"{name}.png"]
    write_png(paths[0], contact_sheet([normal for normal, _ in renders], columns))
    if all(colour is not None for _, colour in renders):
        paths.append(out / f"{name}_colour.png")
        write_png(paths[1], contact_sheet([colour for _, colour in renders], columns))
    return paths


def generate(loaded: LoadedGenerator, settings: GenerateSettings, out: str | Path, *, progress: bool = True) -> GenerateResult:
    """Write the output folder of the module docstring into ``out``."""
    started, out = time.perf_counter(), Path(out)
    people = sample_people(loaded, settings.count, settings.seed)
    meshes, rows = [], [[] for _ in range(1 + (settings.motion_frames if settings.motion else 0))]
    for i, person in enumerate(progress_bar(people, enabled=progress, desc="generate", unit="person")):
        folder = out / f"person_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        mesh, skinning = person_mesh(loaded, person, settings.voxel, settings.detail_geometry)
        meshes.append(write_ply(folder / "canonical.ply", mesh))
        rows[0].append(_render(mesh, settings.image_size))
        if settings.motion:
            motion = make_motion(settings.motion, body=loaded.body, num_frames=settings.motion_frames * 5,
                                 seed=settings.seed, shapes=person.shapes)
            transforms = skinning.bone_transforms(motion.poses[::5][: settings.motion_frames])
            for t, frame in enumerate(transforms):
                posed = pose_mesh(mesh, skinning, frame)
                meshes.append(write_ply(folder / f"{settings.motion}_{t}.ply", posed))
                rows[1 + t].append(_render(posed, settings.image_size))
    images = _write_sheets(out, "sheet", [im for row in rows for im in row], settings.count)
    if settings.interpolation_steps and settings.count >= 2:
        renders = []
        (out / "interpolation").mkdir(parents=True, exist_ok=True)
        for k, t in enumerate(np.linspace(0.0, 1.0, settings.interpolation_steps)):
            blend = _blend(people[0], people[1], float(t))
            mesh, _ = person_mesh(loaded, blend, settings.voxel, settings.detail_geometry)
            meshes.append(write_ply(out / "interpolation" / f"{k}.ply", mesh))
            renders.append(_render(mesh, settings.image_size))
        images += _write_sheets(out, "interpolation", renders, len(renders))
    return GenerateResult(meshes, images, time.perf_counter() - started)
