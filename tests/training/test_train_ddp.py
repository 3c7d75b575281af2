"""Data-parallel training on 2 CPU processes (gloo): ranks stay identical, rank 0 writes, resume works.

Launches ``python -m torch.distributed.run --standalone --nproc_per_node 2`` as a subprocess
on a tiny capture (a few steps each).
"""

from __future__ import annotations

import csv
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

from test_train_e2e import TINY_MODEL, make_ellipsoid_capture
from torchrun_launch import launch_two_ranks

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")

WORKER = textwrap.dedent('''
    import sys
    from pathlib import Path

    import torch

    from neuralbody.training.config import TrainConfig
    from neuralbody.training.distributed import average_gradients, init_distributed, shutdown_distributed
    from neuralbody.training.trainer import Trainer

    torch.set_num_threads(1)
    context = init_distributed("cpu")
    probe = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    probe[0].grad = torch.full((3,), float(context.rank + 1))
    probe[1].grad = torch.ones(2, 2) * 4.0 if context.rank == 0 else None  # unused on rank 1
    average_gradients(probe, context)
    probe_grads = [p.grad.clone() for p in probe]
    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    trainer = Trainer(TrainConfig.from_json(config_path), progress=False, distributed=context)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    first = trainer.run()
    config = TrainConfig.from_json(config_path)
    config.steps += 2
    resumed = Trainer(config, resume=True, progress=False, distributed=context)
    start_step = resumed.step
    start_state = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    resumed.run()
    torch.save({
        "initial": initial, "start_step": start_step,
        "start_state": start_state, "final": resumed.model.state_dict(), "first_loss": first.last_loss,
        "step": resumed.step, "probe_grads": probe_grads, "world_size": context.world_size,
    }, out / f"rank{context.rank}.pt")
    shutdown_distributed()
''')


def _launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return launch_two_ranks(args, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory) -> Path:
    return make_ellipsoid_capture(tmp_path_factory.mktemp("ddp_cap"), frames=3, views=4, res=32)


@pytest.mark.slow
def test_two_ranks_hold_identical_weights_and_resume_together(capture_dir, tmp_path):
    from neuralbody.training.checkpoint import load_checkpoint
    from neuralbody.training.config import TrainConfig

    run = tmp_path / "run"
    config = TrainConfig.from_preset(
        "fast", data=str(capture_dir), out=str(run), model_options=dict(TINY_MODEL), steps=3, rays_per_step=64,
        num_samples=8, val_every=3, ckpt_every=100, log_every=1, device="cpu",
    )
    config_path = tmp_path / "config.json"
    config.to_json(config_path)
    (tmp_path / "worker.py").write_text(WORKER)
    _launch([str(tmp_path / "worker.py"), str(config_path), str(tmp_path)], cwd=tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    for rank in ranks:  # mean over ranks; a missing gradient counts as zero
        assert torch.equal(rank["probe_grads"][0], torch.full((3,), 1.5))
        assert torch.equal(rank["probe_grads"][1], torch.full((2, 2), 2.0))
    assert ranks[0]["step"] == ranks[1]["step"] == 5
    assert ranks[0]["start_step"] == ranks[1]["start_step"] == 3
    saved = load_checkpoint(run / "checkpoint.pt")
    assert saved["step"] == 5 and len(saved["rank_random_states"]) == 2
    for key, value in ranks[0]["final"].items():
        assert torch.equal(ranks[1]["final"][key], value), key  # gradients averaged, buffers from rank 0
        assert torch.equal(ranks[1]["start_state"][key], ranks[0]["start_state"][key]), key  # same checkpoint
        assert torch.equal(saved["model"][key], value), key
    changed = [k for k, v in ranks[0]["final"].items() if v.is_floating_point() and not torch.equal(v, ranks[0]["initial"][k])]
    assert len(changed) > len(ranks[0]["final"]) // 2
    assert ranks[0]["first_loss"] != ranks[1]["first_loss"]  # different rays per rank
    steps = [int(r["step"]) for r in csv.DictReader((run / "log.csv").open())]
    assert steps == [1, 2, 3, 4, 5]  # rank 0 alone logs
    assert sorted(p.name for p in (run / "val").iterdir()) == ["step_000003.png"]


@pytest.mark.slow
def test_cli_under_torchrun(capture_dir, tmp_path):
    from neuralbody.training.checkpoint import load_checkpoint

    run = tmp_path / "cli_run"
    options = [f"--option={k}={v}".replace("'", '"') for k, v in TINY_MODEL.items()]
    result = _launch(["-m", "neuralbody.cli.main", "train", str(capture_dir), "--out", str(run), "--steps", "2",
                      "--rays", "64", "--samples", "8", "--val-every", "0", "--device", "cpu", "--no-progress",
                      "--threads", "1", *options], cwd=tmp_path)
    assert result.stdout.count("trained 2 steps") == 1  # rank 0 alone reports
    payload = load_checkpoint(run / "checkpoint.pt")
    assert payload["step"] == 2 and payload["world_size"] == 2
