"""Coverage of held-out pixels by training cameras: known answers on a sphere, shape guards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import Camera, pixel_rays
from neuralbody.evaluation.coverage import (
    COVERED,
    OFF_BODY,
    OUTSIDE,
    UNCOVERED,
    coverage_errors,
    pixel_coverage,
    ray_coverage,
    summarize_coverage,
    tint_uncovered,
)
from neuralbody.geometry.rotations import look_at_rotation

CENTRE = np.array([0.2, -0.1, 1.0])


def _sphere(radius: float = 0.3, centre=CENTRE, count: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """A closed triangle mesh close to a sphere (convex hull of Fibonacci points), random winding."""
    from scipy.spatial import ConvexHull

    i = np.arange(count) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / count), math.pi * (1 + 5**0.5) * i
    points = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], 1)
    faces = ConvexHull(points).simplices.copy()
    flip = np.random.default_rng(0).random(len(faces)) < 0.5  # coverage must not depend on the winding
    faces[flip] = faces[flip][:, ::-1]
    return points * radius + np.asarray(centre), faces


def _look_at(azimuth_deg: float, *, distance: float = 2.0, target=CENTRE, size: int = 48, focal: float = 80.0,
             name: str = "") -> Camera:  # fmt: skip
    """A camera on a horizontal circle around ``target`` looking at it (world z up)."""
    angle = math.radians(azimuth_deg)
    centre = np.asarray(target) + distance * np.array([math.cos(angle), math.sin(angle), 0.0])
    R = look_at_rotation(centre, target)
    K = np.array([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1]])
    return Camera(K=K, R=R, T=-R @ centre, D=np.zeros(5), width=size, height=size, name=name)


def _shares(labels: np.ndarray) -> dict[int, float]:
    inside = labels != OUTSIDE
    return {code: float((labels[inside] == code).mean()) for code in (OFF_BODY, COVERED, UNCOVERED)}


def test_opposite_camera_sees_nothing_covered_and_neighbour_nearly_everything():
    vertices, faces = _sphere()
    train = [_look_at(0.0, name="train")]
    opposite = pixel_coverage(vertices, faces, _look_at(180.0), train)
    beside = pixel_coverage(vertices, faces, _look_at(10.0), train)
    same = pixel_coverage(vertices, faces, train[0], train)
    for labels in (opposite, beside, same):
        assert labels.shape == (48, 48) and not (labels == OUTSIDE).any()
        body = _shares(labels)
        assert 0.2 < body[COVERED] + body[UNCOVERED] < 0.9  # the sphere fills part of the image
    assert (opposite == COVERED).sum() == 0
    on_body = (beside != OFF_BODY).sum()
    assert (beside == COVERED).sum() >= 0.9 * on_body
    assert (same == UNCOVERED).sum() <= 0.01 * (same != OFF_BODY).sum()  # the training view itself: all seen
    # 90 degrees apart: about half of the visible cap is also seen by the training camera
    side = pixel_coverage(vertices, faces, _look_at(90.0), train)
    fraction = (side == COVERED).sum() / (side != OFF_BODY).sum()
    assert 0.25 < fraction < 0.75
    # a second training camera on the far side covers the opposite view
    both = pixel_coverage(vertices, faces, _look_at(180.0), train + [_look_at(175.0)])
    assert (both == COVERED).sum() >= 0.9 * (both != OFF_BODY).sum()


def test_occluder_and_image_bounds_and_pixel_mask():
    sphere_v, sphere_f = _sphere()
    # a small sphere halfway between the training camera and the big one hides part of it
    blocker_v, blocker_f = _sphere(radius=0.08, centre=CENTRE + np.array([1.0, 0.0, 0.0]), count=200)
    vertices = np.concatenate([sphere_v, blocker_v])
    faces = np.concatenate([sphere_f, blocker_f + len(sphere_v)])
    train = [_look_at(0.0)]
    held_out = _look_at(20.0)
    free = pixel_coverage(sphere_v, sphere_f, held_out, train)
    blocked = pixel_coverage(vertices, faces, held_out, train)
    rays_o, rays_d = pixel_rays(held_out)
    big = ray_coverage(sphere_v, sphere_f, rays_o, rays_d, train)
    # the pixels that see the big sphere in both setups: some lose coverage behind the blocker
    both_hit = (free.reshape(-1) != OFF_BODY) & (blocked.reshape(-1) != OFF_BODY) & big.hit.numpy()
    lost = both_hit & (free.reshape(-1) == COVERED) & (blocked.reshape(-1) == UNCOVERED)
    assert lost.sum() >= 5
    assert not (both_hit & (free.reshape(-1) == UNCOVERED) & (blocked.reshape(-1) == COVERED)).any()
    # a training camera looking away from the sphere (its image does not contain it) covers nothing
    away = _look_at(0.0, target=CENTRE + np.array([2.0, 2.0, 0.0]))
    labels = pixel_coverage(sphere_v, sphere_f, held_out, [away])
    assert (labels == COVERED).sum() == 0 and (labels == UNCOVERED).sum() > 0
    # only the masked pixels are labelled
    mask = np.zeros((48, 48), dtype=bool)
    mask[10:30, 5:40] = True
    masked = pixel_coverage(sphere_v, sphere_f, held_out, train, pixel_mask=mask)
    assert (masked[~mask] == OUTSIDE).all()
    np.testing.assert_array_equal(masked[mask], free[mask])
    # per-camera visibility and hit points lie on the sphere
    result = ray_coverage(sphere_v, sphere_f, rays_o, rays_d, train + [_look_at(180.0)])
    assert result.seen_by.shape == (48 * 48, 2)
    radius = np.linalg.norm(result.points[result.hit].numpy() - CENTRE, axis=1)
    assert np.all(np.abs(radius - 0.3) < 0.01)
    assert not result.seen_by[:, 1].any()  # the far camera sees none of the points the held-out camera sees


def test_errors_and_summary_known_values():
    labels = np.array([[OUTSIDE, OFF_BODY], [COVERED, UNCOVERED]], dtype=np.int8)
    gt = np.zeros((2, 2, 3))
    pred = np.zeros((2, 2, 3))
    pred[1, 0] = 0.01  # covered: MSE 1e-4 -> 40 dB
    pred[1, 1] = 0.1  # uncovered: MSE 1e-2 -> 20 dB
    pred[0, 0] = 1.0  # outside the box: ignored
    sums = coverage_errors(torch.as_tensor(pred), gt, labels)
    assert sums["box"][1] == 3 and sums["off_body"] == (0.0, 1)
    summary = summarize_coverage([sums, sums])
    assert summary["covered"]["psnr_mean"] == pytest.approx(40.0)
    assert summary["uncovered"]["psnr_pooled"] == pytest.approx(20.0)
    assert summary["off_body"]["psnr_mean"] == math.inf
    assert summary["covered"]["share"] == pytest.approx(1 / 3)
    assert summary["on_body"]["share"] == pytest.approx(2 / 3)
    assert summary["on_body"]["psnr_pooled"] == pytest.approx(-10 * math.log10((1e-4 + 1e-2) / 2))
    assert summary["box"]["pixels"] == 6 and summary["covered"]["images"] == 2
    tinted = tint_uncovered(gt, labels)
    assert tinted[1, 1, 0] > 0.5 and tinted[1, 0].sum() == 0 and tinted[0, 0].sum() == 0


def test_shape_guards():
    vertices, faces = _sphere(count=100)
    rays = np.zeros((4, 3)), np.tile([1.0, 0.0, 0.0], (4, 1))
    train = [_look_at(0.0)]
    with pytest.raises(ValueError, match="vertices"):
        ray_coverage(vertices[:, :2], faces, *rays, train)
    with pytest.raises(ValueError, match="faces"):
        ray_coverage(vertices, faces[:, :2], *rays, train)
    with pytest.raises(ValueError, match="rays_o and rays_d"):
        ray_coverage(vertices, faces, rays[0], rays[1][:3], train)
    with pytest.raises(ValueError, match="training camera"):
        ray_coverage(vertices, faces, *rays, [])
    with pytest.raises(ValueError, match="tolerance"):
        ray_coverage(vertices, faces, *rays, train, tolerance=0.0)
    with pytest.raises(ValueError, match="pixel_mask"):
        pixel_coverage(vertices, faces, train[0], train, pixel_mask=np.ones((10, 10), dtype=bool))
    with pytest.raises(ValueError, match="labels"):
        coverage_errors(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="pred and gt"):
        coverage_errors(np.zeros((4, 4, 3)), np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="no images"):
        summarize_coverage([])


def _hull_faces(capture) -> np.ndarray:
    """Faces of the convex hull of frame 0's vertices, used as a fixed topology for every frame."""
    from scipy.spatial import ConvexHull

    return ConvexHull(capture.load_vertices(0).astype(np.float64)).simplices.copy()


