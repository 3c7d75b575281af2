"""synth-head writes frames and parameters its reader gives back consistently."""

import json

import numpy as np
import pytest
import torch
from head_fixtures import tiny_rig

from neuralbody.head.animation import read_params_file
from neuralbody.head.camera_path import moving_camera
from neuralbody.head.capture import read_head_capture
from neuralbody.head.rig import pose_head
from neuralbody.head.sequences import make_sequence
from neuralbody.head.synth import HeadSynthConfig, generate_head_capture
from neuralbody.io.errors import InputError

CONFIG = HeadSynthConfig(train_frames=3, test_frames=1, strong_frames=2, resolution=24, supersample=1, seed=3)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    rig = tiny_rig()
    root = generate_head_capture(tmp_path_factory.mktemp("head") / "cap", CONFIG, rig=rig, progress=False)
    return read_head_capture(root), rig


def test_round_trip_of_params_cameras_and_images(capture):
    cap, rig = capture
    assert cap.split("train") == [0, 1, 2] and cap.split("test") == [3] and cap.split("strong") == [4, 5]
    strong = make_sequence("strong", rig.action_labels, 2, CONFIG.seed)
    for i, frame in enumerate(cap.split("strong")):
        params = cap.params(frame)
        np.testing.assert_allclose(params.expression, strong.expression[i], atol=1e-6)
        np.testing.assert_allclose(params.pose, strong.pose[i], atol=1e-6)
        _, transforms = pose_head(rig, torch.tensor(params.expression)[None], torch.tensor(params.pose)[None])
        np.testing.assert_allclose(params.bone_transforms, transforms[0].numpy(), atol=1e-5)
    camera = cap.camera(1, "cam00")
    expected = moving_camera(1, CONFIG.resolution)
    np.testing.assert_allclose(camera.R, expected.R, atol=1e-9)
    np.testing.assert_allclose(camera.T, expected.T, atol=1e-9)
    np.testing.assert_allclose(cap.rig.expression_basis.numpy(), rig.expression_basis.numpy())
    for frame, name in [(0, "cam00"), (4, "cam01"), (5, "cam02")]:
        image, mask, depth = cap.image(frame, name), cap.mask(frame, name), cap.depth(frame, name)
        assert image.shape == (24, 24, 3) and mask.any() and not mask.all()
        assert (depth[mask] > 0.5).all() and (depth[mask] < 0.9).all()  # the head sits 0.7 m from the camera
        assert image[~mask].max() <= 1.0 and image[mask].mean() > 0.1
    assert not (cap.root / "images" / "cam01" / "000000.png").exists()  # evaluation cameras never see training


def test_animation_file_matches_params(capture):
    cap, rig = capture
    frames = read_params_file(cap.root / "animation" / "strong.npz", rig)
    assert len(frames) == 2
    np.testing.assert_allclose(frames[1].bone_transforms, cap.params(5).bone_transforms, atol=1e-6)


def test_reader_errors_name_the_file(capture, tmp_path):
    cap, rig = capture
    with pytest.raises(InputError, match="head.json"):
        read_head_capture(tmp_path)
    (tmp_path / "head.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="head.json"):
        read_head_capture(tmp_path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, expression=np.zeros((2, 52)), pose=np.zeros((3, 4, 3)))
    with pytest.raises(InputError, match="bad.npz"):
        read_params_file(bad, rig)
