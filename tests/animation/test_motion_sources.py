"""Motion files (round trip, untrusted input) and motion sources (params/ and vertices/ folders, captures,
placement, posing on a body model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.animation.motion_file import MotionClip, read_motion_file, write_motion_file
from neuralbody.animation.sources import MotionSource, load_motion_source, place_at, posed_bodies
from neuralbody.io.errors import InputError


def _clip(frames: int = 5, size: int = 72) -> MotionClip:
    generator = np.random.default_rng(0)
    return MotionClip(generator.normal(size=(frames, size)).astype(np.float32) * 0.2,
                      generator.normal(size=(frames, 3)).astype(np.float32),
                      generator.normal(size=(frames, 3)).astype(np.float32), body_model="smpl", fps=12.5, name="x")


def test_motion_file_round_trip(tmp_path):
    clip = _clip()
    path = write_motion_file(tmp_path / "walk.npz", clip)
    back = read_motion_file(path)
    for key in ("poses", "Rh", "Th"):
        np.testing.assert_array_equal(getattr(back, key), getattr(clip, key))
    assert (back.body_model, back.fps, back.name, back.num_frames) == ("smpl", 12.5, "walk", 5)
    np.savez(tmp_path / "bare.npz", poses=clip.poses)  # optional arrays take their defaults
    bare = read_motion_file(tmp_path / "bare.npz")
    assert bare.body_model == "anny" and bare.fps == 10.0 and not bare.Rh.any() and not bare.Th.any()


def test_bad_motion_files_are_one_line_errors(tmp_path):
    clip = _clip()
    cases = {
        "no_poses.npz": dict(Rh=clip.Rh),
        "nan.npz": dict(poses=np.where(np.eye(5, 72) > 0, np.nan, clip.poses)),
        "short_rh.npz": dict(poses=clip.poses, Rh=clip.Rh[:3]),
        "objects.npz": dict(poses=np.array([{"a": 1}], dtype=object)),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputError, match=name):
            read_motion_file(tmp_path / name)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.npz"):
        read_motion_file(tmp_path / "junk.npz")


def test_sources_from_folders_and_files(tmp_path):
    from fake_zju import make_capture

    fake = make_capture(tmp_path / "cap", num_frames=3)
    capture_source = load_motion_source(str(tmp_path / "cap"))
    assert capture_source.num_frames == 3 and capture_source.clip.body_model == "smpl" and capture_source.placed
    np.testing.assert_array_equal(capture_source.clip.poses[1], fake.params[1]["poses"].reshape(-1))
    np.testing.assert_array_equal(capture_source.vertices[2], fake.vertices[2])
    chosen = capture_source.select([2, 0])
    assert chosen.frames == [2, 0]
    np.testing.assert_array_equal(chosen.clip.Th[0], fake.params[2]["Th"].reshape(3))
    params = load_motion_source(str(tmp_path / "cap" / "params"))
    np.testing.assert_array_equal(params.clip.Rh, capture_source.clip.Rh) and params.vertices is None
    vertices = load_motion_source(str(tmp_path / "cap" / "vertices"))
    assert vertices.clip is None and vertices.vertices.shape == (3, 50, 3)
    bodies = posed_bodies(vertices, needs_pose=False)
    np.testing.assert_allclose(bodies[1].Th.numpy(), fake.vertices[1].mean(axis=0), atol=1e-6)
    with pytest.raises(InputError, match="vertices only"):
        posed_bodies(vertices, needs_pose=True)
    assert load_motion_source("squat") == "squat"
    with pytest.raises(InputError, match="procedural"):
        load_motion_source(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="numbered"):
        load_motion_source(str(tmp_path / "empty"))


def test_placement_and_posing_on_a_body_model(tmp_path):
    from neuralbody.body.smpl import load_smpl
    from tube_body import write_smpl_npz

    write_smpl_npz(tmp_path / "tubes.npz")
    body = load_smpl(tmp_path / "tubes.npz")
    clip = _clip(frames=3)
    source = place_at(MotionSource("file", clip, placed=False), torch.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(source.clip.Th[0], [1.0, 2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(source.clip.Th[2] - source.clip.Th[0], clip.Th[2] - clip.Th[0], atol=1e-6)
    bodies = posed_bodies(source, body_model=body, needs_pose=True)
    expected = body(torch.from_numpy(source.clip.poses), None, torch.from_numpy(source.clip.Rh),
                    torch.from_numpy(source.clip.Th)).vertices
    torch.testing.assert_close(bodies[2].vertices, expected[2])
    assert bodies[0].pose.model == "smpl" and torch.equal(bodies[0].pose.poses, torch.from_numpy(source.clip.poses[0]))
    anny_clip = MotionSource("a", MotionClip(np.zeros((2, 312), np.float32), np.zeros((2, 3), np.float32),
                                             np.zeros((2, 3), np.float32)))
    with pytest.raises(InputError, match="anny"):
        posed_bodies(anny_clip, body_model=body, needs_pose=True)
