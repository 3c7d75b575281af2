"""A tracked face video as a head capture (the layout of :mod:`neuralbody.head.capture`), so ``train-head`` reads it.

* **Crop.** One fixed square window for the whole video (the camera stays one camera): it
  holds the union of every frame's landmark box, grown ``margin`` times about its centre,
  lifted by ``lift`` of its side (the landmarks stop at the brow; the hair is above), and is
  resized to ``resolution`` pixels; outside the image is black. Pixel centres are on
  integers, so a pixel ``u`` of the video is ``(u - x0 + 0.5) s - 0.5`` in the capture
  (``s = resolution / side``), and the intrinsics follow: ``f' = s f``, ``c' = (c - x0 + 0.5) s - 0.5``.
* **Mask.** MediaPipe's selfie segmentation (the person) intersected with the pixels whose
  rays meet the frame's posed head box (:func:`neuralbody.head.frame.head_frame`, the box
  ``train-head`` renders in): the person outside the head's reach (shoulders) is dropped.
  The image is black outside the mask, as in the synthetic captures.
* **Cameras and parameters.** Per frame the tracked world-to-camera ``R_t, T_t`` with the
  crop's intrinsics (the rigid head motion is in the camera: :mod:`neuralbody.head.track_fit`),
  and ``params/`` with the tracked expression, the pose (jaw opening about x; other bones at
  rest) and its bone transforms. All frames are the ``train`` split (``test`` and ``strong``
  are empty: a real video has no held-out ground truth).
* ``tracking.npz`` keeps the fit in the video's own pixels: the landmarks, which frames had a
  face, the per-frame residual, the video frame numbers, focal, R, T, jaw, expression.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, ray_box_intersection
from neuralbody.data.writer import write_image, write_mask
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.head.animation import write_params_file
from neuralbody.head.capture import FORMAT, FrameParams, frame_name, rig_arrays, write_npz
from neuralbody.head.frame import head_frame
from neuralbody.head.rig import BONES, PARENTS, HeadRig
from neuralbody.data.square_window import SquareWindow, window_intrinsics
from neuralbody.head.square_crop import Crop, crop_image, square_around
from neuralbody.head.track_fit import TrackedHead, head_bone_transforms
from neuralbody.io.atomic import atomic_write_text

CAMERA = "cam00"


def face_crop(landmarks: np.ndarray, found: np.ndarray, resolution: int, *, margin: float = 1.8,
              lift: float = 0.12) -> Crop:
    """The crop of the module docstring from landmarks (N, L, 2) pixels and found (N,) bool."""
    points = np.asarray(landmarks)[np.asarray(found, bool)]
    if points.size == 0:
        raise ValueError("face_crop: no frame has a face")
    points = points.reshape(-1, 2)
    return square_around(points.min(0), points.max(0), resolution, margin=margin, lift=lift)


def crop_intrinsics(focal: float, width: int, height: int, crop: Crop) -> np.ndarray:
    """(3, 3) intrinsics in the crop of a camera with ``focal`` (pixels) and the principal point at the video's centre."""
    K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    return window_intrinsics(K, SquareWindow(crop.x0, crop.y0, crop.side), crop.resolution)


def head_reach(camera: Camera, rig: HeadRig, params: FrameParams) -> np.ndarray:
    """(H, W) bool: pixels whose rays meet the frame's posed head box (as ``train-head`` cuts its rays)."""
    frame = head_frame(rig, params)
    origins, directions = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    _, _, hit = ray_box_intersection(origins, directions, frame.box_min, frame.box_max)
    return hit.numpy().reshape(camera.height, camera.width)


def frame_params(rig: HeadRig, tracked: TrackedHead) -> list[FrameParams]:
    """Each tracked frame's parameters as the capture stores them."""
    transforms = head_bone_transforms(rig.rest_joints, tracked).float().numpy()
    pose = tracked.pose().float().numpy()
    expression = tracked.expression.float().numpy()
    return [FrameParams(expression=expression[t], pose=pose[t], bone_transforms=transforms[t])
            for t in range(expression.shape[0])]


def capture_cameras(tracked: TrackedHead, width: int, height: int, crop: Crop) -> list[Camera]:
    """The crop's camera of every tracked frame (world-to-camera, OpenCV axes, metres)."""
    K = crop_intrinsics(tracked.focal, width, height, crop)
    R = axis_angle_to_matrix(tracked.rotation).numpy()
    T = tracked.translation.numpy()
    return [Camera(K=K, R=R[t], T=T[t], D=np.zeros(5), width=crop.resolution, height=crop.resolution, name=CAMERA)
            for t in range(R.shape[0])]


def write_frame(out: Path, number: int, camera: Camera, rig: HeadRig, params: FrameParams, image: np.ndarray,
                person: np.ndarray, crop: Crop) -> None:
    """images/, mask/ and params/ of one frame (image (H, W, 3) uint8 and person (H, W) bool of the video)."""
    mask = (crop_image(person, crop) >= 0.5) & head_reach(camera, rig, params)
    rgb = crop_image(image, crop) * mask[..., None]
    stem = f"{CAMERA}/{frame_name(number)}"
    write_image(out / "images" / f"{stem}.png", np.round(rgb * 255.0).astype(np.uint8))
    write_mask(out / "mask" / f"{stem}.png", mask)
    write_npz(out / "params" / f"{frame_name(number)}.npz", expression=params.expression, pose=params.pose,
              bone_transforms=params.bone_transforms)


def write_capture_files(out: Path, rig: HeadRig, tracked: TrackedHead, cameras: list[Camera], info: dict,
                        tracking: dict[str, np.ndarray]) -> None:
    """rig.npz, cameras.npz, animation/train.npz, tracking.npz and, last, head.json (the capture is readable once it exists)."""
    frames = len(cameras)
    write_npz(out / "rig.npz", **rig_arrays(rig))
    write_npz(out / "cameras.npz", K=np.stack([c.K for c in cameras])[:, None], R=np.stack([c.R for c in cameras])[:, None],
              T=np.stack([c.T for c in cameras])[:, None])
    transforms = head_bone_transforms(rig.rest_joints, tracked).float().numpy()
    write_params_file(out / "animation" / "train.npz", tracked.expression.float().numpy(),
                      tracked.pose().float().numpy(), transforms)
    write_npz(out / "tracking.npz", **tracking)
    meta = {"format": FORMAT, "resolution": cameras[0].width, "seed": 0, "cameras": [CAMERA], "train_camera": CAMERA,
            "splits": {"train": list(range(frames)), "test": [], "strong": []},
            "views": {"train": [CAMERA], "test": [CAMERA], "strong": [CAMERA]}, "bones": list(BONES),
            "parents": list(PARENTS), "action_labels": rig.action_labels, "tracking": info}
    atomic_write_text(out / "head.json", json.dumps(meta, indent=1))
