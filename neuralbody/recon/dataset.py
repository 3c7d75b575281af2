"""Training and validation batches from a corpus (:mod:`neuralbody.data.corpus`), read from disk per batch.

An example is one frame of one person seen by ``k`` of its cameras: the crops
(:func:`neuralbody.recon.views.prepare_views`) around the person's box, the box's centre (the
depth reference), and ``points`` of the frame's occupancy samples with their labels. The box is the
clothed surface's bounding box; for training it is jittered (scaled about its centre by
``1 + U(-box_scale, box_scale)``, shifted by ``N(0, box_shift^2)`` metres per axis) so the network
does not rely on a box it will only estimate at test time (:mod:`neuralbody.recon.locate`). Each
batch is drawn from its own generator, seeded by ``(seed, rank, step)``, so a resumed run draws
what an uninterrupted one would. With :class:`~neuralbody.recon.body_prior.BodyMeshes`, each
example also carries its points' features against the frame's true body (``vertices/``), perturbed
by the example's generator (none for validation).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.corpus import Corpus, CorpusSample
from neuralbody.recon.body_prior import BodyMeshes
from neuralbody.recon.model import stack_views
from neuralbody.recon.views import ViewInputs, prepare_views


@dataclasses.dataclass(frozen=True)
class ExampleSettings:
    """How examples are made.

    Attributes:
        size: crop side, pixels.
        points: occupancy samples per example.
        box_scale: relative jitter of the box's size (training only).
        box_shift: standard deviation of the box's shift, metres (training only).
        padding: crop window growth (:func:`neuralbody.recon.views.crop_window`).
    """

    size: int = 128
    points: int = 2048
    box_scale: float = 0.05
    box_shift: float = 0.03
    padding: float = 0.08


@dataclasses.dataclass
class ReconBatch:
    """A batch of B examples with V views each.

    Attributes:
        views: crops and cameras, leading dims (B, V).
        centre: (B, 3) depth reference, world metres.
        points: (B, N, 3) world metres.
        labels: (B, N) float32, 1 inside.
        body: (B, N, K) body-prior features of the points, or None without a body prior.
    """

    views: ViewInputs
    centre: torch.Tensor
    points: torch.Tensor
    labels: torch.Tensor
    body: torch.Tensor | None = None


def surface_box(corpus: Corpus, sample: CorpusSample) -> tuple[np.ndarray, np.ndarray]:
    """(3,) and (3,): the clothed surface's bounding box, world metres."""
    vertices, _ = corpus.load_gt_mesh(sample)
    return vertices.min(axis=0), vertices.max(axis=0)


def jitter_box(box_min: np.ndarray, box_max: np.ndarray, rng: np.random.Generator, settings: ExampleSettings):
    """The box scaled about its centre and shifted at random (see the module docstring)."""
    centre = (box_min + box_max) / 2 + rng.normal(0.0, settings.box_shift, 3)
    half = (box_max - box_min) / 2 * (1.0 + rng.uniform(-settings.box_scale, settings.box_scale))
    return centre - half, centre + half


def load_example(
    corpus: Corpus,
    sample: CorpusSample,
    view_ids: list[int],
    settings: ExampleSettings,
    rng: np.random.Generator | None,
    body: BodyMeshes | None = None,
) -> tuple[ViewInputs, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Crops (V, ...), centre (3,), points (N, 3), labels (N,) and body features (N, K) or None of
    one frame; ``rng`` None: no jitter and ``settings.points`` samples evenly spread over the
    frame's (validation)."""
    capture = corpus.capture(sample.subject)
    box_min, box_max = surface_box(corpus, sample)
    if rng is not None:
        box_min, box_max = jitter_box(box_min, box_max, rng, settings)
    images = [capture.load_image(sample.frame, v) for v in view_ids]
    masks = [capture.load_mask(sample.frame, v) for v in view_ids]
    views = prepare_views(images, masks, [capture.cameras[v] for v in view_ids], box_min, box_max,
                          size=settings.size, padding=settings.padding)  # fmt: skip
    occupancy = corpus.load_occupancy(sample)
    count = len(occupancy.points)
    if rng is None:  # spread evenly over the file: every kind of sample in proportion
        chosen = np.unique(np.linspace(0, count - 1, min(settings.points, count)).round().astype(np.int64))
    else:
        chosen = rng.choice(count, size=settings.points, replace=settings.points > count)
    points = occupancy.points[chosen]
    key = (sample.subject, sample.frame)
    features = None if body is None else body.features(key, capture.load_vertices(sample.frame), points, rng)
    return (
        views,
        torch.tensor((box_min + box_max) / 2, dtype=torch.float32),
        torch.from_numpy(points),
        torch.from_numpy(occupancy.inside[chosen].astype(np.float32)),
        features,
    )


def spread_views(num_cameras: int, count: int, start: int = 0) -> list[int]:
    """``count`` cameras of a ring of ``num_cameras`` as evenly spread as possible, from ``start``."""
    if not 1 <= count <= num_cameras:
        raise ValueError(f"cannot pick {count} views out of {num_cameras} cameras")
    return sorted({(start + int(round(k * num_cameras / count))) % num_cameras for k in range(count)})


def make_batch(
    corpus: Corpus,
    samples: list[CorpusSample],
    view_count: int,
    settings: ExampleSettings,
    rng: np.random.Generator | None,
    body: BodyMeshes | None = None,
) -> ReconBatch:
    """A batch of ``samples``, each seen by ``view_count`` cameras: random ones (training) or evenly
    spread from camera 0 (``rng`` None, validation); with ``body``, the body-prior features too."""
    examples = []
    for sample in samples:
        num_cameras = corpus.capture(sample.subject).num_views
        if rng is None:
            view_ids = spread_views(num_cameras, min(view_count, num_cameras))
        else:
            view_ids = sorted(rng.choice(num_cameras, size=min(view_count, num_cameras), replace=False).tolist())
        examples.append(load_example(corpus, sample, view_ids, settings, rng, body))
    views, centres, points, labels, features = zip(*examples)
    stacked = None if body is None else torch.stack(features)
    return ReconBatch(stack_views(list(views)), torch.stack(centres), torch.stack(points), torch.stack(labels), stacked)
