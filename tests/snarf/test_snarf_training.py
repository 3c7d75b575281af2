"""The training loss: BCE on occupancy, plus the backward model's warm-up toward the body model's weights."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F
import trimesh

from neuralbody.geometry.queries import WarpMesh
from neuralbody.snarf.backward_model import BackwardOccupancy, PoseConditionedWeights, PoseWeightsOptions
from neuralbody.snarf.frame_pose import FramePose
from neuralbody.snarf.samples import training_points
from neuralbody.snarf.subject import PreparedFrame
from neuralbody.snarf.training import TrainSettings, step_loss
from snarf_toys import SphereLogits, toy_transforms, toy_weights


@torch.no_grad()
def test_the_warm_up_adds_the_cross_entropy_to_the_body_models_weights():
    torch.manual_seed(0)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    vertices, faces = torch.tensor(sphere.vertices, dtype=torch.float32), torch.tensor(sphere.faces)
    vertex_weights = toy_weights(vertices)
    frame = PreparedFrame(0, FramePose(toy_transforms(0.5), torch.zeros(3)), vertices, faces, vertices)
    subject = types.SimpleNamespace(faces=faces, vertex_weights=vertex_weights)
    model = BackwardOccupancy(PoseConditionedWeights(2, 3, PoseWeightsOptions(freqs=1, hidden=8, layers=1)),
                              SphereLogits())
    settings, mesh = TrainSettings(points_per_step=500), WarpMesh(vertices, faces)
    plain = step_loss(model, frame, mesh, subject, 7, settings, warm_up=False)
    warm = step_loss(model, frame, mesh, subject, 7, settings, warm_up=True)
    points = training_points(mesh, 500, 7, settings.mix)  # the same points (same seed)
    assert float(plain) == pytest.approx(float(F.binary_cross_entropy_with_logits(
        model.logits(points.points, frame.pose), points.inside.float())), rel=1e-5)
    # on the sphere's vertices' own surface the body weights are toy_weights of the closest surface point
    closest = WarpMesh(vertices, faces).closest_points(points.points).points
    target = toy_weights(closest)
    cross_entropy = -(target * torch.log_softmax(model.weights(points.points, frame.pose.pose), 1)).sum(1).mean()
    assert float(warm - plain) == pytest.approx(float(cross_entropy), rel=0.02)  # barycentric blend vs exact
