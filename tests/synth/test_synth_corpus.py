"""Clothing as geometry, occupancy labels and the multi-person corpus: closed solids, labels that
agree with independent inside tests, a readable corpus with disjoint splits, resumable generation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from fixtures_corpus import TINY_CORPUS

from neuralbody.data.capture import read_capture
from neuralbody.data.corpus import CORPUS_INDEX, read_corpus
from neuralbody.geometry.queries import WarpMesh, inside, winding_number_reference
from neuralbody.synth import garments
from neuralbody.synth.occupancy import OccupancySampling, sample_occupancy

pytestmark = pytest.mark.anny


@pytest.fixture(scope="module")
def rest_body(anny_body):
    from neuralbody.synth.corpus import _rest_body

    with torch.no_grad():
        out = anny_body(torch.zeros(1, anny_body.pose_dim))
    return _rest_body(anny_body, out), out


def _directed_edges_all_paired(faces: torch.Tensor) -> bool:
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    big = int(faces.max()) + 1
    return bool(torch.isin(edges[:, 0] * big + edges[:, 1], edges[:, 1] * big + edges[:, 0]).all())


def test_ring_tube_is_closed_and_outward():
    vertices, faces = garments.ellipsoid_surface(torch.zeros(3), torch.tensor([0.3, 0.2, 0.1]), rings=5, sectors=7)
    assert _directed_edges_all_paired(faces)
    # exact winding number (brute force): 1 inside, 0 outside, so the winding is outward
    w = winding_number_reference(vertices.numpy(), faces.numpy(), np.array([[0.0, 0, 0], [0.1, 0.05, 0.02], [0.5, 0, 0]]))
    np.testing.assert_allclose(w, [1.0, 1.0, 0.0], atol=1e-6)


def test_every_solid_of_a_full_outfit_is_closed_with_positive_volume(rest_body):
    body, _ = rest_body
    outfit = garments.Outfit(top="coat", bottom="skirt", hair="bun", top_thickness=0.04)
    wardrobe = garments.build_wardrobe(body, outfit, seed=1)
    assert len(wardrobe.shells) == 2 and len(wardrobe.solids) == 3  # coat + hair shells; tails, skirt, bun
    normals = garments.vertex_normals(body.vertices, body.faces)
    for piece in wardrobe.shells + wardrobe.solids:
        if isinstance(piece, garments.Shell):
            vertices = garments.shell_vertices(piece, body.vertices, normals)
            assert float(piece.thickness.min()) > 0 and float(piece.thickness.max()) <= 0.04 * 1.35
        else:
            vertices = piece.rest_vertices
        assert _directed_edges_all_paired(piece.faces)
        a, b, c = (vertices[piece.faces[:, k]].double() for k in range(3))
        assert float((a * torch.linalg.cross(b, c, dim=1)).sum()) / 6 > 1e-4  # divergence theorem: volume > 0


def test_region_shell_of_one_triangle_is_a_closed_prism():
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    body_ids, shell_faces, border = garments.region_shell_faces(faces, torch.tensor([True, True, True, False]))
    assert body_ids.tolist() == [0, 1, 2] and border.all()
    assert shell_faces.shape == (2 + 6, 3) and _directed_edges_all_paired(shell_faces)


def test_occupancy_labels_are_the_union_of_independent_inside_tests(rest_body, anny_body):
    body, out = rest_body
    wardrobe = garments.build_wardrobe(body, garments.Outfit(top="shirt", bottom="skirt", hair="volume"), seed=2)
    mesh = garments.dress(wardrobe, body.vertices, body.faces, body.regions, out.bone_transforms[0].float())
    surface = garments.union_surface(mesh)
    sampling = OccupancySampling(near=3000, uniform=1000)
    samples = sample_occupancy(*surface, lambda p: garments.clothed_occupancy(mesh, p), sampling, seed=0)
    # independent: one Warp inside test per closed surface (body, each solid), OR-ed
    expected = np.zeros(len(samples.points), dtype=bool)
    for part in range(int(mesh.parts.max()) + 1):
        ids = torch.nonzero(mesh.parts == part).squeeze(1)
        local = mesh.faces[(mesh.parts[mesh.faces] == part).all(dim=1)] - ids[0]
        expected |= inside(mesh.vertices[ids], local, samples.points)
    agree = (samples.inside == expected).mean()
    assert agree > 0.998, agree  # Warp's dipole approximation may differ within a hair of a surface
    assert 0.2 < samples.inside.mean() < 0.8  # near-surface points fall on both sides
    # the clothed person holds more than the body: the skirt's inside, the hair
    in_body = inside(body.vertices, body.faces, samples.points)
    assert samples.inside.sum() > in_body.sum() * 1.2 and not (in_body & ~samples.inside).any()


def test_union_surface_is_the_outer_boundary(rest_body):
    body, out = rest_body
    wardrobe = garments.build_wardrobe(body, garments.Outfit(top="coat", bottom="trousers", hair="short"), seed=3)
    mesh = garments.dress(wardrobe, body.vertices, body.faces, body.regions, None)
    vertices, faces = garments.union_surface(mesh)
    assert faces.shape[0] < mesh.faces.shape[0]  # the body under the coat and the shells' inner sides are gone
    used, same_faces = garments.union_surface_indices(mesh)
    assert torch.equal(mesh.vertices[used], vertices) and torch.equal(same_faces, faces)
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    centroid = (a + b + c) / 3
    normal = torch.linalg.cross(b - a, c - a, dim=1)
    normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)
    occupied = WarpMesh(mesh.vertices, mesh.faces)
    outside = ~occupied.inside(centroid + 0.002 * normal)
    inward = occupied.inside(centroid - 0.002 * normal)
    assert outside.float().mean() > 0.97 and inward.float().mean() > 0.97


def test_tiny_corpus_layout_and_splits(tiny_corpus):
    corpus = read_corpus(tiny_corpus)
    train, poses, people = (corpus.samples(s) for s in ("train", "heldout_poses", "heldout_people"))
    assert len(train) == 2 and len(poses) == 2 and len(people) == 2
    assert {s.subject for s in people}.isdisjoint({s.subject for s in train + poses})
    assert all(s.frame == 1 for s in poses) and all(s.frame == 0 for s in train)
    sample = train[0]
    capture = corpus.capture(sample.subject)
    assert capture.num_views == TINY_CORPUS["views"] and capture.num_frames == TINY_CORPUS["frames"]
    occupancy = corpus.load_occupancy(sample)
    assert occupancy.points.shape == (1500, 3) and occupancy.inside.dtype == bool
    gt_vertices, gt_faces = corpus.load_gt_mesh(sample)
    assert len(gt_vertices) != len(capture.load_vertices(sample.frame))  # the clothed surface, not the body
    agree = (WarpMesh(gt_vertices, gt_faces).inside(occupancy.points.astype(np.float64)) == occupancy.inside).mean()
    assert agree > 0.97  # the stored surface encloses what the labels call inside (cracks where solids meet)
    frames = [np.load(corpus.subject_root(sample.subject) / "gt_meshes" / f"{f}.npz") for f in (0, 1)]
    colours = [f["colours"] for f in frames]  # the albedo of every vertex, riding with the body
    assert colours[0].shape == (len(gt_vertices), 3) and colours[0].dtype == np.uint8 and colours[0].std() > 5
    assert np.abs(colours[0].mean(axis=0) - colours[1].mean(axis=0)).max() < 10
    joints = corpus.load_joints(sample)
    assert joints.shape == (len(corpus.index["joint_names"]), 3)
    head = joints[corpus.index["joint_names"].index("head")]
    assert head[2] > 1.2 and np.all((occupancy.box_min < head) & (head < occupancy.box_max))
    mask = capture.load_mask(sample.frame, 0)
    assert 0.02 < mask.mean() < 0.6
    meta = read_capture(corpus.subject_root(sample.subject)).meta
    assert meta["corpus_subject"]["id"] == sample.subject and meta["frames"]["novel_pose"] == [1, 2]


def test_generation_resumes_without_rendering_complete_people(tiny_corpus, tmp_path, anny_body):
    import shutil

    from neuralbody.synth.corpus import CorpusConfig, generate_corpus

    copy = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, copy)
    os.remove(copy / "s0001" / "neuralbody.json")  # as if killed before s0001's capture was closed
    stamps = {p: p.stat().st_mtime_ns for p in (copy / "s0000").rglob("*.png")}
    before = (copy / CORPUS_INDEX).read_bytes()
    config = CorpusConfig(**TINY_CORPUS, sampling=OccupancySampling(near=1200, uniform=300))
    generate_corpus(copy, config, body=anny_body, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (copy / "s0000").rglob("*.png")} == stamps  # kept, not re-rendered
    assert (copy / "s0001" / "neuralbody.json").is_file()
    assert (copy / CORPUS_INDEX).read_bytes() == before
    for name in ("000000.png", "000001.png"):  # re-rendered identically
        assert (copy / "s0001" / "Camera_00" / name).read_bytes() == (tiny_corpus / "s0001" / "Camera_00" / name).read_bytes()


def test_corpus_reader_rejects_bad_indices(tiny_corpus, tmp_path):
    index = json.loads((tiny_corpus / CORPUS_INDEX).read_text())
    with pytest.raises(FileNotFoundError, match="synth-corpus"):
        read_corpus(tmp_path)
    (tmp_path / CORPUS_INDEX).write_text(json.dumps(dict(index, format="other")))
    with pytest.raises(ValueError, match="not a neuralbody corpus"):
        read_corpus(tmp_path)
    bad = dict(index, splits={"train": [["s0009", 0]]})
    (tmp_path / CORPUS_INDEX).write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="s0009"):
        read_corpus(tmp_path)
    escape = dict(index, subjects=[dict(index["subjects"][0], path="../elsewhere")], splits={})
    (tmp_path / CORPUS_INDEX).write_text(json.dumps(escape))
    with pytest.raises(ValueError, match="inside the corpus"):
        read_corpus(tmp_path)
    with pytest.raises(ValueError, match="unknown corpus split"):
        read_corpus(tiny_corpus).samples("test")


def test_outfit_and_config_guards():
    from neuralbody.synth.corpus import CorpusConfig

    with pytest.raises(ValueError, match="top must be one of"):
        garments.Outfit(top="cape")
    with pytest.raises(ValueError, match="heldout_pose_frames"):
        CorpusConfig(frames=2, heldout_pose_frames=2)
    assert CorpusConfig(subjects=10, heldout_people=0.2).num_heldout_people() == 2
    assert CorpusConfig(subjects=1).num_heldout_people() == 0
