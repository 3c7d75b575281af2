"""``neuralbody detect``: BlazePose -> COCO mapping, multi-view person choice, writer round trip, missing extra."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_data import POSE2SIM_DEMO, needs_shared

from neuralbody.capture_import.blazepose import BLAZEPOSE_OF_COCO, blazepose_to_coco, segmentation_to_mask
from neuralbody.capture_import.calibration import write_annots_cameras
from neuralbody.capture_import.detect import DetectConfig, detect_capture
from neuralbody.capture_import.multiview_person import (
    clean_mask,
    consistent_person,
    flip_left_right,
    person_box,
)
from neuralbody.capture_import.person_detector import PersonDetection, require_mediapipe
from neuralbody.cli.main import main
from neuralbody.data.cameras import project_points
from neuralbody.data.capture import read_capture
from neuralbody.evaluation.orbit import look_at_camera
from neuralbody.fitting.keypoints import COCO_KEYPOINTS

REAL = POSE2SIM_DEMO
WIDTH, HEIGHT = 160, 240


# -- BlazePose -> COCO ---------------------------------------------------------------------
def test_blazepose_mapping_known_answer():
    # landmark i sits at x = i / 40, y = i / 80 with visibility i / 33: the COCO rows tell which i was picked
    index = np.arange(33, dtype=np.float64)
    landmarks = np.stack([index / 40, index / 80, index / 33], axis=1)
    coco = blazepose_to_coco(landmarks, 200, 100, offset=(10.0, 20.0))
    assert coco.shape == (17, 3)
    picked = np.round(coco[:, 2] * 33).astype(int)
    expected = {"nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8, "left_shoulder": 11,
                "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14, "left_wrist": 15, "right_wrist": 16,
                "left_hip": 23, "right_hip": 24, "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28}
    assert list(picked) == [expected[name] for name in COCO_KEYPOINTS]
    assert tuple(BLAZEPOSE_OF_COCO) == tuple(expected[name] for name in COCO_KEYPOINTS)
    # edge-normalised -> pixel centres on integers, plus the crop offset
    np.testing.assert_allclose(coco[:, 0], picked / 40 * 200 - 0.5 + 10.0)
    np.testing.assert_allclose(coco[:, 1], picked / 80 * 100 - 0.5 + 20.0)


def test_blazepose_outside_image_has_no_confidence_and_batches():
    landmarks = np.full((2, 33, 3), 0.5)
    landmarks[0, 27, 0] = 1.2  # left ankle extrapolated beyond the right edge
    landmarks[1, 0, 1] = -0.1  # nose above the top
    coco = blazepose_to_coco(landmarks, 50, 50)
    assert coco.shape == (2, 17, 3)
    assert coco[0, COCO_KEYPOINTS.index("left_ankle"), 2] == 0.0
    assert coco[1, COCO_KEYPOINTS.index("nose"), 2] == 0.0
    assert (coco[..., 2] > 0).sum() == 2 * 17 - 2


@pytest.mark.parametrize("bad", [np.zeros((17, 3)), np.zeros((33, 2)), np.zeros(33)])
def test_blazepose_shape_guard(bad):
    with pytest.raises(ValueError, match="33, 3"):
        blazepose_to_coco(bad, 10, 10)


def test_segmentation_to_mask_threshold_and_guards():
    probability = np.array([[0.2, 0.6], [0.5, np.nan]])
    np.testing.assert_array_equal(segmentation_to_mask(probability), [[False, True], [False, False]])
    with pytest.raises(ValueError, match="threshold"):
        segmentation_to_mask(probability, 1.0)
    with pytest.raises(ValueError, match="H, W"):
        segmentation_to_mask(np.zeros(4))


def test_flip_left_right_swaps_names():
    keypoints = np.arange(17 * 3, dtype=float).reshape(17, 3)
    flipped = flip_left_right(keypoints)
    for i, name in enumerate(COCO_KEYPOINTS):
        twin = name.replace("left", "RIGHT").replace("right", "left").replace("RIGHT", "right")
        np.testing.assert_array_equal(flipped[i], keypoints[COCO_KEYPOINTS.index(twin)])
    np.testing.assert_array_equal(flip_left_right(flipped), keypoints)


# -- multi-view consistency ----------------------------------------------------------------
def skeleton(center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(17, 3) a plausible, asymmetric COCO skeleton (z up, metres), facing -y."""
    x = np.array([0, .03, -.03, .07, -.07, .18, -.18, .35, -.22, .40, -.24, .1, -.1, .1, -.1, .1, -.1])
    z = np.array([1.6, 1.63, 1.63, 1.6, 1.6, 1.4, 1.4, 1.55, 1.12, 1.8, .85, .9, .9, .5, .5, .08, .08])
    y = np.array([-.08] * 5 + [0, 0, 0, -.2, 0, -.3, 0, 0, -.3, .1, -.4, .3])  # arms and legs asymmetric
    return np.stack([x, y, z], axis=1) + np.asarray(center)


