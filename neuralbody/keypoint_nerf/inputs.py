"""What the renderer is conditioned on, read from a capture in ZJU-MoCap layout: the input views
cropped around the person, the keypoints and the box; and a whole image rendered from them.

Per frame, from the posed body vertices (``vertices/``, or the corpus's): the keypoints by the
run's joint regressor (:mod:`neuralbody.keypoint_nerf.keypoints`) and the box where rays are
sampled, the vertices' box grown by :data:`SAMPLING_PADDING` on every side (clothes, hair and a
fitted body's error stand off the skin). Each input view is cropped square around that box
(:func:`neuralbody.recon.views.prepare_views`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, project_box_mask
from neuralbody.data.capture import Capture
from neuralbody.geometry.box import body_box
from neuralbody.keypoint_nerf.keypoints import JointRegressor
from neuralbody.keypoint_nerf.model import KeypointNeRF
from neuralbody.keypoint_nerf.render import ConditionedInputs, render_rays_front_to_back
from neuralbody.recon.model import stack_views
from neuralbody.recon.views import ViewInputs, prepare_views

SAMPLING_PADDING = 0.12  # metres around the body vertices' box


@dataclasses.dataclass
class FrameViews:
    """Input views of one frame before encoding.

    Attributes:
        views: (V, ...) crops and cameras (:class:`ViewInputs`).
        keypoints: (K, 3) float32 world metres.
        box_min, box_max: (3,) float32 sampling box, world metres.
    """

    views: ViewInputs
    keypoints: torch.Tensor
    box_min: torch.Tensor
    box_max: torch.Tensor


def load_frame_views(capture: Capture, frame: int, view_ids: list[int], regressor: JointRegressor, *,
                     size: int) -> FrameViews:  # fmt: skip
    """Crops (size x size) of ``view_ids`` at ``frame``, the keypoints and the sampling box."""
    bad = [v for v in view_ids if not 0 <= v < capture.num_views]
    if bad or not view_ids or len(set(view_ids)) != len(view_ids):
        raise ValueError(f"input views {view_ids}: need distinct camera indices in 0..{capture.num_views - 1}")
    vertices = capture.load_vertices(frame)
    if vertices.shape[0] != regressor.num_vertices:
        raise ValueError(f"{capture.vertices_path(frame)}: {vertices.shape[0]} body vertices, but the run's keypoint "
                         f"regressor takes {regressor.num_vertices} (Anny's); fit the capture with the Anny body model")  # fmt: skip
    box_min, box_max = body_box(vertices.astype(np.float64), SAMPLING_PADDING)
    images = [capture.load_image(frame, v) for v in view_ids]
    masks = [capture.load_mask(frame, v) for v in view_ids]
    views = prepare_views(images, masks, [capture.cameras[v] for v in view_ids], box_min, box_max, size=size)
    as_tensor = lambda array: torch.tensor(np.asarray(array), dtype=torch.float32)  # noqa: E731
    return FrameViews(views, as_tensor(regressor(vertices)), as_tensor(box_min), as_tensor(box_max))


def condition(model: KeypointNeRF, frame: FrameViews, device: torch.device | str = "cpu") -> ConditionedInputs:
    """Encode the frame's views (a batch of one) for :func:`~neuralbody.keypoint_nerf.render.render_rays`."""
    views = stack_views([frame.views]).to(device)
    return ConditionedInputs(views=views, maps=model.encode(views.images), keypoints=frame.keypoints[None].to(device),
                             box_min=frame.box_min.to(device), box_max=frame.box_max.to(device))  # fmt: skip


@torch.no_grad()
def render_image(model: KeypointNeRF, inputs: ConditionedInputs, camera: Camera, *, num_samples: int = 48,
                 chunk: int = 8192, background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:  # fmt: skip
    """(H, W, 3) float32 image of ``camera``: the pixels whose rays cross the box are rendered (front to back,
    opaque rays stopped: :func:`~neuralbody.keypoint_nerf.render.render_rays_front_to_back`), the rest background."""
    box_min, box_max = inputs.box_min.cpu().numpy().astype(np.float64), inputs.box_max.cpu().numpy().astype(np.float64)
    covered = project_box_mask(camera, box_min, box_max)
    rows, cols = np.nonzero(covered)
    image = np.tile(np.asarray(background, dtype=np.float32), (camera.height, camera.width, 1))
    if len(rows) == 0:
        return image
    device = inputs.keypoints.device
    rays_o, rays_d = pixel_rays(camera, np.stack([cols, rows], axis=1).astype(np.float64))
    rays_o = torch.tensor(rays_o, dtype=torch.float32, device=device)
    rays_d = torch.tensor(rays_d, dtype=torch.float32, device=device)
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    model.eval()
    colours = [render_rays_front_to_back(model, inputs, rays_o[i : i + chunk], rays_d[i : i + chunk],
                                         num_samples=num_samples, background=bg).rgb
               for i in range(0, len(rays_o), chunk)]  # fmt: skip
    image[rows, cols] = torch.cat(colours).clamp(0, 1).cpu().numpy()
    return image
