"""neuralbody.cli.arguments: index lists as the CLI accepts them (never clamped)."""

from __future__ import annotations

import pytest

from neuralbody.cli.arguments import parse_index_list
from neuralbody.io.errors import InputError


def test_lists_ranges_and_mixes():
    assert parse_index_list(None, limit=10, what="views") is None
    assert parse_index_list("0,2,4", limit=10, what="views") == [0, 2, 4]
    assert parse_index_list("0:4", limit=10, what="frames") == [0, 1, 2, 3]
    assert parse_index_list("0:10:3", limit=10, what="frames") == [0, 3, 6, 9]
    assert parse_index_list(" 1, 5:7 ,", limit=10, what="frames") == [1, 5, 6]
    assert parse_index_list(":", limit=3, what="frames") == [0, 1, 2]
    assert parse_index_list("3:", limit=5, what="frames") == [3, 4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7", r"--views '7': indices must lie in 0\.\.4 \(got \[7\]\)"),
        ("-1", r"indices must lie in 0\.\.4"),
        ("3:100", r"--views: range '3:100' is not within 0\.\.4 \(5 available"),  # not clamped
        ("-2:", r"range '-2:' is not within"),
        ("4:2", r"range '4:2' is not within"),
        ("0:4:0", r"range '0:4:0' is not within"),
        ("", r"\(got none\)"),
        ("a,b", r"--views 'a,b': expected indices like 0,2,4"),
        ("1:2:3:4", r"expected indices like"),
    ],
)
def test_bad_values_name_the_option_in_one_line(text, message):
    with pytest.raises(InputError, match=message) as caught:
        parse_index_list(text, limit=5, what="views")
    assert "\n" not in str(caught.value)


def test_options_are_json_or_strings_and_need_an_equals_sign():
    from neuralbody.cli.arguments import parse_options

    assert parse_options(["voxel_size=0.008", "texture_cells=[]", "norm=batch", "flag=true"]) == {
        "voxel_size": 0.008, "texture_cells": [], "norm": "batch", "flag": True}
    assert parse_options([]) == {}
    with pytest.raises(InputError, match=r"--option 'voxel_size': expected KEY=VALUE; e\.g\. --option channels=32"):
        parse_options(["voxel_size"], example="channels=32")


def test_views_all_one_or_the_first_held_out():
    import types

    from neuralbody.cli.arguments import choose_views

    capture = types.SimpleNamespace(num_views=6, meta={"test_cameras": [1, 3, 5]})
    args = lambda **kw: types.SimpleNamespace(**{"all_views": False, "view": None, **kw})  # noqa: E731
    assert choose_views(args(all_views=True), capture, [0, 2, 4]) == [0, 1, 2, 3, 4, 5]
    assert choose_views(args(view=4), capture, [0, 2, 4]) == [4]
    assert choose_views(args(), capture, [0, 2, 4]) == [1]
    with pytest.raises(InputError, match="--view 6: cameras are 0..5"):
        choose_views(args(view=6), capture, [0, 2, 4])
