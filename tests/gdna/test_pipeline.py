"""train-gen -> generate -> fit-scan on the tiny corpus (with vertex colours): files, colours, checkpoints, resume,
runs from before colour, CLI errors."""

import json
import shutil

import numpy as np
import pytest
import torch

from neuralbody.cli.main import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_corpus):
    from neuralbody.gdna.run_files import train_run
    from neuralbody.gdna.training import TrainSettings
    from neuralbody.gdna.training_data import TargetSizes

    run = tmp_path_factory.mktemp("gdna") / "run"
    settings = TrainSettings(steps=160, detail_fraction=0.25, scans_per_step=2, points_per_scan=256, lr=5e-3)
    result = train_run(tiny_corpus, run, settings, sizes=TargetSizes(occupancy=1024, surface=256, free=4096),
                       progress=False)
    return run, settings, result


def test_training_writes_a_checkpoint_that_loads_back_and_resumes(tiny_run, tiny_corpus):
    from neuralbody.gdna.run_files import load_run, train_run
    from neuralbody.gdna.training import TrainSettings
    from neuralbody.gdna.training_data import TargetSizes
    from neuralbody.training.checkpoint import load_checkpoint

    run, settings, result = tiny_run
    assert result.state.step == 160 and np.isfinite(result.state.last_loss)
    loaded = load_run(run)
    payload = load_checkpoint(run / "checkpoint.pt", "cpu")
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, payload["model"][name])
    assert torch.equal(loaded.codes.shape, payload["codes"]["shape"]) and len(payload["scans"]) == 2
    assert payload["sizes"] == {"occupancy": 1024, "surface": 256, "free": 4096}  # what a resume prepares
    more = TrainSettings(**{**settings.to_dict(), "steps": 164})
    copy = run.parent / "resumed"
    shutil.copytree(run, copy)
    again = train_run(tiny_corpus, copy, more, sizes=TargetSizes(occupancy=1024, surface=256), resume=True, progress=False)
    assert again.state.step == 164 and again.new_steps == 4
    assert load_checkpoint(copy / "checkpoint.pt", "cpu")["sizes"]["free"] == 4096  # the run's sizes, not the ones given
    with pytest.raises(ValueError, match="already holds a run"):
        train_run(tiny_corpus, copy, more, progress=False)


def _ply_header(path):
    data = path.read_bytes()
    return data[: data.index(b"end_header")].decode()


def test_generate_writes_ply_with_normals_and_sheets(tiny_run, tmp_path, capsys):
    import trimesh

    run, _, _ = tiny_run
    out = tmp_path / "gen"
    code = main(["generate", str(run), "--n", "2", "--motion", "walk", "--motion-frames", "1", "--interpolation", "2",
                 "--voxel", "0.05", "--out", str(out), "--no-progress"])
    assert code == 0 and "generate: 2 people" in capsys.readouterr().out
    for path in (out / "person_0" / "canonical.ply", out / "person_1" / "walk_0.ply", out / "interpolation" / "1.ply"):
        header = _ply_header(path)
        assert "property float nx" in header and "element face" in header and "property uchar red" in header
        mesh = trimesh.load(path, process=False)
        normals = np.asarray(mesh.vertex_normals)
        assert len(mesh.faces) > 0 and np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-3)
    canonical = trimesh.load(out / "person_1" / "canonical.ply", process=False)
    posed = trimesh.load(out / "person_1" / "walk_0.ply", process=False)
    assert np.array_equal(canonical.visual.vertex_colors, posed.visual.vertex_colors)  # colour stays with the point
    for name in ("sheet", "sheet_colour", "interpolation", "interpolation_colour"):
        assert (out / f"{name}.png").is_file(), name


def test_generate_refines_the_coarse_surface_by_the_detail_normals_unless_told_not_to(tiny_run, tmp_path):
    import trimesh

    from neuralbody.gdna.detail_surface import refine_normal_mesh

    run, _, _ = tiny_run
    common = ["--n", "1", "--interpolation", "0", "--voxel", "0.05", "--no-progress"]
    assert main(["generate", str(run), *common, "--out", str(tmp_path / "full")]) == 0
    assert main(["generate", str(run), *common, "--coarse-surface", "--out", str(tmp_path / "coarse")]) == 0
    full = trimesh.load(tmp_path / "full" / "person_0" / "canonical.ply", process=False)
    coarse = trimesh.load(tmp_path / "coarse" / "person_0" / "canonical.ply", process=False)
    assert np.array_equal(full.faces, coarse.faces)
    np.testing.assert_allclose(full.vertex_normals, coarse.vertex_normals, atol=1e-6)  # the same detail normals worn
    assert np.abs(full.vertices - coarse.vertices).max() > 1e-4
    from neuralbody.gdna.meshing import NormalMesh

    expected = refine_normal_mesh(NormalMesh(np.asarray(coarse.vertices, dtype=np.float64), np.asarray(coarse.faces),
                                             np.asarray(coarse.vertex_normals, dtype=np.float64)))
    np.testing.assert_allclose(full.vertices, expected.vertices, atol=1e-4)


