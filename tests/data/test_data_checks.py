"""`neuralbody check` and the capture checks: every kind of damage is found, named and counted at once."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

from fake_zju import HEIGHT, WIDTH, make_capture, rewrite_annots
from neuralbody.cli.main import main
from neuralbody.data.capture import read_capture
from neuralbody.data.checks import check_capture, check_capture_folder, validate_frames
from neuralbody.io.errors import InputError


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _mask_file(fake, frame: int, view: int):
    return fake.root / ("mask_cihp/" + fake.image_relpaths[frame][view][: -len(".jpg")] + ".png")


def _flip_camera(annots, view: int) -> None:
    """Turn camera ``view`` half a turn about its x axis, keeping its centre: it looks away from the person."""
    flip = np.diag([1.0, -1.0, -1.0])
    annots["cams"]["R"][view] = flip @ annots["cams"]["R"][view]
    annots["cams"]["T"][view] = flip @ annots["cams"]["T"][view]


def damage(fake) -> dict[str, tuple[str, str]]:
    """Damage a 4-view, 6-frame fake capture in every per-file way; returns kind -> (file named, words expected)."""
    root = fake.root
    _truncate(root / fake.image_relpaths[1][0])
    (root / fake.image_relpaths[2][1]).write_bytes(b"")
    (root / fake.image_relpaths[3][2]).write_bytes(np.random.default_rng(0).bytes(500))
    for view in range(4):
        Image.fromarray(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)).save(_mask_file(fake, 4, view))
    np.save(root / "params" / "1.npy", {"poses": np.zeros((1, 72)), "Th_wrong": np.zeros(3)}, allow_pickle=True)
    vertices = fake.vertices[2].copy()
    vertices[5, 1] = np.nan
    np.save(root / "vertices" / "2.npy", vertices)
    np.save(root / "vertices" / "3.npy", fake.vertices[3][:40])
    rewrite_annots(root, lambda annots: _flip_camera(annots, 3))
    return {
        "truncated image": (fake.image_relpaths[1][0], "cannot decode the image"),
        "zero-byte image": (fake.image_relpaths[2][1], "not an image file"),
        "random bytes": (fake.image_relpaths[3][2], "not an image file"),
        "black masks": (str(_mask_file(fake, 4, 0).relative_to(root)), "every mask of frame 4 is empty"),
        "params keys": ("params/1.npy", "params lack Rh, Th"),
        "NaN vertices": ("vertices/2.npy", "contain NaN"),
        "vertex count": ("vertices/3.npy", "holds 40 vertices but the other frames hold 50"),
        "camera behind": ("annots.npy", "camera 3 (Camera_B4): the person is behind the camera"),
    }


def test_a_sound_capture_passes(tmp_path, capsys):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    report = check_capture_folder(fake.root)
    assert report.problems == [] and report.vertex_count == 50 and report.num_frames == 6
    assert main(["check", str(fake.root), "--no-progress"]) == 0
    assert "OK:" in capsys.readouterr().out


def test_check_names_every_problem_at_once(tmp_path, capsys, caplog):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    expected = damage(fake)
    report = check_capture_folder(fake.root)
    lines = [str(problem) for problem in report.errors]
    for kind, (relpath, words) in expected.items():
        hits = [line for line in lines if str(fake.root / relpath) in line and words in line]
        assert len(hits) == 1, (kind, lines)
    assert len(report.errors) == len(expected)  # nothing else (undamaged files are not reported)
    with caplog.at_level(logging.ERROR):
        assert main(["check", str(fake.root), "--no-progress"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(expected) and all(line.startswith("error: ") for line in out)
    assert "8 problems" in caplog.text


def test_one_empty_mask_is_a_warning(tmp_path, capsys):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=3)
    Image.fromarray(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)).save(_mask_file(fake, 1, 2))
    report = check_capture_folder(fake.root)
    assert report.errors == []
    assert [str(p) for p in report.warnings] == [
        f"{_mask_file(fake, 1, 2)}: empty mask (all black) while other views of frame 1 show the person; "
        "redo this mask or leave the camera out (--views)"
    ]
    assert main(["check", str(fake.root), "--no-progress"]) == 0
    assert "1 warning above" in capsys.readouterr().out


def test_person_outside_every_image_of_a_camera_is_an_error(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=3)

    def shift(annots):  # principal point 200 px left of a 40 px wide image: everything projects far left of it
        annots["cams"]["K"][1] = annots["cams"]["K"][1].copy()
        annots["cams"]["K"][1][0, 2] = -200.0

    rewrite_annots(fake.root, shift)
    report = check_capture_folder(fake.root)
    assert [p.problem for p in report.errors] == [
        "camera 1 (Camera_B2): the person's centre projects outside the image in frames 0, 1, 2 (3 of 3 checked)"
    ]


@pytest.mark.parametrize("bad_path", ["../outside/000000.jpg", "/etc/hostname", "Camera_B1/../../x.jpg"])
def test_image_paths_must_stay_inside_the_capture(tmp_path, bad_path, capsys):
    fake = make_capture(tmp_path / "cap", num_views=3, num_frames=2)
    rewrite_annots(fake.root, lambda annots: annots["ims"][1].__setitem__("ims", [*annots["ims"][1]["ims"][:2], bad_path]))
    with pytest.raises(InputError) as error:
        read_capture(fake.root)
    message = str(error.value)
    assert str(fake.root / "annots.npy") in message and "frame 1, camera 2" in message and repr(bad_path)[1:-1] in message
    assert main(["check", str(fake.root), "--no-progress"]) == 1
    assert "is not inside the capture folder" in capsys.readouterr().out


def test_every_bad_path_is_listed(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=3, num_frames=3)

    def edit(annots):
        annots["ims"][0]["ims"] = np.array(["/abs/a.jpg", "Camera_B2/000000.jpg", "../b.jpg"])
        annots["ims"][2]["ims"] = np.array(["Camera_B1/000002.jpg", "x/../../c.jpg", "Camera_B3/000002.jpg"])

    rewrite_annots(fake.root, edit)
    report = check_capture_folder(fake.root)
    assert [p.problem.split(":")[0] for p in report.errors] == ["frame 0, camera 0", "frame 0, camera 2", "frame 2, camera 1"]


def test_mask_dir_must_stay_inside_the_capture(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=2, num_frames=1)
    (fake.root / "neuralbody.json").write_text('{"mask_dir": "../elsewhere"}')
    with pytest.raises(InputError, match=r"neuralbody.json: mask_dir '../elsewhere' is not a folder inside"):
        read_capture(fake.root)


def test_crafted_annots_is_refused_by_check_and_info(tmp_path, capsys, caplog):
    fake = make_capture(tmp_path / "cap", num_views=2, num_frames=1)
    marker = tmp_path / "ran"
    annots = np.load(fake.root / "annots.npy", allow_pickle=True).item()  # the test's own file
    annots["ims"][0]["payload"] = _Payload(marker)
    np.save(fake.root / "annots.npy", annots, allow_pickle=True)
    assert main(["check", str(fake.root), "--no-progress"]) == 1
    assert "refused to unpickle" in capsys.readouterr().out
    with caplog.at_level(logging.ERROR):
        assert main(["info", str(fake.root)]) == 1
    assert "refused to unpickle" in caplog.text and str(fake.root / "annots.npy") in caplog.text
    assert not marker.exists()


def test_info_uses_the_checks_for_its_columns(tmp_path, capsys):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=3)
    np.save(fake.root / "params" / "0.npy", {"poses": np.zeros((1, 72)), "shapes": np.zeros((1, 10))}, allow_pickle=True)
    assert main(["info", str(fake.root), "--no-sheet"]) == 1
    out = capsys.readouterr().out
    assert "params: damaged (see problems)" in out and "params: yes" not in out
    assert "params lack Rh, Th" in out
    fake = make_capture(tmp_path / "cap2", num_views=4, num_frames=3)
    vertices = fake.vertices[2].copy()
    vertices[0] = np.inf
    np.save(fake.root / "vertices" / "2.npy", vertices)
    _truncate(fake.root / fake.image_relpaths[2][1])  # frame 0 gives the sizes: read_capture would stop there
    assert main(["info", str(fake.root), "--no-sheet"]) == 1
    out = capsys.readouterr().out
    assert "vertices: damaged" in out and "contain inf" in out and "cannot decode the image" in out
    assert not (fake.root / "contact_sheet.png").exists()


def test_validate_frames_is_what_training_runs_first(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    capture = read_capture(fake.root)
    assert validate_frames(capture, list(range(6)), [0, 1]) == 50
    damage(fake)
    capture = read_capture(fake.root)
    with pytest.raises(InputError) as error:
        validate_frames(capture, list(range(6)), [0, 1, 2, 3])
    kinds = " | ".join(p.problem for p in error.value.problems)
    assert "contain NaN" in kinds and "holds 40 vertices" in kinds and "frame 4 is empty" in kinds and "behind" in kinds
    assert "more problems" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(InputError, match="the model expects 60"):
        validate_frames(capture, [0], [0], expected_count=60, masks=False)
    assert validate_frames(capture, [0, 5], [0, 1], masks=False) == 50  # those frames are sound


def test_check_capture_on_some_frames(tmp_path):
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    damage(fake)
    report = check_capture(read_capture(fake.root), frames=[0, 5])
    assert [str(p) for p in report.errors if "behind" not in p.problem] == []
    assert report.frames == [0, 5]


def test_info_reads_the_body_files_of_every_frame(tmp_path, capsys):
    """Images and masks are sampled (frames 0, 2, 5 of 6), vertices and params are read for every frame."""
    fake = make_capture(tmp_path / "cap", num_views=4, num_frames=6)
    np.save(fake.root / "vertices" / "1.npy", fake.vertices[1][:30])
    np.save(fake.root / "params" / "3.npy", {"poses": np.zeros((1, 72))}, allow_pickle=True)
    _truncate(fake.root / fake.image_relpaths[4][0])  # not sampled: left to `neuralbody check`
    assert main(["info", str(fake.root), "--no-sheet"]) == 1
    out = capsys.readouterr().out
    assert "coverage over frames 0, 2, 5" in out
    assert "vertices/1.npy: holds 30 vertices" in out and "params/3.npy: params lack Rh, Th" in out
    assert "000004.jpg" not in out
    assert "vertices: damaged (see problems), params: damaged (see problems)" in out