def test_evaluate_run_and_eval_command_report_coverage(tmp_path, capsys, monkeypatch):
    import dataclasses
    import json

    from PIL import Image

    from fake_zju import make_capture
    from neuralbody.cli import evaluate as evaluate_cli
    from neuralbody.cli.main import main
    from neuralbody.data.capture import read_capture
    from neuralbody.evaluation.protocol import EvalOptions, evaluate_run, write_eval_json
    from test_eval_protocol import META, ConstantModel, _hand_made_run, _run

    root = tmp_path / "capture"
    fake = make_capture(root, num_views=6, num_frames=10)
    for number, vertices in fake.vertices.items():  # wider, as in test_eval_protocol: the box spans > 11 px
        centre = vertices.mean(axis=0)
        np.save(root / "vertices" / f"{number}.npy", ((vertices - centre) * [3.0, 4.0, 1.0] + centre).astype(np.float32))
    (root / "neuralbody.json").write_text(json.dumps(META))
    capture = read_capture(root)
    faces = _hull_faces(capture)
    options = EvalOptions(frame_stride=3, max_frames=2, views=[1], out_dir=tmp_path / "out", use_lpips=False,
                          progress=False, coverage_faces=faces)  # fmt: skip
    result = evaluate_run(_run(ConstantModel(capture), capture), split="novel_view", options=options)
    assert len(result.rows) == 2 and result.coverage is not None
    shares = result.coverage
    assert shares["covered"]["share"] + shares["uncovered"]["share"] + shares["off_body"]["share"] == pytest.approx(1.0)
    assert shares["covered"]["share"] > 0 and shares["box"]["pixels"] == sum(r.coverage["box"]["pixels"] for r in result.rows)
    # the box PSNR of each image is the PSNR over all its labelled pixels
    for row in result.rows:
        assert row.coverage["box"]["psnr"] == pytest.approx(row.psnr_box, abs=1e-4)
    assert shares["box"]["psnr_mean"] == pytest.approx(result.means["psnr_box"], abs=1e-4)
    picture = tmp_path / "out" / "frame0000_view01_coverage.png"
    assert np.asarray(Image.open(picture)).shape == (32, 2 * 40, 3)
    document = json.loads(write_eval_json([result], tmp_path / "m.json").read_text())
    assert document["novel_view"]["coverage"]["covered"]["pixels"] == shares["covered"]["pixels"]
    assert "coverage" in document["novel_view"]["rows"][0]
    # without coverage the JSON rows stay as before
    plain = dataclasses.replace(result, coverage=None, rows=[dataclasses.replace(r, coverage=None) for r in result.rows])
    plain_doc = json.loads(write_eval_json([plain], tmp_path / "p.json").read_text())
    assert "coverage" not in plain_doc["novel_view"] and "coverage" not in plain_doc["novel_view"]["rows"][0]

    # the command: --coverage prints the table and writes it into the JSON (faces stubbed: no body model here)
    monkeypatch.setattr(evaluate_cli, "body_faces", lambda capture, frame: _hull_faces(capture))
    run_dir = _hand_made_run(capture, tmp_path / "run")
    args = ["eval", str(run_dir), "--split", "novel_view", "--max-frames", "1", "--views", "1", "--no-progress",
            "--no-lpips", "--coverage", "--coverage-tolerance", "0.02"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "uncovered" in printed and "coverage of views 1 by training views 0,2,4" in printed
    document = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert set(document["novel_view"]["coverage"]) >= {"covered", "uncovered", "off_body", "box"}
