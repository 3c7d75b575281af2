"""Fine-tuning a generalisable KeypointNeRF on one person: ``neuralbody finetune-keypoint``.

The run starts from a ``train-keypoint`` run's checkpoint (its model configuration, weights and
keypoint regressor: the architecture and the encoding are the run's, nothing else is accepted)
and goes on training on one capture in ZJU-MoCap layout with the same loss and loop as
:class:`~neuralbody.keypoint_nerf.train.KeypointTrainer`: each step draws a frame of ``frames``,
``num_inputs`` of the capture's training ``views`` as inputs and another of them as the target
(:func:`~neuralbody.keypoint_nerf.dataset.capture_example`); the capture's other cameras are never
read, so they stay held out. The keypoints and the box come from the capture's posed body
vertices (``vertices/``) through the run's regressor, as ``render-keypoint`` gets them.

The run stops at the first of ``steps`` and ``minutes`` (of training, as ``neuralbody train``
counts them); the learning rate decays from ``lr`` to ``lr * lr_final_ratio`` over
``max(step / steps, elapsed / minutes)``, as Neural Body's
(:class:`~neuralbody.training.run_trainer.RunTrainer`). The run folder is a train-keypoint run
folder (``config.json`` holds this :class:`FinetuneConfig`, ``checkpoint.pt``, ``log.csv``):
``render-keypoint`` renders with it, ``--resume`` carries it on. One process (no torchrun: a
wall-clock budget would stop ranks at different steps).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from neuralbody.data.capture import Capture, read_capture
from neuralbody.io.errors import InputError
from neuralbody.keypoint_nerf.dataset import TrainingExample, capture_example
from neuralbody.keypoint_nerf.keypoints import JointRegressor
from neuralbody.keypoint_nerf.train import CHECKPOINT_NAME, KeypointTrainConfig, KeypointTrainer, load_trained
from neuralbody.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

FINETUNE_LR = 5e-4  # half the generalisable run's starting rate (not tuned)


@dataclasses.dataclass(kw_only=True)
class FinetuneConfig(KeypointTrainConfig):
    """A fine-tuning run (``config.json``): :class:`KeypointTrainConfig`'s fields, with ``corpus`` the
    capture folder and ``encoding`` / ``model_options`` the initial run's whole model configuration, and:

    Attributes:
        init: the train-keypoint run folder it starts from.
        views: the capture's training cameras (inputs and targets); at least ``num_inputs + 1``.
        frames: the capture's training frames.
    """

    init: str
    views: list[int]
    frames: list[int]

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(set(self.views)) != len(self.views) or len(self.views) < self.num_inputs + 1:
            raise ValueError(f"--views {self.views}: need {self.num_inputs + 1} distinct cameras or more "
                             f"({self.num_inputs} inputs and a target); pass more views or fewer --inputs")  # fmt: skip
        if not self.frames:
            raise ValueError("--frames: no training frames")


def init_model_fields(init_run: str) -> dict:
    """``encoding`` and ``model_options`` reproducing the initial run's model exactly (from its checkpoint)."""
    payload = load_checkpoint(Path(init_run) / CHECKPOINT_NAME, device="cpu", required=("model_config",))
    model_config = dict(payload["model_config"])
    return {"encoding": model_config["encoding"], "model_options": model_config}


def check_capture(capture: Capture, views: list[int], frames: list[int], regressor: JointRegressor) -> None:
    """InputError (one line) unless every frame has the body vertices the regressor takes and every view exists."""
    bad_views = [v for v in views if not 0 <= v < capture.num_views]
    if bad_views:
        raise InputError(f"--views {views}", f"the capture has cameras 0..{capture.num_views - 1}", "pick the training cameras among them")
    bad_frames = [f for f in frames if not 0 <= f < capture.num_frames]
    if bad_frames:
        raise InputError(f"--frames {bad_frames[:3]}", f"the capture has frames 0..{capture.num_frames - 1}", "pick frames among them")
    for frame in frames:
        path = capture.vertices_path(frame)
        if not path.is_file():
            raise InputError(path, "no posed body vertices for this training frame (the keypoints and box come from them)",
                             "fit the capture first (neuralbody fit) or pass --frames with fitted frames")  # fmt: skip
    count = capture.load_vertices(frames[0]).shape[0]
    if count != regressor.num_vertices:
        raise InputError(capture.vertices_path(frames[0]), f"{count} body vertices, but the run's keypoint regressor takes "
                         f"{regressor.num_vertices} (Anny's)", "fit the capture with the Anny body model")  # fmt: skip


class FinetuneTrainer(KeypointTrainer):
    """:class:`KeypointTrainer` on one capture, starting from a generalisable run (module docstring)."""

    label = "finetune-keypoint"

    config: FinetuneConfig

    def open_data(self) -> None:
        self.capture = read_capture(self.config.corpus)
        self.samples = list(self.config.frames)

    def start(self) -> None:
        initial = load_trained(self.config.init, device=self.device)
        if initial.model.config != self.model.config:
            raise InputError(self.config.init, "its model differs from the fine-tune configuration's",
                             "start a new --out from the run (the architecture is taken from it)")  # fmt: skip
        check_capture(self.capture, self.config.views, self.config.frames, initial.regressor)
        self.model.load_state_dict(initial.model.state_dict())
        self.regressor = initial.regressor
        log.info("fine-tuning %s (step %d) on %s: views %s, %d frames", self.config.init, initial.step, self.config.corpus,
                 self.config.views, len(self.config.frames))  # fmt: skip

    def batch_for(self, step: int) -> list[TrainingExample]:
        """The step's examples (a pure function of seed and step): frames of ``frames``, cameras of ``views``."""
        rng = np.random.default_rng([self.config.seed, self.context.rank, step])
        picks = rng.choice(len(self.samples), size=self.config.batch, replace=len(self.samples) < self.config.batch)
        return [capture_example(self.capture, self.samples[i], list(self.config.views), self.regressor, rng,
                                num_inputs=self.config.num_inputs, rays=self.config.rays,
                                size=self.model.config.input_size) for i in picks]  # fmt: skip
