"""Neural Body Fitting as the initial guess of the multi-view optimisation (``neuralbody fit --init nbf``).

Per frame and view (world z up, metres; cameras world-to-camera, OpenCV axes):

1. the person's box is the bounding box of the view's mask (views without a person are left
   out); a square crop around it (:func:`~neuralbody.fitting.nbf_data.crop_camera`, framed as in
   training) is resampled from the image through the camera model, lens distortion included;
2. the network predicts the bones' rotations and the body-to-camera orientation ``G_c``; in the
   world the body's orientation is ``R_c^T G_c``;
3. views are combined by the chordal L2 mean of rotations, ``mean(R_1..R_k) = U V^T`` from the
   SVD ``U S V^T`` of ``sum_i R_i`` (sign-corrected to a rotation): per bone, and for the global
   orientation in the world.

The result, bone axis-angles (n, 3) in the fitter's bone order and ``Rh`` (3,), starts the
optimisation; ``Th`` then comes from the triangulated torso keypoints with that rotation held
(:meth:`~neuralbody.fitting.optimize.SequenceFitter.initial_global` with ``Rh`` given).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, project_points
from neuralbody.fitting.nbf_data import CROP_FACTOR, NBF_BONES, crop_camera
from neuralbody.fitting.nbf_network import NBFNetwork
from neuralbody.fitting.nbf_train import images_to_input
from neuralbody.geometry.rotations import matrix_to_axis_angle

log = logging.getLogger(__name__)


def mask_box(mask: np.ndarray, min_pixels: int = 20) -> np.ndarray | None:
    """[u0, v0, u1, v1] pixel box (edges, u0 = left edge of the first column) of a (H, W) mask, or None if
    it has fewer than ``min_pixels`` pixels."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask_box: mask must be (H, W), got {mask.shape}")
    rows, cols = np.nonzero(mask)
    if rows.size < min_pixels:
        return None
    return np.array([cols.min() - 0.5, rows.min() - 0.5, cols.max() + 0.5, rows.max() + 0.5])


def crop_image(image: np.ndarray, camera: Camera, crop: Camera) -> np.ndarray:
    """(h, w, 3) uint8 image seen by ``crop`` (same centre as ``camera``), bilinearly resampled from
    ``image`` (H, W, 3) of ``camera`` (uint8, or float in [0, 1] as ``Capture.load_image`` gives); outside
    the image: black."""
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.floating):
        image = image * 255.0
    if image.ndim != 3 or image.shape[:2] != (camera.height, camera.width) or image.shape[2] != 3:
        raise ValueError(f"crop_image: image must be ({camera.height}, {camera.width}, 3), got {image.shape}")
    origins, directions = pixel_rays(crop)
    uv, depth = project_points(camera, origins + directions)
    grid = torch.tensor(np.stack([2.0 * uv[:, 0] / (camera.width - 1) - 1.0, 2.0 * uv[:, 1] / (camera.height - 1) - 1.0], 1),
                        dtype=torch.float32).reshape(1, crop.height, crop.width, 2)  # fmt: skip
    source = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    out = torch.nn.functional.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = out[0].permute(1, 2, 0).numpy()
    out[(depth <= 0).reshape(crop.height, crop.width)] = 0.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def mean_rotation(rotations: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) chordal L2 mean of rotations (..., k, 3, 3) over the k axis (SVD projection of the sum)."""
    if rotations.ndim < 3 or rotations.shape[-2:] != (3, 3):
        raise ValueError(f"mean_rotation: rotations must be (..., k, 3, 3), got {tuple(rotations.shape)}")
    U, _, Vh = torch.linalg.svd(rotations.sum(-3))
    sign = torch.sign(torch.det(U @ Vh))
    D = torch.diag_embed(torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], -1))
    return U @ D @ Vh


@torch.no_grad()
def predict_views(model: NBFNetwork, crops: np.ndarray, cameras: list[Camera]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-view predictions: bone rotations (k, n, 3, 3) and world body orientations (k, 3, 3).

    crops: (k, h, w, 3) uint8 network inputs of the k views seen by ``cameras``.
    """
    if len(crops) != len(cameras):
        raise ValueError(f"predict_views: {len(crops)} crops for {len(cameras)} cameras")
    output = model.eval()(images_to_input(crops))
    R = torch.tensor(np.stack([c.R for c in cameras]), dtype=output.global_rotation.dtype)
    return output.bone_rotations, R.transpose(1, 2) @ output.global_rotation


def combine_views(bone_rotations: torch.Tensor, world_orientations: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Bone axis-angles (n, 3) and ``Rh`` (3,) radians from k views' predictions (k, n, 3, 3), (k, 3, 3)."""
    if bone_rotations.ndim != 4 or world_orientations.shape != (bone_rotations.shape[0], 3, 3):
        raise ValueError(
            f"combine_views: expected (k, n, 3, 3) and (k, 3, 3), got {tuple(bone_rotations.shape)}, "
            f"{tuple(world_orientations.shape)}"
        )
    bones = mean_rotation(bone_rotations.double().transpose(0, 1))  # (n, 3, 3)
    orientation = mean_rotation(world_orientations.double())
    return matrix_to_axis_angle(bones).float().numpy(), matrix_to_axis_angle(orientation).float().numpy()


def make_initial_guess(capture, model: NBFNetwork, input_kind: str, bones: tuple[str, ...]):
    """``guess(frame) -> (bone axis-angles (n, 3), Rh (3,))`` or None (no view shows a person) for the fitter.

    Crops come from the capture's images and masks; ``bones`` is the fitter's bone list, which must
    be the network's (:data:`NBF_BONES`).
    """
    if input_kind != "rgb":
        raise ValueError(
            f"--init nbf needs weights trained on RGB input; these were trained on {input_kind!r} and this "
            "package has no part segmenter for real images (train with input_kind='rgb')"
        )
    if tuple(bones) != tuple(NBF_BONES):
        raise ValueError(f"--init nbf: the fitter optimises bones {bones}, the network predicts {NBF_BONES}")
    resolution = model.resolution
    cache = {}

    def guess(frame: int):
        if frame not in cache:
            cache[frame] = predict_frame(frame)
        return cache[frame]

    def predict_frame(frame: int):
        crops, cameras = [], []
        for view, camera in enumerate(capture.cameras):
            try:
                box = mask_box(capture.load_mask(frame, view))
            except (OSError, ValueError) as error:
                log.warning("frame %d view %d: no mask for the NBF crop (%s)", frame, view, error)
                continue
            if box is None:
                continue
            crop = crop_camera(camera, box, resolution, CROP_FACTOR)
            crops.append(crop_image(capture.load_image(frame, view), camera, crop))
            cameras.append(crop)
        if not crops:
            log.warning("frame %d: no view shows a person; no NBF guess", frame)
            return None
        return combine_views(*predict_views(model, np.stack(crops), cameras))

    return guess
