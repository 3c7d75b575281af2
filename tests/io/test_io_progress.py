"""Progress bars: one helper, one switch; ``--no-progress`` silences every bar a command draws."""

from __future__ import annotations

import re
import time

import pytest
from test_eval_protocol import _hand_made_run, fake_capture  # noqa: F401  (fake_capture is a fixture)

from neuralbody.cli.main import main
from neuralbody.io.progress import progress_bar, progress_enabled, progress_setting

# what tqdm draws: "desc:  40%|####      | 2/5 [00:01<00:02, 1.5view/s]" or "desc: 00:01 elapsed"
BAR = re.compile(r"\|\s*\d+/\d+ \[|\d\d:\d\d elapsed|\r")


def _draw(count: int = 5, **options) -> None:
    for _ in progress_bar(range(count), desc="work", unit="item", **options):
        pass


def test_bar_shows_by_default_and_hides_when_asked(capfd):
    _draw()
    assert BAR.search(capfd.readouterr().err)
    _draw(enabled=False)
    assert capfd.readouterr().err == ""
    with progress_setting(False):
        _draw()
        _draw(disable=False)  # the caller's own tqdm option cannot override the switch
    assert capfd.readouterr().err == ""


def test_setting_is_scoped_and_cannot_be_turned_back_on(capfd):
    assert progress_enabled()
    with progress_setting(False):
        assert not progress_enabled()
        with progress_setting(True):  # a nested command without --no-progress stays silent
            assert not progress_enabled()
            _draw()
        assert not progress_enabled()
    assert progress_enabled()  # restored after the block
    with progress_setting(True):
        assert progress_enabled()
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError, match="bool"):
        with progress_setting("no"):
            pass


def test_anny_build_ticker_follows_the_switch(capfd):
    from neuralbody.body.anny import _elapsed_bar

    with progress_setting(False), _elapsed_bar("Building Anny model data"):
        time.sleep(0.6)  # the ticker refreshes every 0.5 s
    assert capfd.readouterr().err == ""
    with _elapsed_bar("Building Anny model data"):
        time.sleep(0.6)
    assert "Building Anny model data: 00:00 elapsed" in capfd.readouterr().err


def test_cli_no_progress_silences_orbit_and_mesh_bars(fake_capture, tmp_path, capfd):  # noqa: F811
    run_dir = _hand_made_run(fake_capture, tmp_path / "run")
    render = ["render", str(run_dir), "--frame", "1", "--view", "3", "--orbit", "2", "--res-scale", "0.5"]
    mesh = ["mesh", str(run_dir), "--frame", "1", "--voxel", "0.05", "--no-carve", "--metric-samples", "1000"]
    capfd.readouterr()
    for argv in (render, mesh):
        assert main([*argv, "--no-progress"]) == 0
        err = capfd.readouterr().err
        assert not BAR.search(err), (argv[0], err)
    # and without the flag the bars are there (tqdm draws on a non-terminal stderr too)
    assert main(render) == 0
    assert re.search(r"orbit frame 1: .*2/2", capfd.readouterr().err)
    assert main(mesh) == 0
    assert re.search(r"density grid: .*\d+/\d+", capfd.readouterr().err)
