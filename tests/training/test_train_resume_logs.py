"""Resuming after a kill: logs hold each step once, stale checkpoint temporaries go, the checkpoint is weights-only."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from fake_zju import make_capture
from neuralbody.training.trainer import LOG_FIELDS, truncate_log

META = {"train_cameras": [0, 2], "test_cameras": [1, 3], "frames": {"train": [0, 4], "novel_pose": [4, 6]}}
TINY = {"voxel_size": 0.03, "level_channels": [8, 8, 8, 8], "stage_layers": [1, 0, 0, 0, 0], "code_dim": 8,
        "density_width": 32, "density_layers": 2, "feature_width": 32, "color_width": 32, "appearance_dim": 8,
        "occupancy_cell": 0.04, "occupancy_margin": 0.06, "texture_log2": 10}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(data, out, steps, **fields):
    from neuralbody.training.config import TrainConfig

    values = dict(model_options=dict(TINY), rays_per_step=64, num_samples=8, val_every=2, ckpt_every=4, log_every=1,
                  device="cpu")  # fmt: skip
    return TrainConfig.from_preset("fast", data=str(data), out=str(out), steps=steps, **{**values, **fields})


def _steps(path):
    with open(path, newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_truncate_log_keeps_rows_up_to_the_step_and_drops_torn_ones(tmp_path):
    path = tmp_path / "log.csv"
    rows = [",".join(str(s) for s in [step, 1.0, "1e-3", 0.5, 0.4, 4.0, 0.1, 100]) for step in range(1, 7)]
    path.write_text(",".join(LOG_FIELDS) + "\n" + "\n".join(rows) + "\n7,2.0,1e-3\n")  # a torn last line
    assert truncate_log(path, LOG_FIELDS, 4) == 3
    assert _steps(path) == [1, 2, 3, 4]
    assert path.read_text().splitlines()[1] == rows[0]
    assert truncate_log(path, LOG_FIELDS, 4) == 0 and truncate_log(tmp_path / "none.csv", LOG_FIELDS, 4) == 0


def test_resume_after_a_kill_logs_each_step_once(tmp_path):
    from neuralbody.training.trainer import Trainer

    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    (fake.root / "neuralbody.json").write_text(json.dumps(META))
    out = tmp_path / "run"
    Trainer(_config(fake.root, out, steps=4), progress=False).run()
    # as if the run had gone on to step 6 and been killed mid checkpoint write: logs ahead, a temporary left
    log_rows = (out / "log.csv").read_text().splitlines()
    with open(out / "log.csv", "a") as handle:
        handle.write("\n".join(line.replace("4,", f"{step},", 1) for step in (5, 6) for line in log_rows[-1:]) + "\n")
    with open(out / "val.csv", "a") as handle:
        handle.write("6,1.0,1,1,10.0,9.0\n")
    stale = out / "checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"partial")
    assert _steps(out / "log.csv")[-3:] == [4, 5, 6]
    trainer = Trainer(_config(fake.root, out, steps=8), resume=True, progress=False)
    assert trainer.step == 4 and not stale.exists()
    assert _steps(out / "log.csv") == [1, 2, 3, 4] and _steps(out / "val.csv") == [2, 4]
    trainer.run()
    assert _steps(out / "log.csv") == list(range(1, 9))
    assert _steps(out / "val.csv") == [2, 4, 6, 8]
    payload = torch.load(out / "checkpoint.pt", weights_only=True)  # plain values and tensors only
    assert payload["step"] == 8 and isinstance(payload["numpy_rng"], dict) and isinstance(payload["python_rng"], tuple)


def test_resume_continues_the_random_streams(tmp_path):
    """4 + 4 steps equal 8 straight steps: model, optimiser and random states survive the weights-only round trip."""
    from neuralbody.training.trainer import Trainer

    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    (fake.root / "neuralbody.json").write_text(json.dumps(META))
    fixed = {"lr_final_ratio": 1.0, "val_every": 0}  # the schedule depends on the planned steps
    straight = Trainer(_config(fake.root, tmp_path / "a", 8, **fixed), progress=False)
    straight.run()
    Trainer(_config(fake.root, tmp_path / "b", 4, **fixed), progress=False).run()
    resumed = Trainer(_config(fake.root, tmp_path / "b", 8, **fixed), resume=True, progress=False)
    resumed.run()
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    assert np.array_equal(straight.rng.integers(1 << 30, size=4), resumed.rng.integers(1 << 30, size=4))
