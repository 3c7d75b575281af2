"""``synth-head``: synthetic monocular head videos with ground truth (layout: :mod:`neuralbody.head.capture`).

1. the face model (:func:`neuralbody.head.rig.build_head_rig`) and its seeded albedo
   (:mod:`neuralbody.head.appearance`);
2. three parameter sequences (:mod:`neuralbody.head.sequences`): ``train`` (the video),
   ``test`` (held-out frames with training-like expressions), ``strong`` (held-out stronger
   expressions and unseen combinations);
3. each frame posed by the rig and rendered (:mod:`neuralbody.head.mesh_render`): train frames
   by the moving camera only; held-out frames by the moving camera (its path continued) and
   by the fixed evaluation cameras (:mod:`neuralbody.head.camera_path`);
4. each split's parameters also as one animation file, ``OUT/animation/<split>.npz``
   (:mod:`neuralbody.head.animation`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from neuralbody.data.writer import write_image, write_mask
from neuralbody.head.animation import write_params_file
from neuralbody.head.appearance import vertex_albedo
from neuralbody.head.camera_path import evaluation_cameras, moving_camera
from neuralbody.head.capture import FORMAT, SPLITS, frame_name, rig_arrays, write_npz
from neuralbody.head.mesh_render import render_mesh
from neuralbody.head.rig import BONES, PARENTS, HeadRig, build_head_rig, pose_head
from neuralbody.head.sequences import make_sequence
from neuralbody.io.atomic import atomic_write_text
from neuralbody.io.progress import progress_bar

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HeadSynthConfig:
    """What ``synth-head`` renders.

    Attributes:
        train_frames, test_frames, strong_frames: frames of each split.
        resolution: square image side, pixels.
        seed: seeds the sequences and the skin.
        supersample: s x s rays per pixel.
    """

    train_frames: int = 48
    test_frames: int = 6
    strong_frames: int = 6
    resolution: int = 128
    seed: int = 0
    supersample: int = 2

    def __post_init__(self) -> None:
        if min(self.train_frames, self.test_frames, self.strong_frames) < 1 or self.supersample < 1:
            raise ValueError(f"HeadSynthConfig: every split needs >= 1 frame and supersample >= 1, got {self}")
        if not 16 <= self.resolution <= 2048:
            raise ValueError(f"HeadSynthConfig: resolution must be in [16, 2048] pixels, got {self.resolution}")


def _meta(config: HeadSynthConfig, rig: HeadRig, splits: dict[str, list[int]], cameras: list[str]) -> dict:
    return {
        "format": FORMAT, "resolution": config.resolution, "seed": config.seed, "supersample": config.supersample,
        "cameras": cameras, "train_camera": cameras[0], "splits": splits,
        "views": {"train": cameras[:1], "test": cameras, "strong": cameras},
        "bones": list(BONES), "parents": list(PARENTS), "action_labels": rig.action_labels,
    }


def generate_head_capture(out: str | Path, config: HeadSynthConfig, *, rig: HeadRig | None = None,
                          progress: bool = True) -> Path:
    """Render the capture into ``out`` (created; existing files are overwritten) and return it."""
    out = Path(out)
    rig = rig if rig is not None else build_head_rig()
    albedo = vertex_albedo(rig, config.seed)
    counts = {"train": config.train_frames, "test": config.test_frames, "strong": config.strong_frames}
    eval_cams = evaluation_cameras(config.resolution)
    names = ["cam00"] + [c.name for c in eval_cams]
    splits, start = {}, 0
    for split in SPLITS:
        splits[split] = list(range(start, start + counts[split]))
        start += counts[split]
    K = np.zeros((start, len(names), 3, 3))
    R, T = np.zeros_like(K), np.zeros((start, len(names), 3))
    out.mkdir(parents=True, exist_ok=True)
    write_npz(out / "rig.npz", **rig_arrays(rig))
    bar = progress_bar(total=start, desc="synth-head", unit="frame", enabled=progress)
    for split in SPLITS:
        sequence = make_sequence(split, rig.action_labels, counts[split], config.seed)
        expression = torch.tensor(sequence.expression, dtype=torch.float32)
        vertices, transforms = pose_head(rig, expression, torch.tensor(sequence.pose, dtype=torch.float32))
        write_params_file(out / "animation" / f"{split}.npz", sequence.expression, sequence.pose, transforms.numpy())
        for i, frame in enumerate(splits[split]):
            cameras = [moving_camera(frame, config.resolution)] + eval_cams
            for c, camera in enumerate(cameras):
                K[frame, c], R[frame, c], T[frame, c] = camera.K, camera.R, camera.T
            write_npz(out / "params" / f"{frame_name(frame)}.npz", expression=sequence.expression[i].astype(np.float32),
                      pose=sequence.pose[i].astype(np.float32), bone_transforms=transforms[i].numpy())
            for camera in cameras[: 1 if split == "train" else len(cameras)]:
                view = render_mesh(camera, vertices[i], rig.faces, albedo, supersample=config.supersample)
                stem = f"{camera.name}/{frame_name(frame)}"
                write_image(out / "images" / f"{stem}.png", np.round(view.image * 255.0).astype(np.uint8))
                write_mask(out / "mask" / f"{stem}.png", view.mask)
                (out / "depth" / camera.name).mkdir(parents=True, exist_ok=True)
                np.save(out / "depth" / f"{stem}.npy", view.depth)
            bar.update(1)
    bar.close()
    write_npz(out / "cameras.npz", K=K, R=R, T=T)
    atomic_write_text(out / "head.json", json.dumps(_meta(config, rig, splits, names), indent=1))
    log.info("head capture: %d train, %d test, %d strong frames in %s", *counts.values(), out)
    return out