def ring(count=4, radius=3.0):
    """Cameras around the person at uneven angles and heights (no two face each other: opposite
    cameras see nearly the same rays and cannot tell a mirrored skeleton apart)."""
    K = np.array([[200.0, 0, (WIDTH - 1) / 2], [0, 200.0, (HEIGHT - 1) / 2], [0, 0, 1]])
    angles, heights = np.radians([10, 70, 140, 230])[:count], [1.0, 2.0, 1.2, 2.2][:count]
    return [look_at_camera(center=np.array([radius * np.cos(a), radius * np.sin(a), h]),
                           target=np.array([0, 0, 0.85]), up=np.array([0, 0, 1.0]), K=K, width=WIDTH, height=HEIGHT,
                           name=f"cam{i + 1:02d}")
            for i, (a, h) in enumerate(zip(angles, heights))]  # fmt: skip


def observe(cameras, points, confidence=0.9) -> np.ndarray:
    return np.stack([np.concatenate([project_points(c, points)[0], np.full((len(points), 1), confidence)], 1)
                     for c in cameras])  # fmt: skip


def test_consistent_person_rejects_the_bystander_view():
    cameras = ring()
    person = skeleton()
    keypoints = observe(cameras, person)
    keypoints[1] = observe(cameras[1:2], skeleton((0.9, 0.8, 0.0)))[0]  # view 1 detects someone else
    consensus = consistent_person(cameras, keypoints, tol_px=3.0)
    assert consensus.found
    np.testing.assert_array_equal(consensus.agreeing, [True, False, True, True])
    np.testing.assert_allclose(consensus.points, person, atol=1e-6)
    assert consensus.residual_px[1] > 3.0 and np.all(consensus.residual_px[[0, 2, 3]] < 1e-4)
    # nobody agrees with anybody: no consensus rather than a wrong one
    scattered = np.stack([observe(cameras[v : v + 1], skeleton((0.5 * v, -0.4 * v, 0)))[0] for v in range(4)])
    scattered[:, :, :2] += np.random.default_rng(0).normal(0, 6.0, scattered[:, :, :2].shape)
    assert not consistent_person(cameras, scattered, tol_px=1.0).found


def test_person_box_and_clean_mask():
    camera = ring()[0]
    person = skeleton()
    x0, y0, x1, y1 = person_box(camera, person, padding_m=0.1)
    uv, _ = project_points(camera, person)
    assert x0 < uv[:, 0].min() and x1 > uv[:, 0].max() and y0 < uv[:, 1].min() and y1 > uv[:, 1].max()
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[30:60, 20:40] = True  # the person
    mask[30:32, 42:44] = True  # a small detached piece holding a keypoint (a hand)
    mask[2:12, 50:60] = True  # a bystander, outside the box
    mask[70:72, 5:7] = True  # a speck inside the box, no keypoint
    cleaned = clean_mask(mask, (10, 20, 50, 90), anchors_uv=np.array([[30.0, 45.0], [43.0, 31.0]]))
    expected = np.zeros_like(mask)
    expected[30:60, 20:40] = True
    expected[30:32, 42:44] = True
    np.testing.assert_array_equal(cleaned, expected)


