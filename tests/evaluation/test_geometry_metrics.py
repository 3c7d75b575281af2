"""Mesh metrics against analytic answers: concentric spheres, offset boxes, identical and translated meshes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from neuralbody.evaluation.geometry_metrics import (
    GeometryMetrics,
    chamfer_l2,
    mesh_metrics,
    normal_consistency,
    point_to_surface,
    sample_surface,
    volumetric_iou,
)

SAMPLES = 20_000


@pytest.fixture(scope="module")
def spheres():
    outer = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    inner = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    return outer, inner


def test_sample_surface_is_on_the_surface_and_area_uniform():
    box = trimesh.creation.box(extents=(1.0, 2.0, 4.0))  # face areas 8, 4, 2 (twice each)
    samples = sample_surface(box.vertices, box.faces, 40_000, seed=0)
    points = samples.points.numpy()
    half = np.array([0.5, 1.0, 2.0])
    on_face = np.isclose(np.abs(points), half, atol=1e-12)  # (M, 3): which face plane each point lies on
    assert on_face.any(axis=1).all() and (np.abs(points) <= half + 1e-12).all()
    # Fraction on the x = +-0.5 faces (area 2 * 8 of 28 in total) etc.
    fractions = on_face.mean(axis=0)
    np.testing.assert_allclose(fractions, [16 / 28, 8 / 28, 4 / 28], atol=0.01)
    # Normals are unit, outward (the box is centred), and those of the sampled faces.
    normals = samples.normals.numpy()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    assert (np.einsum("nk,nk->n", normals, points) > 0).all()
    np.testing.assert_allclose(normals, box.face_normals[samples.face_ids.numpy()], atol=1e-12)
    # Fixed seed: identical samples; another seed: different ones.
    again = sample_surface(torch.as_tensor(box.vertices), torch.as_tensor(box.faces), 40_000, seed=0)
    assert torch.equal(again.points, samples.points)
    assert not torch.equal(sample_surface(box.vertices, box.faces, 40_000, seed=1).points, samples.points)


def test_concentric_spheres_analytic(spheres):
    outer, inner = spheres
    r1, r2 = 0.5, 0.4
    metrics = mesh_metrics(outer, inner, num_samples=SAMPLES)
    assert isinstance(metrics, GeometryMetrics)
    # Tessellation: the faces of a level-3 icosphere of radius r sit up to ~0.003 r inside it.
    assert metrics.point_to_surface == pytest.approx(r1 - r2, abs=2e-3)
    assert metrics.surface_to_point == pytest.approx(r1 - r2, abs=2e-3)
    assert metrics.chamfer_l2 == pytest.approx((r1 - r2) ** 2, rel=0.04)
    assert metrics.volumetric_iou == pytest.approx((r2 / r1) ** 3, abs=0.015)
    assert metrics.normal_consistency > 0.995
    # The single-metric functions give the same numbers with the same seeds.
    assert point_to_surface(outer, inner, num_samples=SAMPLES) == pytest.approx(metrics.point_to_surface, abs=1e-12)
    assert chamfer_l2(outer, inner, num_samples=SAMPLES) == pytest.approx(metrics.chamfer_l2, abs=1e-12)
    assert volumetric_iou(outer, inner, num_samples=SAMPLES) == pytest.approx(metrics.volumetric_iou, abs=1e-12)
    assert normal_consistency(outer, inner, num_samples=SAMPLES) == pytest.approx(metrics.normal_consistency, abs=1e-12)


def test_offset_boxes_analytic():
    """Two unit cubes A and B = A + (d, 0, 0), d = 1/4, by symmetry the same both ways.

    IoU = (1 - d) / (1 + d). Distances from A's faces to B's surface: the far x face is d away;
    the near x face (inside B) is min(d, 1/2 - |y|, 1/2 - |z|) away, whose mean is
    int_0^d (1 - 2t)^2 dt and mean square int_0^d 2t (1 - 2t)^2 dt; each of the four side faces
    has a strip of width d outside B at distance U ~ U(0, d), the rest lies on B.
    """
    d = 0.25
    first = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    second = first.copy()
    second.apply_translation([d, 0.0, 0.0])
    metrics = mesh_metrics((first.vertices, first.faces), (second.vertices, second.faces), num_samples=SAMPLES)
    near_mean = (1 - (1 - 2 * d) ** 3) / 6
    near_square = d**2 - 8 * d**3 / 3 + 2 * d**4
    expected_p2s = (d + near_mean + 4 * d * d / 2) / 6
    expected_chamfer = (d**2 + near_square + 4 * d * d**2 / 3) / 6
    assert metrics.volumetric_iou == pytest.approx((1 - d) / (1 + d), abs=0.01)
    assert metrics.point_to_surface == pytest.approx(expected_p2s, abs=2.5e-3)
    assert metrics.surface_to_point == pytest.approx(expected_p2s, abs=2.5e-3)
    assert metrics.chamfer_l2 == pytest.approx(expected_chamfer, rel=0.05)
    # Normals agree (|cos| = 1) on the far x face, 3/4 of each side face and 1/4 of the near x
    # face, and are perpendicular on the rest of the near face; the side strips (area 4 d) touch
    # B along an edge where either normal is closest.
    agree = 1 + 4 * (1 - d) + (1 - 2 * d) ** 2
    assert agree / 6 - 0.01 < metrics.normal_consistency < (agree + 4 * d) / 6 + 0.01


def test_identical_meshes(spheres):
    outer, _ = spheres
    metrics = mesh_metrics(outer, outer, num_samples=SAMPLES)
    assert metrics.point_to_surface < 1e-6 and metrics.surface_to_point < 1e-6
    assert metrics.chamfer_l2 < 1e-12
    assert metrics.volumetric_iou == 1.0
    assert metrics.normal_consistency == pytest.approx(1.0, abs=1e-6)


def test_translated_mesh_is_bounded_by_the_translation():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    shift = np.array([0.03, -0.02, 0.01])
    moved = (torch.as_tensor(mesh.vertices + shift), torch.as_tensor(mesh.faces))
    metrics = mesh_metrics(moved, mesh, num_samples=SAMPLES)
    bound = np.linalg.norm(shift)
    assert 0.2 * bound < metrics.point_to_surface <= bound + 1e-9
    assert metrics.chamfer_l2 <= bound**2 + 1e-12
    assert 0.5 < metrics.volumetric_iou < 1.0


def test_guards():
    mesh = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(ValueError, match="vertices must be"):
        mesh_metrics((mesh.vertices[:, :2], mesh.faces), mesh, num_samples=10)
    with pytest.raises(ValueError, match="faces must be"):
        sample_surface(mesh.vertices, mesh.faces[:, :2], 10)
    with pytest.raises(ValueError, match="num_points must be positive"):
        sample_surface(mesh.vertices, mesh.faces, 0)
    with pytest.raises(ValueError, match="a mesh must be"):
        mesh_metrics("mesh.obj", mesh, num_samples=10)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(spheres):
    outer, inner = spheres
    on_gpu = [(torch.as_tensor(m.vertices).cuda(), torch.as_tensor(m.faces).cuda()) for m in (outer, inner)]
    cpu = mesh_metrics(outer, inner, num_samples=SAMPLES)
    gpu = mesh_metrics(*on_gpu, num_samples=SAMPLES)
    assert gpu.point_to_surface == pytest.approx(cpu.point_to_surface, abs=1e-6)
    assert gpu.chamfer_l2 == pytest.approx(cpu.chamfer_l2, abs=1e-7)
    assert gpu.volumetric_iou == pytest.approx(cpu.volumetric_iou, abs=2e-3)  # float32 winding near the surface
    assert gpu.normal_consistency == pytest.approx(cpu.normal_consistency, abs=1e-6)
