"""The network's view of a person: a square crop around them in each image, resized, with its camera.

Every image enters the encoder as the same ``size`` x ``size`` window around the person's
projected box (so a person fills the crop alike in any capture, at any resolution): the
window is the bounding square of the box's 8 projected corners, grown by ``padding`` of its side
on each side, with integer corners so that cropping is exact; pixels outside the image are
zeros. Cropping by ``x0, y0`` and resizing by ``s = size / side`` maps pixel centres as
``u' = (u - x0 + 0.5) s - 0.5``, so the cropped camera has ``fx' = s fx, fy' = s fy, skew' = s skew,
cx' = (cx - x0 + 0.5) s - 0.5, cy' = (cy - y0 + 0.5) s - 0.5`` and the same lens distortion
(applied in normalised coordinates, before ``K``). Input channels: RGB with the background
blacked out by the mask, then the mask (4 channels, values in [0, 1]).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from neuralbody.data.cameras import Camera, box_corners, project_points
from neuralbody.data.square_window import SquareWindow, window_intrinsics, window_pixels


CropWindow = SquareWindow  # a square window of an image (:mod:`neuralbody.data.square_window`)


@dataclasses.dataclass
class ViewInputs:
    """Cropped views of one person (V views), ready for the network.

    Attributes:
        images: (V, 4, S, S) float32: RGB (background black) and mask, in [0, 1].
        K: (V, 3, 3) float32 intrinsics of the crops, pixels.
        R: (V, 3, 3) float32 world-to-camera rotations.
        T: (V, 3) float32 world-to-camera translations, metres.
        D: (V, 5) float32 OpenCV distortion.
    """

    images: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor
    T: torch.Tensor
    D: torch.Tensor

    def to(self, device) -> "ViewInputs":
        return ViewInputs(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def crop_window(camera: Camera, box_min: np.ndarray, box_max: np.ndarray, padding: float = 0.08) -> CropWindow:
    """The square window around the projection of a box (world, metres) in ``camera``'s image."""
    uv, depth = project_points(camera, box_corners(box_min, box_max))
    if np.any(depth <= 0):
        raise ValueError(f"camera {camera.name!r}: the person's box is (partly) behind the camera")
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    side = float(max(hi - lo)) * (1.0 + 2.0 * padding)
    centre = (lo + hi) / 2.0 + 0.5  # pixel edges: the centre of pixel u spans [u, u + 1)
    side_px = max(4, int(math.ceil(side)))
    return CropWindow(x0=int(math.floor(centre[0] - side_px / 2)), y0=int(math.floor(centre[1] - side_px / 2)), side=side_px)


def crop_camera(camera: Camera, window: CropWindow, size: int) -> Camera:
    """The camera of the ``window`` crop resized to ``size`` x ``size`` (see the module docstring)."""
    return dataclasses.replace(camera, K=window_intrinsics(camera.K, window, size).astype(camera.K.dtype), width=size,
                               height=size)  # fmt: skip


def crop_image(image: np.ndarray, window: CropWindow, size: int) -> np.ndarray:
    """(size, size, C) float32: the ``window`` of ``image`` (H, W, C) (zeros beyond it), area-resized."""
    if image.ndim != 3:
        raise ValueError(f"crop_image: image must be (H, W, C), got {image.shape}")
    canvas = window_pixels(image, window)
    tensor = torch.from_numpy(canvas).permute(2, 0, 1)[None]
    if window.side != size:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=window.side > size)  # fmt: skip
    return tensor[0].permute(1, 2, 0).numpy()


def prepare_views(
    images: list[np.ndarray],
    masks: list[np.ndarray],
    cameras: list[Camera],
    box_min: np.ndarray,
    box_max: np.ndarray,
    *,
    size: int,
    padding: float = 0.08,
) -> ViewInputs:
    """Crop every view around the box (world, metres) and stack them.

    Args:
        images: V images (H, W, 3) float32 in [0, 1].
        masks: V person masks (H, W) bool.
        cameras: the V cameras.
        box_min, box_max: (3,) the person's box, world, metres.
        size: crop side S, pixels.
        padding: window growth, a fraction of its side on each side.
    """
    if not (len(images) == len(masks) == len(cameras)) or not cameras:
        raise ValueError(f"prepare_views: need one image and mask per camera, got {len(images)}, {len(masks)}, {len(cameras)}")
    crops, intrinsics = [], []
    for image, mask, camera in zip(images, masks, cameras):
        if image.shape[:2] != mask.shape or image.shape[:2] != (camera.height, camera.width):
            raise ValueError(f"prepare_views: camera {camera.name!r} is {camera.width}x{camera.height} but its image "
                             f"is {image.shape[:2]} and mask {mask.shape}")  # fmt: skip
        window = crop_window(camera, box_min, box_max, padding)
        mask_f = mask.astype(np.float32)[..., None]
        crops.append(crop_image(np.concatenate([image * mask_f, mask_f], axis=2), window, size))
        intrinsics.append(crop_camera(camera, window, size).K)
    as_tensor = lambda arrays: torch.tensor(np.stack(arrays), dtype=torch.float32)  # noqa: E731
    return ViewInputs(
        images=as_tensor(crops).permute(0, 3, 1, 2).contiguous(),
        K=as_tensor(intrinsics),
        R=as_tensor([c.R for c in cameras]),
        T=as_tensor([c.T for c in cameras]),
        D=as_tensor([c.D for c in cameras]),
    )
