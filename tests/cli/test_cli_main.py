"""The `neuralbody` entry point: every sub-command is listed, errors become exit codes."""

import logging

import pytest

from neuralbody.cli.main import COMMANDS, build_parser, default_cpu_threads, main


def test_every_command_module_is_registered_and_importable():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    missing = sorted(set(COMMANDS) - set(subparsers.choices))
    assert not missing, f"commands whose module failed to load: {missing}"


def test_missing_capture_is_a_clear_error_not_a_traceback(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(["info", str(tmp_path / "nowhere")])
    assert code == 1
    assert "annots.npy" in caplog.text and str(tmp_path / "nowhere") in caplog.text


def test_thread_override(monkeypatch):
    monkeypatch.setenv("NEURALBODY_THREADS", "3")
    assert default_cpu_threads() == 3
    monkeypatch.delenv("NEURALBODY_THREADS")
    assert default_cpu_threads() >= 1


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "synth" in capsys.readouterr().out


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as error:
        main(["no-such-command"])
    assert error.value.code == 2
