"""Rendering a capture's frame from chosen input views with a trained KeypointNeRF, and scoring it
as Neural Body's runs are scored (:func:`neuralbody.evaluation.image_metrics.box_mask_metrics`
under a named protocol, ``zju`` by default: PSNR inside the projection of the posed vertices'
box padded 5 cm along world z, SSIM on its bounding rectangle), so the figures compare with
``neuralbody eval``'s."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from neuralbody.data.capture import Capture
from neuralbody.evaluation.image_metrics import DEFAULT_PROTOCOL, box_mask_metrics, get_protocol
from neuralbody.keypoint_nerf.inputs import condition, load_frame_views, render_image
from neuralbody.keypoint_nerf.train import TrainedRun


@dataclasses.dataclass
class ViewScore:
    """One rendered view: the image (H, W, 3) float32 in [0, 1], its metrics (dB, [0, 1]), and the wall-clock
    and CPU seconds of loading, encoding and rendering it (the CPU time of this process: on a shared machine
    the wall clock also counts the time other jobs held the core)."""

    frame: int
    camera: int
    inputs: tuple[int, ...]
    image: np.ndarray
    psnr_box: float
    ssim_box: float
    seconds: float
    cpu_seconds: float


def render_and_score(run: TrainedRun, capture: Capture, frame: int, inputs: list[int], camera: int, *,
                     num_samples: int = 48, protocol: str = DEFAULT_PROTOCOL) -> ViewScore:  # fmt: skip
    """Render ``camera`` at ``frame`` from the ``inputs`` cameras (no training on the capture) and score
    it against the capture's image of that camera (the box from the frame's posed vertices)."""
    if not 0 <= frame < capture.num_frames:
        raise ValueError(f"--frame {frame}: the capture has frames 0..{capture.num_frames - 1}")
    if not 0 <= camera < capture.num_views:
        raise ValueError(f"--camera {camera}: the capture has cameras 0..{capture.num_views - 1}")
    device = next(run.model.parameters()).device
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.no_grad():
        conditioned = condition(run.model, load_frame_views(capture, frame, inputs, run.regressor,
                                                            size=run.model.config.input_size), device)  # fmt: skip
        image = render_image(run.model, conditioned, capture.cameras[camera], num_samples=num_samples)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    chosen = get_protocol(protocol)
    box_min, box_max = chosen.box(capture.load_vertices(frame).astype(np.float64))
    metrics = box_mask_metrics(image, capture.load_image(frame, camera), capture.cameras[camera], box_min, box_max,
                               ssim_window=chosen.ssim_window)  # fmt: skip
    return ViewScore(frame, camera, tuple(inputs), image, float(metrics["psnr_box"]), float(metrics["ssim_box"]), seconds,
                     cpu_seconds)
