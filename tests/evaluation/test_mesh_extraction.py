"""Mesh extraction: meshes land in world metres at the right place; carving; components; files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import Camera
from neuralbody.evaluation.mesh_extraction import (
    DensityGrid,
    Mesh,
    MeshSettings,
    carve_mask,
    carve_mask_reference,
    extract_mesh,
    largest_component,
    marching_cubes_world,
    write_mesh,
)
from neuralbody.geometry.rotations import look_at_rotation
from neuralbody.models.base import FrameBody, RadianceFieldModel
from toy_fields import DelegateField


class SphereField(RadianceFieldModel):
    """Analytic density: ``sigma = threshold + slope * (radius - |x - centre|)``, clamped at 0 (1/metres)."""

    def __init__(self, centre, radius: float, *, threshold: float = 5.0, slope: float = 200.0) -> None:
        super().__init__()
        self.register_buffer("centre", torch.tensor(centre, dtype=torch.float32))
        self.radius, self.threshold, self.slope = radius, threshold, slope

    def prepare_frame(self, frame_index, body):
        return DelegateField(self, frame_index, body.vertices.min(0).values - 0.05, body.vertices.max(0).values + 0.05)

    def field_query(self, field, points_world, viewdirs):
        distance = (points_world - self.centre).norm(dim=1)
        sigma = (self.threshold + self.slope * (self.radius - distance)).clamp_min(0.0)
        return sigma, torch.full_like(points_world, 0.5)


def _sphere_field(model: SphereField) -> DelegateField:
    centre, radius = model.centre, model.radius
    vertices = torch.stack([centre - radius, centre + radius])
    return model.prepare_frame(0, FrameBody(vertices, torch.zeros(3), centre))


@pytest.mark.parametrize("voxel", [0.02, 0.0125])
def test_sphere_mesh_lands_in_world_metres(voxel):
    centre, radius = (1.3, -0.7, 0.9), 0.25
    model = SphereField(centre, radius)
    mesh = extract_mesh(_sphere_field(model), settings=MeshSettings(voxel_size=voxel, threshold=5.0, progress=False))
    distances = np.linalg.norm(mesh.vertices - np.array(centre), axis=1)
    assert len(mesh.faces) > 100
    assert np.all(np.abs(distances - radius) < voxel)
    assert np.allclose(mesh.vertices.mean(axis=0), centre, atol=voxel / 2)
    tri = mesh.to_trimesh()
    assert tri.is_watertight
    # outward winding: positive signed volume, close to 4/3 pi r^3
    assert tri.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.05)


def test_surface_closed_where_body_touches_the_box():
    grid = DensityGrid(density=np.full((4, 5, 6), 10.0, dtype=np.float32), origin=np.array([1.0, 2.0, 3.0]), voxel_size=0.1)
    mesh = marching_cubes_world(grid, 5.0)
    assert mesh.to_trimesh().is_watertight
    assert np.all(mesh.vertices.min(axis=0) >= [0.9, 1.9, 2.9]) and np.all(mesh.vertices.max(axis=0) <= [1.4, 2.5, 3.6])


def test_threshold_outside_range_is_explained():
    grid = DensityGrid(density=np.zeros((3, 3, 3), dtype=np.float32), origin=np.zeros(3), voxel_size=0.1)
    with pytest.raises(ValueError, match="--threshold"):
        marching_cubes_world(grid, 5.0)


def test_largest_component_keeps_the_big_sphere():
    model_big = SphereField((0.0, 0.0, 0.0), 0.2)
    model_small = SphereField((0.6, 0.0, 0.0), 0.08)
    settings = MeshSettings(voxel_size=0.02, largest_component=False, progress=False)
    big = extract_mesh(_sphere_field(model_big), settings=settings)
    small = extract_mesh(_sphere_field(model_small), settings=settings)
    both = Mesh(np.concatenate([small.vertices, big.vertices]), np.concatenate([small.faces, big.faces + len(small.vertices)]))
    kept = largest_component(both)
    assert len(kept.faces) == len(big.faces)
    assert np.allclose(kept.vertices.mean(axis=0), 0.0, atol=0.01)


def test_carving_matches_reference_and_removes_outside_points():
    cameras = []
    for angle in (0.0, 2.0, 4.0):
        centre = np.array([3 * np.cos(angle), 3 * np.sin(angle), 1.0])
        R = look_at_rotation(centre, [0, 0, 1.0])
        K = np.array([[40.0, 0, 15.5], [0, 40.0, 15.5], [0, 0, 1]])
        cameras.append(Camera(K=K, R=R, T=-R @ centre, D=np.array([0.02, 0, 0, 0, 0]), width=32, height=32))
    masks = []
    for _ in cameras:
        mask = np.zeros((32, 32), dtype=bool)
        mask[8:24, 10:22] = True
        masks.append(mask)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 3)) * 0.5 + [0, 0, 1.0]
    keep = carve_mask(points, cameras, masks)
    assert np.array_equal(keep, carve_mask_reference(points, cameras, masks))
    assert 0 < keep.sum() < len(points)
    assert keep[np.argmin(np.linalg.norm(points - [0, 0, 1.0], axis=1))]


def test_carving_a_sphere_with_full_masks_changes_nothing_and_empty_masks_remove_all():
    model = SphereField((0.0, 0.0, 1.0), 0.2)
    field = _sphere_field(model)
    centre = np.array([3.0, 0.0, 1.0])
    R = look_at_rotation(centre, [0, 0, 1.0])
    camera = Camera(K=np.array([[30.0, 0, 31.5], [0, 30.0, 31.5], [0, 0, 1]]), R=R, T=-R @ centre, D=np.zeros(5), width=64, height=64)
    settings = MeshSettings(voxel_size=0.02, progress=False)
    full = extract_mesh(field, settings=settings, cameras=[camera], masks=[np.ones((64, 64), bool)])
    plain = extract_mesh(field, settings=settings)
    assert np.allclose(full.vertices, plain.vertices)
    with pytest.raises(ValueError, match="threshold"):
        extract_mesh(field, settings=settings, cameras=[camera], masks=[np.zeros((64, 64), bool)])


def test_write_ply_and_obj_round_trip(tmp_path):
    import trimesh

    model = SphereField((0.5, 0.5, 0.5), 0.1)
    mesh = extract_mesh(_sphere_field(model), settings=MeshSettings(voxel_size=0.02, progress=False))
    for name in ("m.ply", "m.obj"):
        loaded = trimesh.load(write_mesh(mesh, tmp_path / name), process=False)
        assert loaded.faces.shape == mesh.faces.shape
        assert np.allclose(loaded.vertices, mesh.vertices, atol=1e-5)
    with pytest.raises(ValueError, match=".ply or .obj"):
        write_mesh(mesh, tmp_path / "m.stl")


def test_settings_guard():
    with pytest.raises(ValueError, match="voxel_size"):
        MeshSettings(voxel_size=0.0)


def test_mesh_command_writes_world_mesh_and_ground_truth_metrics(tmp_path, capsys):
    import json

    import trimesh

    from fake_zju import make_capture
    from neuralbody.cli.main import main
    from neuralbody.evaluation.mesh_extraction import sample_density
    from neuralbody.training.checkpoint import load_run
    from test_eval_protocol import _hand_made_run

    from neuralbody.data.capture import read_capture

    root = tmp_path / "capture"
    make_capture(root, num_views=6, num_frames=8)
    capture = read_capture(root)
    vertices = capture.load_vertices(2)
    box = trimesh.creation.box(bounds=[vertices.min(axis=0), vertices.max(axis=0)])
    (root / "gt_meshes").mkdir()
    np.savez(root / "gt_meshes" / "2.npz", vertices=box.vertices.astype(np.float32), faces=box.faces.astype(np.int32))
    run_dir = _hand_made_run(capture, tmp_path / "run")
    loaded = load_run(run_dir)
    field = loaded.model.prepare_frame(2, capture.load_body(2))
    grid = sample_density(field, voxel_size=0.05)
    occupied = grid.density[grid.density > 0]  # density is zero outside the body's occupancy band
    assert occupied.size > 0
    threshold = float(np.median(occupied))
    out = tmp_path / "m.obj"
    args = ["mesh", str(run_dir), "--frame", "2", "--voxel", "0.05", "--threshold", str(threshold),
            "--no-carve", "--out", str(out), "--metric-samples", "2000"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Chamfer-L2" in printed and "IoU" in printed
    mesh = trimesh.load(out, process=False)
    # world metres: inside the frame's box (padded 5 cm, plus one voxel of zero padding)
    assert np.all(mesh.vertices.min(axis=0) >= vertices.min(axis=0) - 0.05 - 0.05 - 1e-6)
    assert np.all(mesh.vertices.max(axis=0) <= vertices.max(axis=0) + 0.05 + 0.05 + 1e-6)
    document = json.loads(out.with_suffix(".json").read_text())
    assert document["frame"] == 2 and 0 <= document["volumetric_iou"] <= 1 and document["chamfer_l2"] >= 0
    assert main(["mesh", str(run_dir), "--frame", "2", "--threshold", "1e9", "--no-carve", "--out", str(out)]) == 1