# -- the whole command on a fake capture, with a fake detector -----------------------------
class FakeDetector:
    """Whole image: view 1 sees a bystander, view 3 has left/right swapped; inside a box: the person."""

    version = "fake"
    model_complexity = 1

    def __init__(self, cameras, person, bystander):
        self.cameras, self.person, self.bystander = cameras, person, bystander
        self.calls = []

    def _view(self, image):
        return int(image[0, 0, 0])  # the test images carry their view index in pixel (0, 0)

    def detect(self, image, box=None):
        view = self._view(image)
        self.calls.append((view, box is not None))
        who = self.bystander if (view == 1 and box is None) else self.person
        keypoints = observe(self.cameras[view : view + 1], who)[0]
        if view == 3:
            keypoints = flip_left_right(keypoints)
        mask = np.zeros(image.shape[:2], bool)
        for u, v, _ in keypoints:
            mask[max(0, int(v) - 3) : int(v) + 4, max(0, int(u) - 3) : int(u) + 4] = True
        if box is None:
            mask[0:3, 0:3] = True  # clutter in a corner, far from the person
        return PersonDetection(keypoints, mask, True)


def write_fake_capture(root: Path, cameras, frames=2) -> None:
    relpaths = []
    for frame in range(frames):
        row = []
        for view, camera in enumerate(cameras):
            image = np.full((camera.height, camera.width, 3), 120, np.uint8)
            image[0, 0] = view
            rel = f"{camera.name}/{frame:06d}.png"
            (root / camera.name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / rel)
            row.append(rel)
        relpaths.append(row)
    write_annots_cameras(cameras, root / "annots.npy", relpaths)


def test_detect_capture_round_trip_through_the_reader(tmp_path):
    cameras = ring()
    person, bystander = skeleton(), skeleton((1.0, 1.2, 0.0))
    write_fake_capture(tmp_path, cameras)
    detector = FakeDetector(cameras, person, bystander)
    result = detect_capture(tmp_path, detector, DetectConfig(black_background=True, max_offset=0), progress=False)

    by_name = {view.name: view for view in result.views}
    assert by_name["cam02"].redetected == 2 and by_name["cam04"].flipped == 2
    assert all(by_name[name].agreed == 2 for name in ("cam01", "cam03"))
    assert all(view.lost == 0 and view.median_residual_px() < 1e-3 for view in result.views)
    assert (1, True) in detector.calls  # the bystander view was re-detected inside the person's box
    assert [view.mask_removed for view in result.views] == [2, 0, 2, 2]  # corner clutter cut (not in the crop)

    capture = read_capture(tmp_path)  # what train/fit read
    truth = observe(cameras, person)
    for frame in range(capture.num_frames):
        keypoints = np.load(tmp_path / "keypoints2d" / f"{capture.frame_ids[frame]}.npy")
        assert keypoints.shape == (4, 17, 3)
        np.testing.assert_allclose(keypoints, truth, atol=1e-9)  # flipped view corrected, bystander replaced
        for view in range(capture.num_views):
            mask = capture.load_mask(frame, view)
            assert capture.mask_path(frame, view) == tmp_path / "mask" / f"cam{view + 1:02d}" / f"{frame:06d}.png"
            assert mask.any() and not mask[0:3, 0:3].any()  # corner clutter removed (outside the person's box)
            image = capture.load_image(frame, view)
            assert np.all(image[~mask] == 0) and np.allclose(image[mask], 120 / 255)  # black background
            assert (tmp_path / "original" / capture.image_relpath(frame, view)).is_file()
    meta = json.loads((tmp_path / "neuralbody.json").read_text())
    assert meta["masks"] is True and meta["mask_dir"] == "mask"
    assert json.loads((tmp_path / "detect.json").read_text())["views"][1]["redetected"] == 2

    # repeatable: a second run reads original/ (not the blacked-out images) and gives the same files
    again = detect_capture(tmp_path, FakeDetector(cameras, person, bystander), DetectConfig(black_background=True,
                           max_offset=0), progress=False)  # fmt: skip
    assert [v.as_dict() for v in again.views] == [v.as_dict() for v in result.views]


def test_detect_config_guard(tmp_path):
    with pytest.raises(ValueError, match="mask_dir"):
        detect_capture(tmp_path, None, DetectConfig(mask_dir="masks"))


