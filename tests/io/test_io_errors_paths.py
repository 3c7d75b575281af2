"""Input errors as one line, and the path rules for capture files and output arguments."""

from __future__ import annotations

import pytest

from neuralbody.io.errors import InputError, Problem, one_line
from neuralbody.io.paths import contained_relpath, require_file_path, require_folder_path


def test_input_error_is_one_line_with_subject_problem_and_fix():
    error = InputError("data/x.png", "cannot decode", "replace it")
    assert isinstance(error, ValueError)
    assert str(error) == "data/x.png: cannot decode; replace it"
    assert error.problems == (Problem("data/x.png", "cannot decode", "replace it"),)
    assert str(InputError("a", "multi\nline\n\n problem")) == "a: multi; line; problem"


def test_from_problems_shows_the_first_and_counts_the_rest():
    problems = [Problem(f"f{i}", "bad", "fix") for i in range(3)]
    error = InputError.from_problems(problems, more="run check")
    assert str(error) == "f0: bad; fix (2 more problems; run check)"
    assert error.problems == tuple(problems)
    assert str(InputError.from_problems(problems[:1])) == "f0: bad; fix"
    with pytest.raises(ValueError):
        InputError.from_problems([])
    with pytest.raises(ValueError, match="severity"):
        Problem("x", "y", severity="fatal")
    assert one_line("a\n\n  b  \n") == "a; b"


@pytest.mark.parametrize(
    "relpath, expected",
    [
        ("Camera_B1/000000.jpg", "Camera_B1/000000.jpg"),
        ("Camera (1)/CoreView_313_Camera_(1)_0001.jpg", "Camera (1)/CoreView_313_Camera_(1)_0001.jpg"),
        ("./a/b.png", "a/b.png"),
        ("a/../b.png", "b.png"),
        ("a\\b.png", "a/b.png"),
        ("..a/b.png", "..a/b.png"),  # a folder whose name starts with dots
        ("../b.png", None),
        ("a/../../b.png", None),
        ("..", None),
        (".", None),
        ("", None),
        ("/etc/passwd", None),
        ("\\\\server\\share\\x.png", None),
        ("C:/images/x.png", None),
        ("c:x.png", None),
    ],
)
def test_contained_relpath(relpath, expected):
    assert contained_relpath(relpath) == expected


def test_output_paths_are_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    assert require_folder_path(tmp_path / "folder", "--out") == tmp_path / "folder"
    assert require_folder_path(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    with pytest.raises(InputError, match=r"--out .*file: is an existing file, not a folder"):
        require_folder_path(tmp_path / "file", "--out")
    with pytest.raises(InputError, match=r"file is a file, not a folder"):
        require_folder_path(tmp_path / "file" / "run", "--out")
    assert require_file_path(tmp_path / "new.png", "--out") == tmp_path / "new.png"
    with pytest.raises(InputError, match="is an existing folder, not a file"):
        require_file_path(tmp_path / "folder", "--out")
    with pytest.raises(InputError, match="is a file, not a folder"):
        require_file_path(tmp_path / "file" / "x.png", "--out")
