"""The two posed-occupancy models on a toy: forward skinning finds the canonical point whose occupancy
the posed point takes; backward skinning with the true posed-space weights is exact inverse LBS;
a BCE step lowers the loss and reaches the skinning weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neuralbody.models.skinning_deformer import SearchOptions
from neuralbody.skinning.forward_skinning import skin_points
from neuralbody.skinning.initial_guesses import bone_groups
from neuralbody.skinning.weight_grid import surface_weights
from neuralbody.snarf.backward_model import (
    BackwardOccupancy,
    PoseConditionedWeights,
    PoseWeightsOptions,
    inverse_skin,
)
from neuralbody.snarf.canonical_occupancy import CanonicalOccupancy, OccupancyOptions
from neuralbody.snarf.forward_model import ForwardOccupancy
from neuralbody.snarf.frame_pose import FramePose
from neuralbody.snarf.posed_occupancy import EMPTY_LOGIT, occupancy_in_chunks
from snarf_toys import TOY_JOINTS, TOY_PARENTS, SphereLogits, ToyPosedWeights, toy_grid, toy_transforms, toy_weights


def _canonical_points(count: int, seed: int = 0) -> torch.Tensor:
    """Points in the cube [-0.35, 0.35]^3 (well inside the toy grid, also once turned)."""
    return 0.7 * torch.rand(count, 3, generator=torch.Generator().manual_seed(seed)) - 0.35


def _frame(angle: float = 1.2) -> FramePose:
    return FramePose(toy_transforms(angle), torch.tensor([0.0, 0.0, angle]))


def test_forward_occupancy_of_a_posed_point_is_the_canonical_occupancy_at_its_correspondence():
    grid, frame = toy_grid(), _frame()
    model = ForwardOccupancy(grid, bone_groups(TOY_PARENTS, TOY_JOINTS), SphereLogits())
    canonical = _canonical_points(2000)
    posed = grid.field(frame.bone_transforms).skin(canonical)
    with torch.no_grad():
        found = model.deformer(frame).correspondences(posed)
        logits = model.logits(posed, frame)
    assert bool(found.valid.any(dim=1).all())
    assert torch.allclose(found.points[:, 0], canonical, atol=1e-4)  # the toy's skinning is one-to-one
    assert torch.allclose(logits, SphereLogits()(canonical), atol=5e-3)
    # a point far outside the grid's box has no correspondence: surely empty
    with torch.no_grad():
        far = model.logits(torch.tensor([[5.0, 5.0, 5.0]]), frame)
    assert float(far) == pytest.approx(EMPTY_LOGIT)


def test_the_toy_grid_skins_like_the_closed_form_weights():
    grid, transforms = toy_grid(), toy_transforms(0.7)
    canonical = _canonical_points(500, seed=1)
    exact = skin_points(canonical, toy_weights(canonical), transforms)
    assert (grid.field(transforms).skin(canonical) - exact).norm(dim=1).max() < 5e-3  # trilinear in z
    assert torch.allclose(grid.field(transforms).skin(canonical)[:, 2], canonical[:, 2], atol=1e-6)  # z is kept


def test_inverse_skin_with_the_true_weights_is_exact_inverse_lbs():
    canonical = _canonical_points(1000, seed=2).double()
    transforms = toy_transforms(2.0, torch.float64)
    weights = toy_weights(canonical)
    posed = skin_points(canonical, weights, transforms)
    assert torch.allclose(posed[:, 2], canonical[:, 2])  # the posed weights are those of the canonical point
    assert torch.allclose(inverse_skin(posed, toy_weights(posed), transforms), canonical, atol=1e-12)
    # and a general rigid bone set: translation and rotation about another axis
    moved = transforms.clone()
    moved[1, :3, 3] = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    assert torch.allclose(inverse_skin(skin_points(canonical, weights, moved), weights, moved), canonical, atol=1e-12)


def test_backward_model_with_the_true_weights_reads_the_canonical_occupancy():
    frame = _frame(1.0)
    canonical = _canonical_points(1000, seed=3)
    posed = skin_points(canonical, toy_weights(canonical), frame.bone_transforms)
    model = BackwardOccupancy(ToyPosedWeights(), SphereLogits())
    assert torch.allclose(model.canonical(posed, frame), canonical, atol=1e-5)
    assert torch.allclose(occupancy_in_chunks(model, posed, frame, chunk=300), torch.sigmoid(SphereLogits()(canonical)),
                          atol=1e-4)


def test_pose_conditioned_weights_equal_one_layer_over_the_concatenation():
    torch.manual_seed(0)
    network = PoseConditionedWeights(5, 7, PoseWeightsOptions(freqs=2, hidden=16, layers=2))
    points, pose = torch.randn(10, 3), torch.randn(7)
    joined = torch.nn.Linear(network.point_layer.in_features + 7, 16)
    with torch.no_grad():
        joined.weight.copy_(torch.cat([network.point_layer.weight, network.pose_layer.weight], dim=1))
        joined.bias.copy_(network.point_layer.bias)
    from neuralbody.models.encoding import positional_encoding

    hidden = joined(torch.cat([positional_encoding(points, 2), pose[None].expand(10, -1)], dim=1))
    assert torch.allclose(network(points, pose), network.head(hidden), atol=1e-6)
    with pytest.raises(ValueError, match="pose must be"):
        network(points, torch.zeros(6))


def test_surface_weights_are_the_vertex_weights_at_the_vertices():
    vertices = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    vertex_weights = torch.eye(4)[:, :3] + 0.25 * torch.tensor([[0.0, 0, 0], [0, 0, 0], [0, 0, 0], [1.0, 1, 1]])
    vertex_weights = vertex_weights / vertex_weights.sum(dim=1, keepdim=True)
    weights = surface_weights(vertices, faces, vertex_weights, vertices)
    assert torch.allclose(weights, vertex_weights, atol=1e-5)
    middle = surface_weights(vertices, faces, vertex_weights, torch.tensor([[0.5, 0.0, -0.1]]))  # edge 0-1 midpoint
    assert torch.allclose(middle[0], 0.5 * (vertex_weights[0] + vertex_weights[1]), atol=1e-5)


@pytest.mark.parametrize("kind", ["forward", "backward"])
def test_a_bce_step_lowers_the_loss_and_reaches_the_skinning_weights(kind):
    torch.manual_seed(0)
    frame = _frame(0.8)
    canonical = _canonical_points(2048, seed=4)
    posed = skin_points(canonical, toy_weights(canonical), frame.bone_transforms)
    labels = (SphereLogits()(canonical) > 0).float()
    occupancy = CanonicalOccupancy(torch.full((3,), -0.6), torch.full((3,), 0.6),
                                   OccupancyOptions(spacings=(0.2, 0.1), features=4, freqs=2, hidden=32, layers=2))
    if kind == "forward":
        model = ForwardOccupancy(toy_grid(), bone_groups(TOY_PARENTS, TOY_JOINTS), occupancy,
                                 SearchOptions(num_candidates=1))
        weights = model.weights.logits
    else:
        model = BackwardOccupancy(PoseConditionedWeights(2, 3, PoseWeightsOptions(freqs=2, hidden=32, layers=2)),
                                  occupancy)
        weights = model.weights.point_layer.weight
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        loss = F.binary_cross_entropy_with_logits(model.logits(posed, frame), labels)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            assert weights.grad is not None and float(weights.grad.abs().sum()) > 0  # the loss reaches the weights
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
