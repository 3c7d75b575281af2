"""End-to-end training: the loss falls, training helps, --resume continues, checkpoints are atomic.

Uses a tiny analytic capture written here (six ellipsoids shaped like a person, textured in
the body frame, rendered by exact ray-ellipsoid intersection, 48x48 pixels), so these tests do
not depend on a body model. Marked ``slow``: each trains for a few dozen steps.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import Camera, pixel_rays
from neuralbody.data.writer import CaptureWriter
from neuralbody.geometry.rotations import axis_angle_to_matrix, look_at_rotation

PARTS = (  # centre (body frame, metres), radii
    ((0.0, 0.0, 1.15), (0.17, 0.11, 0.30)),  # torso
    ((0.0, 0.0, 1.62), (0.10, 0.10, 0.12)),  # head
    ((-0.09, 0.0, 0.45), (0.07, 0.07, 0.45)),  # legs
    ((0.09, 0.0, 0.45), (0.07, 0.07, 0.45)),
    ((-0.30, 0.0, 1.20), (0.20, 0.05, 0.05)),  # arms
    ((0.30, 0.0, 1.20), (0.20, 0.05, 0.05)),
)


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _texture(points_body: np.ndarray) -> np.ndarray:
    """Colour (N, 3) in [0, 1] of body-frame points: stripes and gradients."""
    x, y, z = points_body.T
    return np.stack([
        0.5 + 0.4 * np.sin(12 * z),
        0.5 + 0.4 * np.cos(9 * x + 3 * y),
        0.3 + 0.5 * (z / 1.8),
    ], axis=1).clip(0, 1)


def make_ellipsoid_capture(root: Path, *, frames: int = 4, views: int = 6, res: int = 48, vertices_per_part: int = 250) -> Path:
    """Write a tiny capture of six rigid ellipsoids turning and drifting, in ZJU-MoCap layout."""
    golden = math.pi * (3 - math.sqrt(5))
    k = np.arange(vertices_per_part) + 0.5
    zs = 1 - 2 * k / vertices_per_part
    unit = np.stack([np.sqrt(1 - zs**2) * np.cos(golden * k), np.sqrt(1 - zs**2) * np.sin(golden * k), zs], axis=1)
    vertices_body = np.concatenate([np.asarray(c) + unit * np.asarray(r) for c, r in PARTS])
    focal = res * 1.15
    cameras = []
    for v in range(views):
        angle = 2 * math.pi * v / views
        center = np.array([3.0 * math.cos(angle), 3.0 * math.sin(angle), 1.0])
        R = look_at_rotation(center, np.array([0.0, 0.0, 0.9]))
        K = np.array([[focal, 0, (res - 1) / 2], [0, focal, (res - 1) / 2], [0, 0, 1.0]])
        cameras.append(Camera(K=K, R=R, T=-R @ center, D=np.zeros(5), width=res, height=res, name=f"Camera_{v:02d}"))
    train_views = list(range(0, views, 2))
    meta = {
        "background": [0.0, 0.0, 0.0],
        "train_cameras": train_views,
        "test_cameras": [v for v in range(views) if v not in train_views],
        "frames": {"train": [0, frames], "novel_pose": [frames, frames]},
    }
    writer = CaptureWriter(root, cameras, meta)
    for f in range(frames):
        rh = np.array([0.0, 0.0, 0.15 * f])
        th = np.array([0.03 * f, -0.02 * f, 0.0])
        rotation = _rotation_z(rh[2])
        images, masks, depths = [], [], []
        for camera in cameras:
            rays_o, rays_d = pixel_rays(camera)
            o_body, d_body = (rays_o - th) @ rotation, rays_d @ rotation
            best = np.full(len(rays_o), np.inf)
            for c, r in PARTS:
                o = (o_body - c) / r
                d = d_body / r
                a, b, cc = (d * d).sum(1), 2 * (o * d).sum(1), (o * o).sum(1) - 1
                disc = b * b - 4 * a * cc
                t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
                best = np.minimum(best, np.where(t > 0, t, np.inf))
            hit = np.isfinite(best)
            colour = np.zeros((len(rays_o), 3))
            colour[hit] = _texture(o_body[hit] + best[hit, None] * d_body[hit])
            images.append(np.round(colour.reshape(res, res, 3) * 255).astype(np.uint8))
            masks.append(hit.reshape(res, res))
            depths.append(np.where(hit, best, 0).reshape(res, res))
        writer.add_frame(
            images=np.stack(images), masks=np.stack(masks), depths=np.stack(depths),
            params={"poses": np.zeros(3), "Rh": rh, "Th": th, "shapes": np.zeros(1)},
            vertices=vertices_body @ rotation.T + th, faces=np.zeros((1, 3), dtype=np.int64),
        )
    writer.close()
    return root


TINY_MODEL = {
    "voxel_size": 0.03, "level_channels": [8, 8, 8, 8], "stage_layers": [1, 0, 0, 0, 0], "code_dim": 8,
    "density_width": 32, "density_layers": 2, "feature_width": 32, "color_width": 32, "appearance_dim": 8,
    "occupancy_cell": 0.04, "occupancy_margin": 0.06, "texture_log2": 10,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ellipsoid_capture(tmp_path_factory) -> Path:
    return make_ellipsoid_capture(tmp_path_factory.mktemp("ellipsoids"))


def _config(data: Path, out: Path, **fields):
    from neuralbody.training.config import TrainConfig

    base = dict(
        data=str(data), out=str(out), model_options=dict(TINY_MODEL), steps=40, rays_per_step=256,
        num_samples=24, lr=5e-3, val_every=0, ckpt_every=20, log_every=1, device="cpu",
    )
    base.update(fields)
    return TrainConfig.from_preset("fast", **base)


def _render_psnr(run_dir: Path, *, frame: int, view: int, untrained: bool = False) -> float:
    from neuralbody.rendering import render_view
    from neuralbody.training import load_run

    run = load_run(run_dir, device="cpu")
    model = run.model
    if untrained:
        torch.manual_seed(0)
        from neuralbody.models import build_model

        model = build_model("neuralbody", num_vertices=model.num_vertices, num_frames=model.num_frames,
                            options=run.config.full_model_options()).eval()
    field = model.prepare_frame(frame, run.capture.load_body(frame))
    image = render_view(field, run.capture.cameras[view], settings=run.render_settings(), background=run.background)
    target = run.capture.load_image(frame, view)
    mse = float(np.mean((image.rgb.numpy() - target) ** 2))
    return 10 * math.log10(1 / mse)


@pytest.mark.slow
def test_training_lowers_loss_and_beats_untrained(ellipsoid_capture, tmp_path):
    from neuralbody.training.trainer import train

    out = tmp_path / "run"
    result = train(_config(ellipsoid_capture, out, steps=60), progress=False)
    assert result.step == 60
    rows = list(csv.DictReader((out / "log.csv").open()))
    losses = np.array([float(r["loss"]) for r in rows])
    assert losses[-10:].mean() < 0.6 * losses[:5].mean()
    assert (out / "checkpoint.pt").is_file() and (out / "config.json").is_file()
    trained = _render_psnr(out, frame=1, view=0)
    untrained = _render_psnr(out, frame=1, view=0, untrained=True)
    assert trained > untrained + 3.0, (trained, untrained)


@pytest.mark.slow
def test_resume_continues_from_saved_step(ellipsoid_capture, tmp_path):
    from neuralbody.training.checkpoint import load_checkpoint
    from neuralbody.training.trainer import Trainer

    out = tmp_path / "run"
    Trainer(_config(ellipsoid_capture, out, steps=20), progress=False).run()
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 20
    with pytest.raises(ValueError, match="--resume"):
        Trainer(_config(ellipsoid_capture, out, steps=30), progress=False)
    trainer = Trainer(_config(ellipsoid_capture, out, steps=30), resume=True, progress=False)
    assert trainer.step == 20
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    saved = load_checkpoint(out / "checkpoint.pt")["model"]
    assert all(torch.equal(before[k], saved[k]) for k in saved)
    result = trainer.run()
    assert result.step == 30
    steps = [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())]
    assert steps == sorted(steps) and steps[-1] == 30 and len(steps) == len(set(steps))


def test_resumed_run_matches_uninterrupted_run(ellipsoid_capture, tmp_path):
    """Step, optimiser field and random states are restored: 8 + 8 steps == 16 steps."""
    from neuralbody.training.trainer import Trainer

    fixed_lr = dict(ckpt_every=100, lr_final_ratio=1.0)  # the schedule depends on the planned steps
    straight = Trainer(_config(ellipsoid_capture, tmp_path / "a", steps=16, **fixed_lr), progress=False)
    straight.run()
    Trainer(_config(ellipsoid_capture, tmp_path / "b", steps=8, **fixed_lr), progress=False).run()
    resumed = Trainer(_config(ellipsoid_capture, tmp_path / "b", steps=16, **fixed_lr), resume=True, progress=False)
    resumed.run()
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-4, atol=1e-5)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from neuralbody.training import checkpoint as ckpt

    path = tmp_path / "checkpoint.pt"
    ckpt.save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ckpt.save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]


def test_runs_from_before_the_texture_still_load(ellipsoid_capture, tmp_path):
    """A checkpoint without the reference pose and texture (older runs) loads as the model it was."""
    from neuralbody.rendering import render_view
    from neuralbody.training import checkpoint as ckpt
    from neuralbody.training import load_run
    from neuralbody.training.trainer import train

    out = tmp_path / "old"
    options = {**TINY_MODEL, "texture_cells": [], "canonical_freqs": 0}
    train(_config(ellipsoid_capture, out, steps=4, model_options=options), progress=False)
    current = load_run(out, device="cpu")
    payload = ckpt.load_checkpoint(out / ckpt.CHECKPOINT_NAME)
    for key in ckpt.PRE_TEXTURE_KEYS:
        payload["model"].pop(key, None)
    payload["model_options"] = {"preset": "fast", **TINY_MODEL}  # as older runs stored them
    ckpt.save_checkpoint(out / ckpt.CHECKPOINT_NAME, payload)
    old = load_run(out, device="cpu")
    assert old.model.texture_grid is None and old.model.config.canonical_freqs == 0
    images = []
    for run in (current, old):
        field = run.model.prepare_frame(0, run.capture.load_body(0))
        with torch.no_grad():
            images.append(render_view(field, run.capture.cameras[0], settings=run.render_settings(),
                                      background=run.background).rgb)
    torch.testing.assert_close(images[0], images[1])


def test_cli_train_and_resume(ellipsoid_capture, tmp_path):
    from neuralbody.cli.main import main

    out = tmp_path / "cli_run"
    options = [f"--option={k}={v}".replace("'", '"') for k, v in TINY_MODEL.items()]
    argv = ["train", str(ellipsoid_capture), "--out", str(out), "--steps", "6", "--rays", "128", "--samples", "16",
            "--val-every", "3", "--ckpt-every", "3", "--frames", "0:2", "--views", "0,2", "--device", "cpu",
            "--no-progress", *options]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "val").iterdir()) == ["step_000003.png", "step_000006.png"]
    assert main(["train", str(ellipsoid_capture), "--out", str(out), "--steps", "8", "--resume", "--no-progress"]) == 0
    from neuralbody.training.checkpoint import load_checkpoint

    assert load_checkpoint(out / "checkpoint.pt")["step"] == 8
    from neuralbody.training.config import TrainConfig

    config = TrainConfig.from_json(out / "config.json")
    assert config.train_frames == [0, 1] and config.train_views == [0, 2]
    moved = tmp_path / "moved_run"  # a run folder moved elsewhere resumes into its new place
    out.rename(moved)
    assert main(["train", str(ellipsoid_capture), "--out", str(moved), "--steps", "9", "--resume", "--no-progress"]) == 0
    assert load_checkpoint(moved / "checkpoint.pt")["step"] == 9 and not out.exists()
    assert TrainConfig.from_json(moved / "config.json").out == str(moved)


@pytest.mark.slow
@pytest.mark.anny
def test_training_on_tiny_synthetic_capture(tiny_capture, tmp_path):
    """The real reader and generator (Anny body, lens distortion): 30 steps lower the loss."""
    from neuralbody.training.trainer import train

    out = tmp_path / "run"
    result = train(_config(tiny_capture, out, steps=30, rays_per_step=256), progress=False)
    rows = list(csv.DictReader((out / "log.csv").open()))
    losses = np.array([float(r["loss"]) for r in rows])
    assert result.step == 30
    assert losses[-5:].mean() < 0.8 * losses[:3].mean()
    from neuralbody.training import load_run
    from neuralbody.training.config import TrainConfig

    # synthetic masks are exact: no border band excluded; the reference pose is the first training frame's
    assert TrainConfig.from_json(out / "config.json").border_px == 0
    run = load_run(out, device="cpu")
    first = run.capture.load_body(run.train_frames[0])
    assert bool(run.model.has_reference)
    expected = (first.vertices.float() - first.Th.float().reshape(3)) @ axis_angle_to_matrix(first.Rh.float().reshape(3))
    torch.testing.assert_close(run.model.reference_vertices, expected, atol=1e-5, rtol=0)


def test_cli_train_rejects_negative_border_and_opacity_weight(ellipsoid_capture, tmp_path, caplog):
    from neuralbody.cli.main import main

    for flag in ("--border-px", "--acc-loss-weight", "--distortion-loss-weight"):
        out = tmp_path / flag.strip("-")
        assert main(["train", str(ellipsoid_capture), "--out", str(out), flag, "-1", "--steps", "1"]) == 1
        assert f"{flag} must be >= 0" in caplog.text
        assert not out.exists()  # nothing written


def test_distortion_loss_weight_adds_its_term_to_the_loss(ellipsoid_capture, tmp_path):
    import csv

    from neuralbody.cli.main import main
    from neuralbody.training.config import TrainConfig

    out = tmp_path / "distortion"
    assert main(["train", str(ellipsoid_capture), "--out", str(out), "--steps", "10",
                 "--distortion-loss-weight", "0.5", "--no-progress"]) == 0
    assert TrainConfig.from_json(out / "config.json").distortion_loss_weight == 0.5
    with open(out / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for row in rows:  # loss = colour + 0.1 opacity + 0.5 distortion, the last one positive
        assert float(row["loss"]) > float(row["color_mse"]) + 0.1 * float(row["acc_mse"]) + 1e-6
