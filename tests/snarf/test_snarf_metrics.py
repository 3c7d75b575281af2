"""IoU, near-surface IoU and the Chamfer score of a posed occupancy, on spheres with known answers."""

from __future__ import annotations

import math

import pytest
import torch
import trimesh

from neuralbody.snarf.frame_pose import FramePose
from neuralbody.snarf.metrics import EvalSettings, label_iou, score_frame
from neuralbody.snarf.posed_occupancy import PosedOccupancy
from neuralbody.snarf.samples import TrainingMix, box_points, near_surface_points, training_points
from neuralbody.snarf.subject import PreparedFrame
from neuralbody.geometry.queries import WarpMesh

RADIUS = 0.5


def _sphere(radius: float = RADIUS) -> tuple[torch.Tensor, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=radius)
    return torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces, dtype=torch.int64)


class Ball(PosedOccupancy):
    """A ball of ``radius`` metres at the origin, whatever the pose."""

    def __init__(self, radius: float) -> None:
        super().__init__()
        self.radius = radius

    def logits(self, points: torch.Tensor, frame: FramePose) -> torch.Tensor:
        return 200.0 * (self.radius - points.norm(dim=1))


def _frame(vertices, faces) -> PreparedFrame:
    pose = FramePose(torch.eye(4)[None], torch.zeros(3))
    return PreparedFrame(0, pose, vertices, faces, vertices)


def test_label_iou_known_values():
    a = torch.tensor([True, True, False, False, True])
    b = torch.tensor([True, False, True, False, True])
    assert label_iou(a, b) == pytest.approx(2 / 4)
    assert label_iou(a, a) == 1.0 and label_iou(a, ~a) == 0.0
    assert label_iou(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)) == 1.0
    with pytest.raises(ValueError, match="labellings"):
        label_iou(a, b[:4])


def test_near_surface_iou_of_a_larger_ball_is_band_over_band_plus_margin():
    vertices, faces = _sphere()
    band, margin = 0.04, 0.01
    points = near_surface_points(vertices, faces, 200_000, band, seed=0)
    distance = points.norm(dim=1) - RADIUS
    assert float(distance.abs().max()) < band + 1e-3  # all within the band
    truth = WarpMesh(vertices, faces).inside(points)
    predicted = points.norm(dim=1) < RADIUS + margin
    # offsets uniform in [-band, band]: inside the truth for t < 0, predicted for t < margin
    assert label_iou(predicted, truth) == pytest.approx(band / (band + margin), abs=0.01)


def test_volumetric_iou_of_concentric_balls_is_the_volume_ratio():
    vertices, faces = _sphere()
    points = box_points(vertices, 200_000, padding=0.1, seed=1)
    assert float(points.abs().max()) <= RADIUS + 0.1 + 1e-6
    truth = WarpMesh(vertices, faces).inside(points)
    predicted = points.norm(dim=1) < 0.55
    assert label_iou(predicted, truth) == pytest.approx((RADIUS / 0.55) ** 3, abs=0.01)


def test_score_frame_of_the_ball_itself_and_of_a_larger_one():
    vertices, faces = _sphere()
    settings = EvalSettings(volume_samples=50_000, surface_samples=50_000, band=0.01, voxel=0.02,
                            chamfer_samples=20_000)
    same = score_frame(Ball(RADIUS), _frame(vertices, faces), settings)
    assert same.iou > 0.995 and same.near_surface_iou > 0.97
    assert same.chamfer_l2 < (0.2 * settings.voxel) ** 2  # square metres: marching cubes within ~a fifth of a voxel
    larger = score_frame(Ball(RADIUS + 0.005), _frame(vertices, faces), settings)
    assert larger.near_surface_iou == pytest.approx(0.01 / 0.015, abs=0.02)
    assert larger.chamfer_l2 == pytest.approx(0.005**2, rel=0.35)
    empty = score_frame(Ball(-1.0), _frame(vertices, faces), settings)
    assert empty.iou == 0.0 and math.isinf(empty.chamfer_l2)


def test_training_points_mix_and_labels():
    vertices, faces = _sphere()
    mix = TrainingMix(sigma_near=0.01, sigma_far=0.05, far_fraction=0.25, box_fraction=0.2, padding=0.1)
    labelled = training_points(WarpMesh(vertices, faces), 10_000, seed=3, mix=mix)
    assert labelled.points.shape == (10_000, 3) and labelled.inside.dtype == torch.bool
    radius = labelled.points.norm(dim=1)
    clear = (radius - RADIUS).abs() > 2e-3  # farther from the sphere than its facets are
    assert torch.equal(labelled.inside[clear], radius[clear] < RADIUS)
    near = labelled.points[2000:8000].norm(dim=1) - RADIUS  # 8000 on the surface, the first 2000 at sigma_far
    assert float(near.std()) == pytest.approx(0.01, rel=0.1)
    far = labelled.points[:2000].norm(dim=1) - RADIUS
    assert float(far.std()) == pytest.approx(0.05, rel=0.1)
    assert float(labelled.points[8000:].abs().max()) <= RADIUS + 0.1 + 1e-6  # the rest in the padded box
    assert torch.equal(training_points(WarpMesh(vertices, faces), 100, seed=3, mix=mix).points,
                       training_points(WarpMesh(vertices, faces), 100, seed=3, mix=mix).points)