# -- the optional extra ---------------------------------------------------------------------
def test_missing_mediapipe_names_the_install_command(monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'neuralbody\[detect\]'"):
        require_mediapipe()
    write_fake_capture(tmp_path, ring(2), frames=1)
    assert main(["detect", str(tmp_path)]) == 2
    assert "neuralbody[detect]" in caplog.text
    assert not (tmp_path / "mask").exists()


# -- the real capture -----------------------------------------------------------------------
@needs_shared(REAL / "videos")
def test_real_capture_few_frames(tmp_path):
    pytest.importorskip("mediapipe")
    from neuralbody.capture_import.importer import ImportConfig, import_capture
    from neuralbody.capture_import.person_detector import PersonDetector

    import_capture(REAL / "videos", REAL / "calibration" / "Calib.qca.txt", tmp_path,
                   ImportConfig(start=48, stop=51, scale=0.25))  # fmt: skip
    with PersonDetector() as detector:
        result = detect_capture(tmp_path, detector, DetectConfig(max_offset=0), progress=False)
    capture = read_capture(tmp_path)
    assert result.no_consensus == []
    for view in result.views:  # the man is found in every view, and the views agree on him
        assert view.found == 3 and view.lost == 0 and view.unverified == 0, view
        assert view.median_residual_px() < 8.0, view
        assert all(0.02 < f < 0.2 for f in view.mask_fraction), view  # one person, not the room
    # frames 48-50: cam02's whole-image detection swaps the man's left and right (facing the camera)
    assert result.views[1].flipped + result.views[1].redetected >= 1
    # the bystander (left of the man in cam01) is outside the cleaned mask
    keypoints = np.load(tmp_path / "keypoints2d" / f"{capture.frame_ids[0]}.npy")
    mask = capture.load_mask(0, 0)
    left_of_person = int(keypoints[0, :, 0][keypoints[0, :, 2] > 0.5].min()) - 20
    assert left_of_person > 0 and not mask[:, :left_of_person].any()
    # the calibration is a few pixels off the person in every camera; refining the extrinsics
    # from these three frames of keypoints makes the cameras agree (leave-one-out bias)
    from neuralbody.fitting.camera_refinement import refine_extrinsics, signed_bias

    sequence = np.stack([np.load(tmp_path / "keypoints2d" / f"{i}.npy") for i in capture.frame_ids])
    refined = refine_extrinsics(capture.cameras, sequence)
    before = np.linalg.norm(signed_bias(capture.cameras, sequence), axis=1)
    after = np.linalg.norm(signed_bias(refined.cameras, sequence), axis=1)
    assert before.mean() > 1.0 and after.mean() < 0.5 * before.mean(), (before, after)
    assert refined.rotation_deg.max() < 5.0 and refined.centre_shift_m.max() < 0.2


def test_silhouette_target_takes_views_of_different_sizes():
    # imported rigs mix 1080- and 1088-wide cameras (270 and 272 at scale 0.25): the fitter's silhouette term
    from scipy import ndimage

    from neuralbody.fitting.objectives import SilhouetteTarget

    narrow, wide = np.zeros((10, 12), bool), np.zeros((10, 14), bool)
    narrow[3:6, 2:5] = True
    wide[4:8, 9:13] = True
    target = SilhouetteTarget.from_masks([narrow, wide], max_boundary=8)
    assert tuple(target.outside_distance.shape) == (2, 10, 14)
    distances = target.outside_distance.numpy()
    np.testing.assert_allclose(distances[0, :, :12], ndimage.distance_transform_edt(~narrow), rtol=1e-6)
    np.testing.assert_allclose(distances[0, :, 12:], distances[0, :, 11:12].repeat(2, axis=1))  # edge padding
    np.testing.assert_allclose(distances[1], ndimage.distance_transform_edt(~wide), rtol=1e-6)


def test_estimate_offsets_finds_a_late_camera():
    from neuralbody.capture_import.multiview_person import estimate_offsets

    cameras = ring()
    frames = 16
    moments = [skeleton((0.08 * t, 0.05 * np.sin(t), 0.0)) for t in range(frames + 2)]  # walking along +x
    keypoints = np.stack([observe(cameras, moments[t]) for t in range(frames)])
    keypoints[:, 2] = np.stack([observe(cameras[2:3], moments[t - 2])[0] for t in range(frames)])  # cam03 lags 2 frames
    estimate = estimate_offsets(cameras, keypoints, max_offset=3)
    assert estimate.shifts == {0: 0, 1: 0, 2: 2, 3: 0}
    assert estimate.residual_px[2][2] < 1e-6 and estimate.residual_px[2][0] > 1.0
    assert all(estimate.residual_px[v][0] < 1e-6 for v in (0, 1, 3))  # once cam03 is read 2 frames later
    with pytest.raises(ValueError, match="F, 4, K, 3"):
        estimate_offsets(cameras, keypoints[0])
