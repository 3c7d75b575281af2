"""Checks of a capture's files: every problem found, one :class:`~neuralbody.io.errors.Problem` each.

What is checked (``neuralbody check`` runs all of it on every frame; ``info`` on its sampled
frames; training and evaluation run the body and mask checks of their frames before they
write anything):

* ``annots.npy``, the cameras and frame 0's image headers: :func:`~neuralbody.data.capture.read_capture`
  (safe unpickling, image paths inside the capture, finite K / R / T, R a rotation).
* images and masks: each decoded completely, sizes as in frame 0; a frame whose masks are
  all empty is an error, one empty mask among non-empty ones a warning.
* ``params/{n}.npy``: a pickled dict with finite ``Rh`` and ``Th`` (3 values each).
* ``vertices/{n}.npy``: (V, 3), finite, the same V in every frame.
* cameras against the body: the centre of each frame's vertices (else params ``Th``) must be
  in front of every camera (an error otherwise) and inside its image (a warning when it
  leaves in some frames, an error when it is outside in all of them).
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import numpy as np

from neuralbody.data.cameras import project_points
from neuralbody.data.capture import BODY_FIX, CHECK_HINT, Capture, read_capture
from neuralbody.io.errors import InputError, Problem
from neuralbody.io.progress import progress_bar

KINDS = ("annots", "images", "masks", "params", "vertices", "cameras")
MASK_FIX = "redo the masks of this frame (`neuralbody detect`) or leave the frame out (--frames)"


@dataclasses.dataclass
class BodyCheck:
    """What the vertex files of some frames hold.

    Attributes:
        problems: one per bad file (missing, damaged, NaN / inf, not (V, 3), a V unlike the others).
        centres: frame index -> (3,) mean of its vertices, world, metres (readable frames only).
        count: the vertex count V of the frames (the most common one; None when none was readable).
    """

    problems: list[Problem]
    centres: dict[int, np.ndarray]
    count: int | None


def check_vertices(capture: Capture, frames: list[int], *, expected_count: int | None = None) -> BodyCheck:
    """Read the vertices of ``frames``; ``expected_count``: the V every frame must have (default: the most common)."""
    problems, centres, counts = [], {}, {}
    for frame in frames:
        try:
            vertices = capture.load_vertices(frame)
        except FileNotFoundError:
            problems.append(Problem(str(capture.vertices_path(frame)), f"missing (frame {frame})", BODY_FIX))
            continue
        except InputError as error:
            problems.extend(error.problems)
            continue
        counts[frame] = len(vertices)
        centres[frame] = vertices.mean(axis=0, dtype=np.float64)
    count = expected_count
    if count is None and counts:
        tally = collections.Counter(counts.values())
        count = max(tally, key=lambda c: (tally[c], -min(f for f in counts if counts[f] == c)))
    for frame, found in counts.items():
        if found != count:
            problems.append(Problem(str(capture.vertices_path(frame)), f"holds {found} vertices but "
                                    f"{'the model expects' if expected_count is not None else 'the other frames hold'} "
                                    f"{count} (frame {frame})", BODY_FIX))  # fmt: skip
            centres.pop(frame)
    return BodyCheck(problems, centres, count)


def check_params(capture: Capture, frames: list[int]) -> list[Problem]:
    """Problems of the ``params/`` files of ``frames`` (none when the capture has no ``params/`` folder)."""
    if not (capture.root / "params").is_dir():
        return []
    problems = []
    for frame in frames:
        path = capture.params_path(frame)
        try:
            if capture.load_params(frame) is None:
                problems.append(Problem(str(path), f"missing (frame {frame}; other frames have params)", BODY_FIX))
        except InputError as error:
            problems.extend(error.problems)
    return problems


def check_images(capture: Capture, frames: list[int], views: list[int], *, masks: bool = True,
                 progress: bool = False) -> tuple[list[Problem], list[Problem]]:  # fmt: skip
    """Decode every image (and mask) of ``frames`` x ``views`` completely: (image problems, mask problems)."""
    image_problems, mask_problems = [], []
    for frame in progress_bar(frames, desc="images", unit="frame", enabled=progress):
        for view in views:
            try:
                capture.load_image(frame, view)
            except (InputError, FileNotFoundError) as error:
                image_problems.extend(_as_problems(error, capture.image_path(frame, view)))
        if masks:
            mask_problems += check_frame_masks(capture, frame, views)
    return image_problems, mask_problems


def check_frame_masks(
    capture: Capture, frame: int, views: list[int], *, first_person_only: bool = False
) -> list[Problem]:
    """Problems of a frame's masks: missing or damaged ones, empty ones (all empty: an error).

    ``first_person_only``: stop at the first mask that shows the person (a quick test that the
    frame is not blank; single empty masks then go unreported).
    """
    problems, empty, seen = [], [], False
    for view in views:
        try:
            mask = capture.load_mask(frame, view)
        except (InputError, FileNotFoundError) as error:
            fix = "add the mask (`neuralbody detect`)"
            problems.extend(_as_problems(error, capture.image_path(frame, view), fix=fix))
            continue
        if mask.any():
            seen = True
            if first_person_only:
                return problems
        else:
            empty.append(view)
    if empty and not seen and not problems:
        first = capture.mask_path(frame, empty[0])
        problem = f"every mask of frame {frame} is empty (all black in the {len(empty)} views checked)"
        problems.append(Problem(str(first), problem, MASK_FIX))
    elif empty and seen:
        problems += [Problem(str(capture.mask_path(frame, view)), f"empty mask (all black) while other views of frame "
                             f"{frame} show the person", "redo this mask or leave the camera out (--views)", "warning")
                     for view in empty]  # fmt: skip
    return problems


def check_cameras(
    capture: Capture, centres: dict[int, np.ndarray], views: list[int], *, image_bounds: bool = True
) -> list[Problem]:
    """Whether the person's centre lies in front of each camera (and, with ``image_bounds``, inside its image).

    ``centres``: frame index -> (3,) the person's centre, world, metres.
    """
    if not centres:
        return []
    frames = sorted(centres)
    points = np.stack([centres[f] for f in frames])
    annots = str(capture.root / "annots.npy")
    problems = []
    for view in views:
        camera = capture.cameras[view]
        uv, depth = project_points(camera, points)
        behind = [f for f, z in zip(frames, depth) if not z > 0]
        limits = np.array([camera.width, camera.height]) - 0.5
        inside = np.all((uv >= -0.5) & (uv <= limits), axis=1)
        outside = [f for f, z, ok in zip(frames, depth, inside) if z > 0 and not ok]
        subject = f"camera {view} ({camera.name})"
        if behind:
            problem = f"{subject}: the person is behind the camera in {_frames_text(behind, frames)}"
            problems.append(Problem(annots, problem, "fix this camera's R and T (world-to-camera, T in millimetres)"))
        elif outside and image_bounds:
            severity = "error" if len(outside) == len(frames) else "warning"
            problems.append(Problem(annots, f"{subject}: the person's centre projects outside the image in "
                                    f"{_frames_text(outside, frames)}", "check this camera's K, R and T", severity))
    return problems


def _frames_text(chosen: list[int], frames: list[int]) -> str:
    shown = ", ".join(str(f) for f in chosen[:6]) + (", ..." if len(chosen) > 6 else "")
    return f"frames {shown} ({len(chosen)} of {len(frames)} checked)"


def _as_problems(error: Exception, path: Path, *, fix: str = "add the file or fix its path in annots.npy") -> list:
    if isinstance(error, InputError):
        return list(error.problems)
    return [Problem(str(path), f"missing ({error})", fix)]


@dataclasses.dataclass
class CheckReport:
    """Everything :func:`check_capture` found.

    Attributes:
        root: the capture folder.
        by_kind: kind (see ``KINDS``) -> its problems.
        frames: the frame indices whose body files were checked.
        num_frames, num_views: the capture's counts (0 when ``annots.npy`` could not be read).
        vertex_count: vertices per frame (None without readable vertices).
    """

    root: Path
    by_kind: dict[str, list[Problem]]
    frames: list[int]
    num_frames: int = 0
    num_views: int = 0
    vertex_count: int | None = None

    @property
    def problems(self) -> list[Problem]:
        return [problem for kind in KINDS for problem in self.by_kind.get(kind, [])]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def check_capture(
    capture: Capture, *, frames: list[int] | None = None, image_frames: list[int] | None = None, progress: bool = False
) -> CheckReport:
    """Read the files of a capture and collect what is wrong.

    Args:
        capture: the capture.
        frames: frames whose body files (vertices, params) and camera views are checked (default: all).
        image_frames: frames whose images and masks are decoded (default: ``frames``; the
            expensive part, so ``info`` passes its few sampled frames here).
        progress: show a progress bar over the decoded frames.
    """
    frames = list(range(capture.num_frames)) if frames is None else list(frames)
    image_frames = frames if image_frames is None else list(image_frames)
    views = list(range(capture.num_views))
    has_masks = any(capture.mask_path(frame, view) is not None for frame in image_frames[:1] for view in views)
    images, masks = check_images(capture, image_frames, views, masks=has_masks, progress=progress)
    if not has_masks:
        masks = [Problem(str(capture.root), "no masks found (mask_cihp/ or mask/)", "training needs person masks: "
                         "run `neuralbody detect`", "warning")]  # fmt: skip
    body = check_vertices(capture, frames) if (capture.root / "vertices").is_dir() else BodyCheck([], {}, None)
    params_problems = check_params(capture, frames)
    centres = dict(body.centres)
    if not centres and not params_problems and (capture.root / "params").is_dir():  # the body frame origins
        for frame in frames:
            values = capture.load_params(frame)
            if values is not None:
                centres[frame] = np.asarray(values["Th"], dtype=np.float64).reshape(3)
    return CheckReport(
        root=capture.root,
        by_kind={"images": images, "masks": masks, "params": params_problems, "vertices": body.problems,
                 "cameras": check_cameras(capture, centres, views)},  # fmt: skip
        frames=frames, num_frames=capture.num_frames, num_views=capture.num_views, vertex_count=body.count,
    )


def check_capture_folder(root: str | Path, *, progress: bool = False) -> CheckReport:
    """:func:`check_capture` of every frame of the capture in ``root``; problems reading it are reported too."""
    try:
        capture = read_capture(root)
    except (InputError, FileNotFoundError) as error:
        problems = list(error.problems) if isinstance(error, InputError) else [Problem(str(root), str(error))]
        return CheckReport(root=Path(root), by_kind={"annots": problems}, frames=[])
    return check_capture(capture, progress=progress)


def validate_frames(capture: Capture, frames: list[int], views: list[int], *, expected_count: int | None = None,
                    masks: bool = True) -> int | None:  # fmt: skip
    """Raise :class:`InputError` (every problem counted) unless the frames' bodies, masks and cameras are usable.

    Checks the vertices of ``frames`` (present, finite, (V, 3), one V, ``expected_count`` when
    given), their params (when the capture has ``params/``), that each frame shows the person
    in at least one mask of ``views`` (with ``masks``), and that no camera of ``views`` has the
    person behind it. Cheap enough to run before training or evaluation: one mask a frame when
    the first shows the person.

    Returns:
        The vertex count V.
    """
    body = check_vertices(capture, frames, expected_count=expected_count)
    problems = body.problems + check_params(capture, frames)
    if masks:
        for frame in frames:
            problems += check_frame_masks(capture, frame, views, first_person_only=True)
    problems += check_cameras(capture, body.centres, views, image_bounds=False)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise InputError.from_problems(errors, more=CHECK_HINT)
    return body.count
