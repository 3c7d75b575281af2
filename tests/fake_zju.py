"""Tiny fake captures in ZJU-MoCap layout, written with plain numpy / PIL (independent of our writer).

Used by test_capture_reader.py and test_cli_info.py. The values written are returned so
tests can compare what the reader gives back with what is on disk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 40, 32


@dataclasses.dataclass
class FakeCapture:
    root: Path
    K: list[np.ndarray]
    R: list[np.ndarray]
    T_mm: list[np.ndarray]
    D: list[np.ndarray]
    image_relpaths: list[list[str]]  # [frame][view]
    images: dict  # (frame, view) -> (H, W, 3) uint8 as written
    masks: dict  # (frame, view) -> (H, W) bool as written
    vertices: dict  # file number -> (V, 3) float32
    params: dict  # file number -> dict


def look_at_rotation(center: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera rotation of a camera at ``center`` looking at ``target`` (OpenCV axes, world z up)."""
    forward = target - center
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _image(rng: np.random.Generator, frame: int, view: int) -> np.ndarray:
    """Smooth content (survives JPEG within a few levels)."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.array([40 + 30 * view, 60 + 50 * frame, 120], dtype=np.float64)
    image = base + np.stack([u * 2.0, v * 2.0, (u + v) * 1.0], axis=-1)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _mask(frame: int, view: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[6 + frame : 24, 10 + view : 30] = True
    return mask


def make_capture(
    root: Path,
    *,
    num_views: int = 6,
    num_frames: int = 3,
    style: str = "standard",
    with_params: bool = True,
    with_vertices: bool = True,
    num_vertices: int = 50,
    seed: int = 0,
) -> FakeCapture:
    """Write a fake capture.

    style 'standard': ``Camera_B{k}/{f:06d}.jpg``, masks ``mask_cihp/.../{f:06d}.png``, body files
    numbered from 0, T (3, 1) millimetres, D (5, 1).
    style '313': ``Camera (k)/CoreView_313_Camera_(k)_{f+1:04d}_2019-08-23_16-08-50.592.jpg``,
    masks under ``mask/``, body files numbered from 1, T (3,), D (1, 5).
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    offset = 1 if style == "313" else 0
    K, R, T_mm, D = [], [], [], []
    for view in range(num_views):
        angle = 2 * np.pi * view / num_views
        center = np.array([3.0 * np.cos(angle), 3.0 * np.sin(angle), 1.2 + 0.1 * view])
        rotation = look_at_rotation(center, np.array([0.0, 0.0, 1.0]))
        translation_mm = -rotation @ center * 1000.0
        K.append(np.array([[45.0 + view, 0.0, 19.5], [0.0, 46.0 + view, 15.5], [0.0, 0.0, 1.0]]))
        R.append(rotation)
        distortion = np.array([-0.05 + 0.01 * view, 0.01, 1e-4, -1e-4, 0.0])
        if style == "313":
            T_mm.append(translation_mm.reshape(3))
            D.append(distortion.reshape(1, 5))
        else:
            T_mm.append(translation_mm.reshape(3, 1))
            D.append(distortion.reshape(5, 1))
    relpaths, images, masks = [], {}, {}
    for frame in range(num_frames):
        row = []
        for view in range(num_views):
            if style == "313":
                folder = f"Camera ({view + 1})"
                rel = f"{folder}/CoreView_313_Camera_({view + 1})_{frame + 1:04d}_2019-08-23_16-08-50.592.jpg"
                mask_rel = "mask/" + rel[: -len(".jpg")] + ".png"
            else:
                rel = f"Camera_B{view + 1}/{frame:06d}.jpg"
                mask_rel = "mask_cihp/" + rel[: -len(".jpg")] + ".png"
            row.append(rel)
            image, mask = _image(rng, frame, view), _mask(frame, view)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / rel, quality=95)
            (root / mask_rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / mask_rel)
            images[frame, view] = image
            masks[frame, view] = mask
        relpaths.append(row)
    vertices, params = {}, {}
    for frame in range(num_frames):
        number = frame + offset
        verts = (rng.normal(size=(num_vertices, 3)) * [0.15, 0.1, 0.4] + [0.0, 0.05 * frame, 1.0]).astype(np.float32)
        prm = {
            "poses": rng.normal(size=(1, 72)).astype(np.float32),
            "Rh": rng.normal(size=(1, 3)).astype(np.float32),
            "Th": np.array([[0.0, 0.05 * frame, 1.0]], dtype=np.float32),
            "shapes": rng.normal(size=(1, 10)).astype(np.float32),
        }
        if with_vertices:
            (root / "vertices").mkdir(exist_ok=True)
            np.save(root / "vertices" / f"{number}.npy", verts)
            vertices[number] = verts
        if with_params:
            (root / "params").mkdir(exist_ok=True)
            np.save(root / "params" / f"{number}.npy", prm, allow_pickle=True)
            params[number] = prm
    annots = {
        "cams": {"K": K, "R": R, "T": T_mm, "D": D},
        "ims": [{"ims": np.array(row), "kpts2d": None} for row in relpaths],
    }
    np.save(root / "annots.npy", annots, allow_pickle=True)
    return FakeCapture(root, K, R, T_mm, D, relpaths, images, masks, vertices, params)


def rewrite_annots(root: Path, edit) -> None:
    """Load annots.npy, apply ``edit(annots)`` in place, save it back."""
    annots = np.load(root / "annots.npy", allow_pickle=True).item()
    edit(annots)
    np.save(root / "annots.npy", annots, allow_pickle=True)
