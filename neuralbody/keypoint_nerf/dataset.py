"""Training examples from a corpus (:mod:`neuralbody.data.corpus`), read from disk per step.

An example is one frame of one training person: ``num_inputs`` random cameras as input views
(:func:`neuralbody.keypoint_nerf.inputs.load_frame_views`) and one other camera as the target,
whose ``rays`` pixels (colour and mask) are drawn from the projection of the sampling box: half of them on the
person's mask (where the colour is), half anywhere in the box's projection (where the background
must stay empty). The generator is seeded by ``(seed, rank, step)`` by the caller, so a resumed run
draws what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.cameras import pixel_rays, project_box_mask
from neuralbody.data.capture import Capture
from neuralbody.data.corpus import Corpus, CorpusSample
from neuralbody.keypoint_nerf.inputs import FrameViews, load_frame_views
from neuralbody.keypoint_nerf.keypoints import JointRegressor


@dataclasses.dataclass
class TrainingExample:
    """Inputs and target rays of one frame.

    Attributes:
        frame: the input views, keypoints and box.
        rays_o, rays_d: (R, 3) float32 target rays (origins metres, unit directions), world.
        colours: (R, 3) float32 target colours in [0, 1].
        masks: (R,) float32, 1 on the person (the target of the rendered opacity).
    """

    frame: FrameViews
    rays_o: torch.Tensor
    rays_d: torch.Tensor
    colours: torch.Tensor
    masks: torch.Tensor


def draw_pixels(mask: np.ndarray, box: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 2) integer pixels (u, v): half on ``mask & box`` (when any), the rest in ``box`` ((H, W) bool each)."""
    if not box.any():
        raise ValueError("draw_pixels: the box does not project into the target camera")
    on_person = np.argwhere(mask & box)
    anywhere = np.argwhere(box)
    half = count // 2 if len(on_person) else 0
    picks = [on_person[rng.integers(0, len(on_person), half)]] if half else []
    picks.append(anywhere[rng.integers(0, len(anywhere), count - half)])
    return np.concatenate(picks)[:, ::-1].copy()


def training_example(corpus: Corpus, sample: CorpusSample, regressor: JointRegressor, rng: np.random.Generator, *,
                     num_inputs: int, rays: int, size: int) -> TrainingExample:  # fmt: skip
    """The example of the module docstring, any of the person's cameras an input or the target."""
    capture = corpus.capture(sample.subject)
    if capture.num_views < num_inputs + 1:
        raise ValueError(f"{corpus.subject_root(sample.subject)}: {capture.num_views} cameras, need {num_inputs} inputs and a target")
    return capture_example(capture, sample.frame, list(range(capture.num_views)), regressor, rng, num_inputs=num_inputs,
                           rays=rays, size=size)  # fmt: skip


def capture_example(capture: Capture, frame: int, cameras: list[int], regressor: JointRegressor, rng: np.random.Generator,
                    *, num_inputs: int, rays: int, size: int) -> TrainingExample:  # fmt: skip
    """One example of ``frame``: ``num_inputs`` of ``cameras`` drawn as inputs, another of them the target
    (a fine-tune on one capture passes its training cameras: the others are never read)."""
    if len(cameras) < num_inputs + 1:
        raise ValueError(f"cameras {cameras}: need {num_inputs} inputs and a target among them")
    order = rng.permutation(len(cameras))
    inputs, target = sorted(cameras[i] for i in order[:num_inputs].tolist()), int(cameras[int(order[num_inputs])])
    frame_views = load_frame_views(capture, frame, inputs, regressor, size=size)
    camera = capture.cameras[target]
    box = project_box_mask(camera, frame_views.box_min.numpy().astype(np.float64), frame_views.box_max.numpy().astype(np.float64))
    mask = capture.load_mask(frame, target)
    pixels = draw_pixels(mask, box, rays, rng)
    rays_o, rays_d = pixel_rays(camera, pixels.astype(np.float64))
    image = capture.load_image(frame, target)
    as_tensor = lambda array: torch.tensor(np.asarray(array), dtype=torch.float32)  # noqa: E731
    return TrainingExample(frame_views, as_tensor(rays_o), as_tensor(rays_d), as_tensor(image[pixels[:, 1], pixels[:, 0]]),
                           as_tensor(mask[pixels[:, 1], pixels[:, 0]]))
