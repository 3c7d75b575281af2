"""Capture.load_body carries the body model's pose when the capture has params."""

from __future__ import annotations

import json

import numpy as np

from fake_zju import make_capture
from neuralbody.data.capture import body_pose, read_capture


def test_load_body_carries_poses_and_shapes(tmp_path):
    fake = make_capture(tmp_path / "cap", num_frames=2)
    capture = read_capture(tmp_path / "cap")
    body = capture.load_body(1)
    assert body.pose is not None and body.pose.model == "smpl"  # 72 pose values, no neuralbody.json
    np.testing.assert_array_equal(body.pose.poses.numpy(), fake.params[1]["poses"].reshape(-1))
    np.testing.assert_array_equal(body.pose.shapes.numpy(), fake.params[1]["shapes"].reshape(-1))
    assert body.to("cpu").pose.poses.shape == (72,)


def test_the_body_model_comes_from_neuralbody_json(tmp_path):
    make_capture(tmp_path / "cap", num_frames=1)
    (tmp_path / "cap" / "neuralbody.json").write_text(json.dumps({"body_model": "Anny"}))
    assert read_capture(tmp_path / "cap").load_body(0).pose.model == "anny"


def test_no_usable_poses_gives_no_pose(tmp_path):
    make_capture(tmp_path / "bare", num_frames=1, with_params=False)
    assert read_capture(tmp_path / "bare").load_body(0).pose is None
    rh = np.zeros((1, 3), np.float32)
    assert body_pose({"Rh": rh, "Th": rh}, {}) is None
    assert body_pose({"poses": np.full((1, 312), np.nan), "Rh": rh, "Th": rh}, {}) is None
    pose = body_pose({"poses": np.zeros((1, 312)), "shapes": np.array(["x"]), "Rh": rh, "Th": rh}, None)
    assert pose.model == "anny" and pose.shapes is None