def test_a_run_from_before_colour_loads_and_generates_without_colours(tiny_run, tmp_path):
    from neuralbody.gdna.generate import GenerateSettings, generate
    from neuralbody.gdna.run_files import load_run
    from neuralbody.training.checkpoint import load_checkpoint, save_checkpoint

    run, _, _ = tiny_run
    payload = load_checkpoint(run / "checkpoint.pt", "cpu")
    payload["spec"].pop("colour")
    payload["model"] = {k: v for k, v in payload["model"].items() if not k.startswith("colour.")}
    payload["codes"].pop("colour")
    old = tmp_path / "old"
    old.mkdir()
    save_checkpoint(old / "checkpoint.pt", payload)
    loaded = load_run(old)
    assert loaded.model.colour is None and loaded.codes.colour is None and loaded.distribution.colour_width == 0
    result = generate(loaded, GenerateSettings(count=1, interpolation_steps=0, voxel=0.05), tmp_path / "g", progress=False)
    assert [p.name for p in result.images] == ["sheet.png"]
    assert "uchar red" not in _ply_header(result.meshes[0])


def test_fit_scan_on_a_held_out_person(tiny_run, tiny_corpus, tmp_path, capsys):
    run, _, _ = tiny_run
    held = json.loads((tiny_corpus / "corpus.json").read_text())["splits"]["heldout_people"][0][0]
    out = tmp_path / "fit"
    code = main(["fit-scan", str(run), str(tiny_corpus / held), "--frame", "0", "--steps", "15", "--detail-steps", "5",
                 "--colour-steps", "5", "--finetune-steps", "3", "--targets", "2048", "--voxel", "0.05", "--out", str(out),
                 "--no-progress"])
    assert code == 0 and "fit-scan: Chamfer-L2" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chamfer_l2_mm2"] > 0 and 0 <= metrics["normal_consistency_detail"] <= 1 and metrics["start"] == "best"
    assert 0 <= metrics["normal_consistency_coarse"] <= 1 and "property float nx" in _ply_header(out / "fitted.ply")
    assert 0 <= metrics["colour_error_rgb"] <= 255 and "property uchar red" in _ply_header(out / "fitted.ply")
    detail = metrics["detail_geometry"]
    assert detail["chamfer_l2_mm2"] > 0 and 0 <= detail["normal_consistency_own"] <= 1
    assert "property float nx" in _ply_header(out / "fitted_detail.ply")


def test_cli_errors_name_the_problem(tiny_run, tiny_corpus, tmp_path, caplog):
    run, _, _ = tiny_run
    not_corpus = tmp_path / "empty"
    not_corpus.mkdir()
    cases = [
        (["train-gen", str(not_corpus), "--out", str(tmp_path / "r")], "corpus.json"),
        (["train-gen", str(tiny_corpus), "--out", str(tmp_path / "r"), "--steps", "-1"], "--steps"),
        (["generate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g")], "checkpoint.pt"),
        (["generate", str(run), "--n", "0", "--out", str(tmp_path / "g")], "--n"),
        (["fit-scan", str(run), str(tiny_corpus / "s0000"), "--frame", "9", "--out", str(tmp_path / "f")], "frame 9"),
        (["fit-scan", str(run), str(not_corpus), "--out", str(tmp_path / "f")], "gt_meshes"),
    ]
    for argv, needle in cases:
        caplog.clear()
        assert main(argv + ["--no-progress"]) == 1, argv
        assert needle in caplog.text, (argv, caplog.text)


def test_free_space_points_lie_outside_the_scan_and_correspondences_skin_back(anny_body):
    from neuralbody.gdna.correspondences import free_space_targets, occupancy_targets
    from neuralbody.gdna.shape_skinning import shape_skinning
    from neuralbody.geometry.queries import WarpMesh

    shapes = torch.full((anny_body.shape_dim,), 0.5)
    skinning = shape_skinning(anny_body, shapes)
    poses = torch.zeros(1, anny_body.pose_dim)
    poses[0, 3 * 1 + 0] = 0.6  # bend one joint so posed and canonical differ
    transforms = skinning.bone_transforms(poses)[0]
    with torch.no_grad():
        posed = anny_body(poses, shapes[None]).vertices[0]
    faces = skinning.subject.faces
    free = free_space_targets(skinning, transforms, posed, faces, 2000, seed=0)
    assert 1000 < len(free) < 2000  # most of the box is outside a person, not all of it
    moved = skinning.grid.field(transforms).skin(free)
    assert not bool(WarpMesh(posed, faces).inside(moved).any())
    targets = occupancy_targets(skinning, transforms, posed, faces, 300, seed=1)
    valid = targets.valid.any(dim=1)
    assert float(valid.float().mean()) > 0.9
    first = targets.valid.float().argmax(dim=1)
    candidates = targets.candidates[torch.arange(300), first][valid]
    points = skinning.grid.field(transforms).skin(candidates)
    from neuralbody.snarf.samples import training_points

    expected = training_points(WarpMesh(posed, faces), 300, 1).points[valid]
    assert torch.allclose(points, expected, atol=1e-4)  # every valid candidate skins back to its posed point
