"""``neuralbody fit`` killed (SIGKILL) at any moment leaves the capture entirely old or entirely new,
and running it again finishes the job.

Each kill runs the real command in a subprocess on a copy of the tiny capture (3 frames, one
L-BFGS iteration, ~5 s a run). The kills land: from outside as soon as the staging folder
appears (while the overlays are staged: before the commit), from the transaction's test hook
(``NEURALBODY_TEST_TXN_KILL``, see :mod:`neuralbody.data.transaction`) just before the commit
record, and after the record and some of the moves (a half-applied capture on disk, which the
next reader or writer rolls forward).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neuralbody
from neuralbody.data.transaction import FILES_DIR, KILL_ENV, RECORD, TXN_DIR, recover

pytestmark = [
    pytest.mark.anny,
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]

FRAMES = 3
FIT_ARGS = ["--from-gt-noise", "1", "--frames", f"0:{FRAMES}", "--iterations", "1", "--refine-iterations", "0",
            "--no-shape", "--no-silhouette"]  # fmt: skip


def _command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "neuralbody.cli.main", "fit", str(root), *FIT_ARGS, *extra]


def _env(kill: str | None = None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", NEURALBODY_THREADS="1")
    repo = str(Path(neuralbody.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [env.get("PYTHONPATH")])])
    env.pop(KILL_ENV, None)
    if kill is not None:
        env[KILL_ENV] = kill
    return env


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    """Hash of every file of the capture outside the staging folder."""
    return {p.relative_to(root).as_posix(): _hash(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(TXN_DIR + "/")}  # fmt: skip


def committed_state(root: Path, old: dict[str, str]) -> tuple[dict[str, str] | None, int]:
    """After a kill: the capture the commit record promises (None without a record) and how many files
    of it were already in place."""
    record_path = root / TXN_DIR / RECORD
    if not record_path.is_file():
        return None, 0
    record = json.loads(record_path.read_text())
    new = {rel: h for rel, h in old.items() if not any(rel == d or rel.startswith(d + "/") for d in record["delete"])}
    moved = 0
    for rel in record["files"]:
        staged = root / TXN_DIR / FILES_DIR / rel
        moved += not staged.exists()
        new[rel] = _hash(staged if staged.exists() else root / rel)
    bodies = {f"{name}/{n}.npy" for name in ("params", "vertices") for n in range(FRAMES)}
    assert bodies <= set(record["files"]), "the commit must hold every fitted frame's body"
    return new, moved


def kill_with_hook(root: Path, kill: str) -> None:
    result = subprocess.run(_command(root, "--no-overlays"), env=_env(kill), capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]


def kill_when_staging_appears(root: Path) -> float:
    """SIGKILL the fit from outside as soon as its staging folder exists; returns the seconds it ran."""
    process = subprocess.Popen(_command(root), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    try:
        while not (root / TXN_DIR).exists():
            assert process.poll() is None, "the fit ended before it staged anything"
            assert time.monotonic() - started < 300
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return time.monotonic() - started


def is_complete_fit(old: dict[str, str], after: dict[str, str]) -> bool:
    """Whether ``after`` is ``old`` with a whole fit applied: every fitted frame's body new, nothing
    removed, nothing changed outside the fit's outputs."""
    changed = {rel for rel in after if after[rel] != old.get(rel)}
    bodies = {f"{name}/{n}.npy" for name in ("params", "vertices") for n in range(FRAMES)}
    outputs = all(rel in bodies or rel.startswith(("before_fit/", "fit/")) for rel in changed)
    return set(old) <= set(after) and bodies <= changed and outputs


def check_old_or_new(root: Path, old: dict[str, str], recovered_by) -> str:
    """Recover with ``recovered_by(root)``; the capture must then be the old one or exactly the committed one
    (without a record left, a kill after the clean-up: a complete fit)."""
    new, moved = committed_state(root, old)
    recovered_by(root)
    after = snapshot(root)
    assert not (root / TXN_DIR).exists()
    if new is not None:
        assert after == new
        return f"new ({moved} files had moved before the kill)"
    if after == old:
        return "old"
    assert is_complete_fit(old, after), sorted(rel for rel in after if after[rel] != old.get(rel))
    return "new (killed after the commit had finished)"


def test_fit_killed_anywhere_leaves_old_or_new_and_a_rerun_finishes(tiny_capture, tmp_path):
    from neuralbody.data.capture import read_capture

    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    original = snapshot(root)
    outcomes = []

    kill_when_staging_appears(root)  # from outside, while the overlays are being staged (almost always)
    outcomes.append(check_old_or_new(root, original, recover))  # old, or new if the poll was late

    old = snapshot(root)
    kill_with_hook(root, "before-commit")  # everything staged, no record yet
    assert snapshot(root) == old  # nothing in place has changed
    outcomes.append(check_old_or_new(root, old, recover))
    assert outcomes[-1] == "old"

    kill_with_hook(root, "4")  # the record written and 4 files moved: half-applied on disk
    new, moved = committed_state(root, old)
    assert moved == 4 and snapshot(root) != new and snapshot(root) != old
    outcomes.append(check_old_or_new(root, old, read_capture))  # a reader finishes it before reading
    assert outcomes[-1].startswith("new")
    for name in ("params", "vertices"):  # the body before the (first) fit, kept once
        for n in range(FRAMES):
            assert (root / "before_fit" / name / f"{n}.npy").read_bytes() == (tiny_capture / name / f"{n}.npy").read_bytes()

    kill_with_hook(root, "2")  # half-applied again, and this time the re-run finds it
    rerun = subprocess.run(_command(root, "--no-overlays"), env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "finished the committed changes of a killed neuralbody fit" in rerun.stderr
    assert f"fitted {FRAMES} of {FRAMES} frames" in rerun.stderr
    assert not (root / TXN_DIR).exists()
    residuals = json.loads((root / "fit" / "residuals.json").read_text())
    assert [row["status"] for row in residuals["frames"]] == ["ok"] * FRAMES
    final = snapshot(root)
    for rel, digest in original.items():  # every frame the fit did not touch: byte for byte as before
        if rel.startswith(("params/", "vertices/")) and int(Path(rel).stem) >= FRAMES:
            assert final[rel] == digest, rel
