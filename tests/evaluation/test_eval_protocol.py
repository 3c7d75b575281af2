"""The evaluation protocol: split selection, and metrics that tell an oracle from a wrong model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fake_zju import make_capture
from neuralbody.data.cameras import project_points
from neuralbody.evaluation.protocol import (
    EvalOptions,
    EvalResult,
    evaluate_run,
    format_table,
    held_out_views,
    select_frames,
    split_frames,
    write_eval_json,
)
from neuralbody.models.base import RadianceFieldModel
from toy_fields import DelegateField

META = {
    "train_cameras": [0, 2, 4],
    "test_cameras": [1, 3, 5],
    "frames": {"train": [0, 6], "novel_pose": [6, 10]},
}


class OracleModel(RadianceFieldModel):
    """Opaque everywhere in a generous box; colour = the ground-truth pixel of the camera the ray comes from.

    The camera is the one whose centre lies on the line through the sample along its
    direction; the pixel is where the sample projects in that camera (lens distortion
    included), so volume rendering reproduces the ground-truth image inside the box.
    """

    def __init__(self, capture) -> None:
        super().__init__()
        self.capture = capture
        self.images = {}

    def prepare_frame(self, frame_index, body):
        vertices = body.vertices
        return DelegateField(self, frame_index, vertices.min(0).values - 0.5, vertices.max(0).values + 0.5)

    def field_query(self, field, points_world, viewdirs):
        points = points_world.double().cpu().numpy()
        dirs = viewdirs.double().cpu().numpy()
        offsets = [np.linalg.norm(np.cross(points - cam.center, dirs), axis=1) for cam in self.capture.cameras]
        views = np.argmin(np.stack(offsets), axis=0)
        rgb = np.zeros_like(points)
        for view in np.unique(views):
            key = (field.frame_index, int(view))
            if key not in self.images:
                self.images[key] = self.capture.load_image(*key)
            camera, image = self.capture.cameras[view], self.images[key]
            select = views == view
            uv, _ = project_points(camera, points[select])
            cols = np.clip(np.round(uv[:, 0]).astype(int), 0, camera.width - 1)
            rows = np.clip(np.round(uv[:, 1]).astype(int), 0, camera.height - 1)
            rgb[select] = image[rows, cols]
        sigma = torch.full((points.shape[0],), 1e4, dtype=points_world.dtype, device=points_world.device)
        return sigma, torch.as_tensor(rgb, dtype=points_world.dtype, device=points_world.device)


class ConstantModel(OracleModel):
    def field_query(self, field, points_world, viewdirs):
        sigma, _ = super().field_query(field, points_world, viewdirs)
        return sigma, torch.full_like(points_world, 0.5)


@pytest.fixture(scope="module")
def fake_capture(tmp_path_factory):
    from neuralbody.data.capture import read_capture

    root = tmp_path_factory.mktemp("fake_eval")
    fake = make_capture(root, num_views=6, num_frames=10)
    for number, vertices in fake.vertices.items():  # a wider body, so the box spans > 11 px in every view
        centre = vertices.mean(axis=0)
        np.save(root / "vertices" / f"{number}.npy", ((vertices - centre) * [3.0, 4.0, 1.0] + centre).astype(np.float32))
    (root / "neuralbody.json").write_text(json.dumps(META))
    return read_capture(root)


def _run(model, capture, *, train_frames=range(6), train_views=(0, 2, 4)):
    from neuralbody.training.checkpoint import LoadedRun
    from neuralbody.training.config import TrainConfig

    config = TrainConfig(data=str(capture.root), out="unused", num_samples=16)
    return LoadedRun(
        model=model, capture=capture, config=config, train_frames=list(train_frames),
        train_views=list(train_views), step=0, device=torch.device("cpu"),
    )


def test_select_frames_caps_the_stride_for_small_captures():
    assert select_frames(list(range(300)), 30) == list(range(0, 300, 30))
    assert select_frames(list(range(8)), 30) == [0, 2, 4, 6]
    assert select_frames(list(range(3)), 30) == [0, 1, 2]
    assert select_frames(list(range(300)), 30, max_frames=4) == [0, 90, 180, 270]
    assert select_frames([5, 3, 5, 9], 1) == [3, 5, 9]
    with pytest.raises(ValueError, match="stride"):
        select_frames([0, 1], 0)


def test_split_frames_and_views_follow_the_meta():
    assert split_frames("novel_view", meta=META, num_frames=10, train_frames=list(range(6))) == list(range(6))
    assert split_frames("novel_pose", meta=META, num_frames=10, train_frames=list(range(6))) == [6, 7, 8, 9]
    # no meta: every frame after the last training frame
    assert split_frames("novel_pose", meta={}, num_frames=10, train_frames=[0, 2, 4]) == [5, 6, 7, 8, 9]
    # meta range clipped to the capture
    assert split_frames("novel_pose", meta=META, num_frames=8, train_frames=list(range(6))) == [6, 7]
    assert held_out_views(META, 6, [0, 2, 4]) == [1, 3, 5]
    assert held_out_views(META, 6, [0, 1, 2]) == [3, 5]
    assert held_out_views({}, 5, [0, 3]) == [1, 2, 4]
    with pytest.raises(ValueError, match="split"):
        split_frames("test", meta={}, num_frames=3, train_frames=[0])


def test_oracle_scores_high_and_constant_scores_low(fake_capture, tmp_path):
    oracle = evaluate_run(
        _run(OracleModel(fake_capture), fake_capture), split="novel_pose",
        options=EvalOptions(frame_stride=30, max_frames=2, out_dir=tmp_path / "oracle", progress=False),
    )
    assert oracle.frames == [6, 9] and oracle.views == [1, 3, 5]
    assert len(oracle.rows) == 6
    assert {(r.frame, r.view) for r in oracle.rows} == {(f, v) for f in (6, 9) for v in (1, 3, 5)}
    assert oracle.means["psnr_box"] > 40 and oracle.means["ssim_box"] > 0.99
    constant = evaluate_run(
        _run(ConstantModel(fake_capture), fake_capture), split="novel_view",
        options=EvalOptions(frame_stride=3, max_frames=2, views=[1], progress=False),
    )
    assert constant.frames == [0, 5] and constant.views == [1]
    assert constant.means["psnr_box"] < 15 and constant.means["psnr_full"] < 15
    assert constant.means["psnr_box"] == pytest.approx(np.mean([r.psnr_box for r in constant.rows]))
    # strips: render | ground truth | error, three images wide
    from PIL import Image

    strip = np.asarray(Image.open(oracle.rows[0].image))
    assert strip.shape == (32, 3 * 40, 3)
    truth = strip[:, 40:80]  # render | ground truth | error
    gt = np.round(fake_capture.load_image(6, 1) * 255)
    assert np.abs(truth.astype(int) - gt).max() <= 1
    # json + table
    path = write_eval_json([oracle, constant], tmp_path / "metrics.json", extra={"run": "x"})
    document = json.loads(path.read_text())
    assert document["run"] == "x" and document["novel_pose"]["images"] == 6
    assert document["novel_view"]["means"]["psnr_box"] == pytest.approx(constant.means["psnr_box"], abs=1e-4)
    table = format_table([oracle, constant])
    assert "novel_pose" in table and f"{constant.means['psnr_box']:.2f}" in table


def test_no_novel_pose_frames_is_explained(fake_capture):
    with pytest.raises(ValueError, match="no frames"):
        evaluate_run(_run(ConstantModel(fake_capture), fake_capture, train_frames=range(10)), split="novel_pose",
                     options=EvalOptions(progress=False))
    with pytest.raises(ValueError, match="held-out"):
        evaluate_run(
            _run(ConstantModel(fake_capture), fake_capture, train_views=range(6)), split="novel_view",
            options=EvalOptions(progress=False),
        )


def test_frame_nerf_run_evaluates_end_to_end(fake_capture):
    from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig

    torch.manual_seed(0)
    model = FrameNerf(6, FrameNerfConfig(width=16, depth=2, latent_dim=4, color_width=8))
    result = evaluate_run(_run(model, fake_capture), split="novel_pose", options=EvalOptions(max_frames=1, views=[3], progress=False))
    assert isinstance(result, EvalResult) and len(result.rows) == 1
    row = result.rows[0]
    assert np.isfinite(row.psnr_box) and 0 <= row.ssim_full <= 1


def _hand_made_run(capture, run_dir):
    """A run folder as `neuralbody train` writes it, holding an untrained tiny FrameNerf (no training needed)."""
    from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig
    from neuralbody.training.checkpoint import save_checkpoint
    from neuralbody.training.config import TrainConfig

    options = {"width": 16, "depth": 2, "latent_dim": 4, "color_width": 8}
    config = TrainConfig(
        data=str(capture.root), out=str(run_dir), model_kind="frame_nerf", model_options=options,
        train_frames=list(range(6)), train_views=[0, 2, 4], num_samples=8, device="cpu",
    )
    run_dir.mkdir(parents=True)
    config.to_json(run_dir / "config.json")
    torch.manual_seed(0)
    model = FrameNerf(6, FrameNerfConfig(**options))
    save_checkpoint(run_dir / "checkpoint.pt", {
        "model": model.state_dict(), "step": 7, "model_kind": "frame_nerf", "model_options": options,
        "num_vertices": None, "num_frames": 6,
    })
    return run_dir


def test_eval_and_render_commands(fake_capture, tmp_path, capsys):
    from neuralbody.cli.main import main

    run_dir = _hand_made_run(fake_capture, tmp_path / "run")
    assert main(["eval", str(run_dir), "--max-frames", "1", "--views", "1", "--no-progress", "--no-lpips"]) == 0
    printed = capsys.readouterr().out
    assert "novel_view" in printed and "novel_pose" in printed and "PSNR box" in printed
    document = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert document["step"] == 7 and document["novel_pose"]["frames"] == [6] and document["novel_view"]["views"] == [1]
    assert (run_dir / "eval" / "novel_pose" / "frame0006_view01.png").is_file()

    out = tmp_path / "renders"
    assert main(["render", str(run_dir), "--frame", "8", "--view", "3", "--orbit", "3", "--out", str(out), "--res-scale", "0.5"]) == 0
    from PIL import Image

    assert np.asarray(Image.open(out / "frame0008_view03.png")).shape == (16, 20, 3)
    import imageio.v2 as imageio

    assert len(imageio.mimread(out / "frame0008_orbit3.gif")) == 3
    assert main(["render", str(run_dir), "--frame", "0:2", "--all-views", "--out", str(out)]) == 0
    assert len(list(out.glob("frame000[01]_view*.png"))) == 12
    assert len(imageio.mimread(out / "view05_frames0000-0001.gif")) == 2
    assert main(["render", str(run_dir), "--frame", "99"]) == 1  # out of range: a clear error, exit 1


def test_protocol_is_named_in_results_json_and_table(fake_capture, tmp_path):
    """Default zju; padded-box on request; the box PSNR differs, the whole-image PSNR does not."""
    run = _run(ConstantModel(fake_capture), fake_capture)
    zju = evaluate_run(run, split="novel_view", options=EvalOptions(max_frames=1, views=[1], progress=False))
    padded = evaluate_run(run, split="novel_view",
                          options=EvalOptions(max_frames=1, views=[1], progress=False, protocol="padded-box"))
    assert zju.protocol == "zju" and padded.protocol == "padded-box"
    assert zju.means["psnr_full"] == pytest.approx(padded.means["psnr_full"], abs=1e-9)
    assert abs(zju.means["psnr_box"] - padded.means["psnr_box"]) > 1e-3
    document = json.loads(write_eval_json([zju], tmp_path / "zju.json").read_text())
    assert document["protocol"] == "zju" and "along world z only" in document["protocol_description"]
    assert "protocol zju:" in format_table([zju]) and "protocol padded-box:" in format_table([padded])
    with pytest.raises(ValueError, match="different protocols"):
        format_table([zju, padded])
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        evaluate_run(run, split="novel_view", options=EvalOptions(progress=False, protocol="zju-mocap"))


def test_truth_capture_replaces_the_ground_truth_and_must_match(fake_capture, tmp_path):
    import shutil

    from PIL import Image

    from neuralbody.data.capture import read_capture
    from neuralbody.io.errors import InputError

    same = tmp_path / "same"
    shutil.copytree(fake_capture.root, same)
    inverted = tmp_path / "inverted"
    shutil.copytree(fake_capture.root, inverted)
    for path in inverted.glob("Camera_*/*.jpg"):  # every image's colours turned over
        pixels = np.asarray(Image.open(path).convert("RGB"))
        Image.fromarray(255 - pixels).save(path, quality=100)
    options = dict(frame_stride=30, max_frames=2, views=[1, 3], progress=False)
    run = _run(OracleModel(fake_capture), fake_capture)
    own = evaluate_run(run, split="novel_pose", options=EvalOptions(**options))
    copy = evaluate_run(run, split="novel_pose", options=EvalOptions(**options, truth=read_capture(same)))
    turned = evaluate_run(run, split="novel_pose", options=EvalOptions(**options, truth=read_capture(inverted)))
    assert copy.means["psnr_box"] == pytest.approx(own.means["psnr_box"], abs=1e-6) and own.means["psnr_box"] > 40
    assert turned.means["psnr_box"] < 15  # the oracle renders the run's images, scored against their negatives
    fewer = tmp_path / "fewer"
    make_capture(fewer, num_views=4, num_frames=10)
    with pytest.raises(InputError, match="4 cameras"):
        evaluate_run(run, split="novel_pose", options=EvalOptions(**options, truth=read_capture(fewer)))
