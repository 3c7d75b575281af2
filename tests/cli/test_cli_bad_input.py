"""Bad input to `train`, `eval`, `render` and `info`: one line naming the file or flag, exit 1, nothing lost.

Each case damages a fresh fake capture (or run) the way a user's data goes wrong and checks
that the command returns 1 (no exception escapes: no traceback) after logging exactly one
error line with the expected words, and that it left no run folder (train) or no partial
results (eval, render) behind.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fake_zju import HEIGHT, WIDTH, make_capture, rewrite_annots
from neuralbody.cli.main import main

META = {"train_cameras": [0, 2], "test_cameras": [1, 3], "frames": {"train": [0, 4], "novel_pose": [4, 6]}}
TINY = {"voxel_size": 0.03, "level_channels": [8, 8, 8, 8], "stage_layers": [1, 0, 0, 0, 0], "code_dim": 8,
        "density_width": 32, "density_layers": 2, "feature_width": 32, "color_width": 32, "appearance_dim": 8,
        "occupancy_cell": 0.04, "occupancy_margin": 0.06, "texture_log2": 10}  # fmt: skip
TRAIN_FLAGS = ["--rays", "64", "--samples", "8", "--no-progress", "--device", "cpu",
               *[f"--option={key}={json.dumps(value)}" for key, value in TINY.items()]]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _capture(tmp_path: Path):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    (fake.root / "neuralbody.json").write_text(json.dumps(META))
    return fake


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _run_cli(argv: list[str], caplog) -> tuple[int, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        code = main(argv)
    return code, [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def _assert_one_line_error(code: int, errors: list[str], *words: str) -> None:
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith("error: ") and "\n" not in errors[0], errors
    for word in words:
        assert word in errors[0], (word, errors[0])


def _black_masks(fake, frame):
    for view in range(4):
        mask = fake.root / ("mask_cihp/" + fake.image_relpaths[frame][view][: -len(".jpg")] + ".png")
        Image.fromarray(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)).save(mask)


def _flip_camera_zero(annots):
    flip = np.diag([1.0, -1.0, -1.0])
    annots["cams"]["R"][0] = flip @ annots["cams"]["R"][0]
    annots["cams"]["T"][0] = flip @ annots["cams"]["T"][0]


def _nan_vertices(fake):
    vertices = fake.vertices[2].copy()
    vertices[7] = np.nan
    np.save(fake.root / "vertices" / "2.npy", vertices)


DATA_CASES = {  # damage(fake) -> words of the one error line ({root} is the capture folder)
    "truncated image": (lambda f: _truncate(f.root / f.image_relpaths[1][0]), ["Camera_B1/000001.jpg", "cannot decode"]),
    "zero-byte image": (lambda f: (f.root / f.image_relpaths[2][2]).write_bytes(b""), ["Camera_B3/000002.jpg", "not an image"]),
    "random bytes": (lambda f: (f.root / f.image_relpaths[3][0]).write_bytes(os.urandom(400)), ["Camera_B1/000003.jpg"]),
    "black masks": (lambda f: _black_masks(f, 1), ["every mask of frame 1 is empty", "--frames"]),
    "params keys": (lambda f: np.save(f.root / "params" / "1.npy", {"poses": np.zeros(72)}, allow_pickle=True),
                    ["params/1.npy", "params lack Rh, Th"]),
    "NaN vertices": (_nan_vertices, ["vertices/2.npy", "contain NaN"]),
    "vertex count": (lambda f: np.save(f.root / "vertices" / "3.npy", f.vertices[3][:40]), ["vertices/3.npy", "holds 40"]),
    "camera behind": (lambda f: rewrite_annots(f.root, _flip_camera_zero), ["annots.npy", "camera 0", "behind the camera"]),
    "path outside": (lambda f: rewrite_annots(f.root, lambda a: a["ims"][2].__setitem__("ims", ["../x.jpg", *a["ims"][2]["ims"][1:]])),
                     ["annots.npy", "frame 2, camera 0", "'../x.jpg'", "not inside the capture"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_train_on_bad_data_fails_in_one_line_before_writing(tmp_path, caplog, case):
    fake = _capture(tmp_path)
    damage, words = DATA_CASES[case]
    damage(fake)
    out = tmp_path / "run"
    code, errors = _run_cli(["train", str(fake.root), "--out", str(out), "--steps", "3", *TRAIN_FLAGS], caplog)
    _assert_one_line_error(code, errors, *words)
    assert not out.exists()


def test_train_on_a_crafted_annots_does_not_run_it(tmp_path, caplog):
    fake = _capture(tmp_path)
    marker = tmp_path / "ran"
    annots = np.load(fake.root / "annots.npy", allow_pickle=True).item()  # the test's own file
    annots["cams"]["payload"] = _Payload(marker)
    np.save(fake.root / "annots.npy", annots, allow_pickle=True)
    out = tmp_path / "run"
    code, errors = _run_cli(["train", str(fake.root), "--out", str(out), "--steps", "3", *TRAIN_FLAGS], caplog)
    _assert_one_line_error(code, errors, "annots.npy", "refused to unpickle posix.system")
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--frames", "0:50"], ["--frames", "'0:50'", "0..5"]),
        (["--frames", "7"], ["--frames", "0..5"]),
        (["--frames", "a:b"], ["--frames", "expected indices"]),
        (["--views", "0,9"], ["--views", "0..3"]),
        (["--minutes", "-1"], ["--minutes", "positive"]),
        (["--minutes", "0"], ["--minutes", "positive"]),
        (["--steps", "0"], ["--steps", "positive"]),
        (["--steps", "-5"], ["--steps", "positive"]),
        (["--rays", "0"], ["--rays", "positive"]),
        (["--scale", "0"], ["scale", "positive"]),
    ],
)
def test_train_rejects_bad_arguments(tmp_path, caplog, flags, words):
    fake = _capture(tmp_path)
    out = tmp_path / "run"
    argv = ["train", str(fake.root), "--out", str(out), *TRAIN_FLAGS, *flags]
    code, errors = _run_cli(argv if "--steps" in flags else [*argv, "--steps", "3"], caplog)
    _assert_one_line_error(code, errors, *words)
    assert not out.exists()


def test_train_out_naming_a_file_fails_before_reading_images(tmp_path, caplog, monkeypatch):
    fake = _capture(tmp_path)
    out = tmp_path / "run.txt"
    out.write_text("keep me")
    from neuralbody.data import capture as capture_module

    monkeypatch.setattr(capture_module, "read_capture", lambda *a, **k: pytest.fail("read the capture"))
    code, errors = _run_cli(["train", str(fake.root), "--out", str(out), "--steps", "3"], caplog)
    _assert_one_line_error(code, errors, f"--out {out}", "is an existing file, not a folder")
    assert out.read_text() == "keep me"


@pytest.fixture
def trained_run(tmp_path):
    """A fake capture and a 4-step tiny Neural Body run on it (checkpoint at step 4)."""
    fake = _capture(tmp_path)
    out = tmp_path / "run"
    argv = ["train", str(fake.root), "--out", str(out), "--steps", "4", "--ckpt-every", "2", "--val-every", "0", *TRAIN_FLAGS]
    assert main(argv) == 0
    return fake, out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_from_bad_run_files_changes_nothing(trained_run, tmp_path, caplog, capsys):
    fake, out = trained_run
    checkpoint, config = out / "checkpoint.pt", out / "config.json"
    good_checkpoint, good_config = checkpoint.read_bytes(), config.read_text()
    marker = tmp_path / "ran"
    cases = {
        "truncated checkpoint": (lambda: checkpoint.write_bytes(good_checkpoint[: len(good_checkpoint) // 2]),
                                 ["checkpoint.pt", "damaged or truncated"]),
        "crafted checkpoint": (lambda: torch.save({"step": 1, "x": _Payload(marker)}, checkpoint),
                               ["checkpoint.pt", "refused to load posix.system"]),
        "invalid config": (lambda: config.write_text('{"data": '), ["config.json", "not valid JSON"]),
    }  # fmt: skip
    for name, (damage, words) in cases.items():
        checkpoint.write_bytes(good_checkpoint)
        config.write_text(good_config)
        damage()
        before = _snapshot(out)
        code, errors = _run_cli(["train", str(fake.root), "--out", str(out), "--steps", "8", "--resume", "--no-progress"], caplog)
        _assert_one_line_error(code, errors, *words)
        assert _snapshot(out) == before, name
    assert not marker.exists()
    checkpoint.write_bytes(good_checkpoint)
    config.write_text(good_config)
    capsys.readouterr()
    code, errors = _run_cli(["train", str(fake.root), "--out", str(out), "--steps", "4", "--resume"], caplog)
    assert code == 0 and errors == []  # a spent budget is not an error (the demo resumes finished runs)
    printed = capsys.readouterr().out
    assert "nothing trained" in printed and "already at step 4" in printed and "loss nan" not in printed
    assert checkpoint.read_bytes() == good_checkpoint


# eval / render ------------------------------------------------------------------------------
def _hand_made_run(fake, run_dir: Path) -> Path:
    """A run folder as `neuralbody train` writes it, holding an untrained tiny FrameNerf (no training needed)."""
    from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig
    from neuralbody.training.checkpoint import save_checkpoint
    from neuralbody.training.config import TrainConfig

    options = {"width": 16, "depth": 2, "latent_dim": 4, "color_width": 8}
    config = TrainConfig(data=str(fake.root), out=str(run_dir), model_kind="frame_nerf", model_options=options,
                         train_frames=[0, 1, 2, 3], train_views=[0, 2], num_samples=8, device="cpu")  # fmt: skip
    run_dir.mkdir(parents=True)
    config.to_json(run_dir / "config.json")
    torch.manual_seed(0)
    model = FrameNerf(4, FrameNerfConfig(**options))
    save_checkpoint(run_dir / "checkpoint.pt", {"model": model.state_dict(), "step": 7, "model_kind": "frame_nerf",
                                                "model_options": options, "num_vertices": None, "num_frames": 4})  # fmt: skip
    return run_dir


EVAL = ["--no-progress", "--no-lpips", "--max-frames", "1"]


def test_eval_and_render_of_damaged_run_files(tmp_path, caplog):
    fake = _capture(tmp_path)
    run = _hand_made_run(fake, tmp_path / "run")
    checkpoint = run / "checkpoint.pt"
    good = checkpoint.read_bytes()
    _truncate(checkpoint)
    for command in (["eval", str(run), *EVAL], ["render", str(run)], ["mesh", str(run)]):
        code, errors = _run_cli(command, caplog)
        _assert_one_line_error(code, errors, str(checkpoint), "damaged or truncated")
    marker = tmp_path / "ran"
    torch.save({"model": {}, "step": 1, "payload": _Payload(marker)}, checkpoint)
    code, errors = _run_cli(["render", str(run)], caplog)
    _assert_one_line_error(code, errors, str(checkpoint), "refused to load", "re-save")
    assert not marker.exists()
    checkpoint.write_bytes(good)
    (run / "config.json").write_text("{oops")
    code, errors = _run_cli(["eval", str(run), *EVAL], caplog)
    _assert_one_line_error(code, errors, str(run / "config.json"), "not valid JSON")
    assert not (run / "eval").exists() and not (run / "render").exists()


def test_eval_checks_every_frame_before_rendering(tmp_path, caplog):
    fake = _capture(tmp_path)
    run = _hand_made_run(fake, tmp_path / "run")
    (fake.root / "vertices" / "5.npy").unlink()  # a novel-pose frame
    code, errors = _run_cli(["eval", str(run), "--no-progress", "--no-lpips"], caplog)
    _assert_one_line_error(code, errors, "vertices/5.npy", "missing (frame 5)")
    assert not (run / "eval").exists()  # nothing rendered: the novel-view split did not start either


def test_eval_keeps_finished_splits_when_a_later_one_fails(tmp_path, caplog):
    fake = _capture(tmp_path)
    run = _hand_made_run(fake, tmp_path / "run")
    _truncate(fake.root / fake.image_relpaths[4][1])  # ground truth of the novel-pose split
    code, errors = _run_cli(["eval", str(run), "--no-progress", "--no-lpips", "--views", "1"], caplog)
    _assert_one_line_error(code, errors, "Camera_B2/000004.jpg", "cannot decode")
    document = json.loads((run / "eval" / "metrics.json").read_text())
    assert document["novel_view"]["images"] == 4 and "novel_pose" not in document


def test_render_checks_arguments_and_frames_first(tmp_path, caplog):
    fake = _capture(tmp_path)
    run = _hand_made_run(fake, tmp_path / "run")
    (tmp_path / "file").write_text("x")
    code, errors = _run_cli(["render", str(run), "--out", str(tmp_path / "file")], caplog)
    _assert_one_line_error(code, errors, "--out", "is an existing file")
    _nan_vertices(fake)
    code, errors = _run_cli(["render", str(run), "--frame", "1:3", "--view", "1"], caplog)
    _assert_one_line_error(code, errors, "vertices/2.npy", "contain NaN")
    assert not (run / "render").exists()
    code, errors = _run_cli(["render", str(run), "--frame", "0:9"], caplog)
    _assert_one_line_error(code, errors, "--frame", "0..5")
    code, errors = _run_cli(["eval", str(run), "--samples", "0"], caplog)
    _assert_one_line_error(code, errors, "--samples must be >= 1")


def test_info_out_naming_a_folder(tmp_path, caplog):
    fake = _capture(tmp_path)
    code, errors = _run_cli(["info", str(fake.root), "--out", str(tmp_path)], caplog)
    _assert_one_line_error(code, errors, "--out", "is an existing folder")


def test_stderr_is_one_line_without_traceback(tmp_path):
    """The real entry point in a child process: a damaged checkpoint ends in one stderr line, exit 1."""
    fake = _capture(tmp_path)
    run = _hand_made_run(fake, tmp_path / "run")
    _truncate(run / "checkpoint.pt")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "neuralbody.cli.main", "render", str(run)], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Warp" not in line]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {run / 'checkpoint.pt'}: damaged or truncated (")
    assert lines[0].endswith("); train the run again (or re-save its checkpoint with this version), or restore "
                             "checkpoint.pt from a copy")  # fmt: skip
