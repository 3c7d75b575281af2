"""Training steps decrease the loss; checkpoints round-trip and resume; the CLI refuses bad input."""

import json

import numpy as np
import pytest
import torch
from head_fixtures import tiny_rig

from neuralbody.cli.main import main
from neuralbody.head.avatar import AvatarSettings, make_avatar
from neuralbody.head.capture import read_head_capture
from neuralbody.head.raymarch import render_rays
from neuralbody.head.synth import HeadSynthConfig, generate_head_capture
from neuralbody.head.training import TrainSettings, load_run, load_training_frames, make_optimiser, train_head

SMALL = AvatarSettings(voxel=0.02, deform_voxel=0.04, prior_points=64)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    config = HeadSynthConfig(train_frames=2, test_frames=1, strong_frames=1, resolution=16, supersample=1)
    root = generate_head_capture(tmp_path_factory.mktemp("head") / "cap", config, rig=tiny_rig(), progress=False)
    return read_head_capture(root)


@pytest.mark.parametrize("model", ["imavatar", "nerf-expr"])
def test_training_steps_decrease_the_loss(capture, model):
    torch.manual_seed(0)
    frame = load_training_frames(capture)[0]
    avatar = make_avatar(model, capture.rig, SMALL)
    optimiser = make_optimiser(avatar, TrainSettings(model=model, lr=0.05, mlp_lr=0.01))
    rows = torch.arange(0, frame.rgb.shape[0], 2)

    def loss():
        out = render_rays(avatar, frame.frame, frame.rays_o[rows], frame.rays_d[rows], frame.forward, samples=8)
        return (out.rgb - frame.rgb[rows]).square().mean() + 0.1 * (out.opacity - frame.mask[rows]).square().mean()

    with torch.no_grad():
        first = float(loss())
    for _ in range(15):
        value = loss()
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    with torch.no_grad():
        assert float(loss()) < 0.7 * first


def test_checkpoint_round_trip_and_resume(capture, tmp_path):
    run = tmp_path / "run"
    settings = TrainSettings(model="imavatar", steps=2, rays=16, samples=4, checkpoint_every=1, prior_warmup=2)
    train_head(capture, run, settings, avatar_settings=SMALL, progress=False)
    avatar, rig, saved, checkpoint = load_run(run)
    assert checkpoint["step"] == 2 and saved == settings
    torch.testing.assert_close(avatar.canonical, torch.load(run / "checkpoint.pt")["model"]["canonical"])
    np.testing.assert_allclose(rig.weights.numpy(), capture.rig.weights.numpy())
    train_head(capture, run, TrainSettings(steps=3), resume=True, progress=False)
    assert load_run(run)[3]["step"] == 3
    assert [row["step"] for row in json.loads((run / "log.json").read_text())] == [1, 2, 3]
    out = tmp_path / "anim"
    assert main(["animate-head", str(run), "--params", str(capture.root / "animation" / "strong.npz"), "--out", str(out),
                 "--res", "16", "--no-progress"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png"] and (out / "animation.gif").is_file()


def test_cli_refuses_bad_input(capture, tmp_path, caplog):
    assert main(["train-head", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert "head.json" in caplog.text
    assert main(["train-head", str(capture.root), "--out", str(tmp_path / "r"), "--resume"]) == 1
    assert "--resume" in caplog.text
    assert main(["animate-head", str(tmp_path), "--params", "x.npz", "--out", str(tmp_path / "a")]) == 1
    assert "config.json" in caplog.text
    assert main(["synth-head", str(tmp_path / "s"), "--res", "4"]) == 1
    assert "resolution" in caplog.text



def test_imavatar_starts_from_the_face_model(capture, tmp_path):
    run = tmp_path / "run"
    settings = TrainSettings(model="imavatar", steps=1, rays=16, samples=4, prior_warmup=0, mesh_density=200.0,
                             surface_prior=True)
    train_head(capture, run, settings, avatar_settings=SMALL, progress=False)
    density = load_run(run)[0].canonical[..., 0].detach()
    assert float(density.max()) > 0.5 and float(density.min()) < -5.0  # dense inside the rest mesh, clear outside
    with pytest.raises(ValueError, match="mesh_density"):
        TrainSettings(mesh_density=-1.0)
