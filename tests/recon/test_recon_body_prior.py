"""The body prior (mvms-body): features against a brute-force oracle, perturbation, the model's input, batches,
a training step and a reconstruction that reads the body."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from neuralbody.geometry.queries import WarpMesh
from neuralbody.recon.body_prior import (
    BodyMeshes,
    BodyPrior,
    body_features,
    body_features_reference,
    frame_body_features,
    perturb_body,
)
from neuralbody.recon.model import PRESETS, PixelAlignedOccupancy
from test_recon_model import SMALL, _views

SCALES = (0.02, 0.1)


def _octahedron(radius: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A closed octahedron (outward faces), metres."""
    vertices = radius * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    return vertices, faces


def test_features_match_the_brute_force_oracle_and_their_signs():
    vertices, faces = _octahedron()
    points = np.random.default_rng(0).uniform(-0.5, 0.5, (300, 3))
    got = body_features(WarpMesh(vertices, faces), torch.from_numpy(points).float(), SCALES).numpy()
    expected = body_features_reference(vertices, faces, points, SCALES)
    assert got.shape == (300, 2)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # known answers: the centre is 0.3 / sqrt(3) inside; a point 5 cm beyond a vertex is 5 cm outside
    known = body_features(WarpMesh(vertices, faces), torch.tensor([[0.0, 0.0, 0.0], [0.35, 0.0, 0.0]]), SCALES).numpy()
    np.testing.assert_allclose(known[0], np.tanh(-0.3 / np.sqrt(3) / np.array(SCALES)), atol=1e-5)
    np.testing.assert_allclose(known[1], np.tanh(0.05 / np.array(SCALES)), atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        body_features(WarpMesh(vertices, faces), torch.zeros(2, 3), (0.0,))


def test_perturbation_is_a_small_similarity():
    vertices, _ = _octahedron()
    moved = perturb_body(vertices, np.random.default_rng(1), shift=0.01, scale=0.05)
    ratio = np.linalg.norm(moved[0] - moved[1]) / np.linalg.norm(vertices[0] - vertices[1])
    assert 0.95 <= ratio <= 1.05 and not np.isclose(ratio, 1.0)
    np.testing.assert_allclose(moved - moved.mean(0), (vertices - vertices.mean(0)) * ratio, atol=1e-12)
    assert 0 < np.linalg.norm(moved.mean(0) - vertices.mean(0)) < 0.05
    np.testing.assert_array_equal(perturb_body(vertices, np.random.default_rng(1), shift=0.0, scale=0.0), vertices)


def test_kept_meshes_give_the_perturbed_bodys_features():
    vertices, faces = _octahedron()
    prior = BodyPrior(faces=faces, scales=SCALES, shift=0.02, scale=0.1)
    meshes = BodyMeshes(prior)
    points = np.random.default_rng(2).uniform(-0.5, 0.5, (200, 3))
    for seed in (4, 5):  # the same draws: f (B - c) + c + t rebuilt, or the kept mesh queried at the inverse
        got = meshes.features(("a", 0), vertices, points, np.random.default_rng(seed))
        expected = frame_body_features(prior, vertices, points, np.random.default_rng(seed))
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(meshes.features(("a", 0), vertices, points, None),
                               torch.from_numpy(body_features_reference(vertices, faces, points, SCALES)).float(), atol=2e-5, rtol=0)
    assert not torch.allclose(meshes.features(("a", 0), vertices, points, np.random.default_rng(4)),
                              meshes.features(("a", 0), vertices, points, None))  # fmt: skip


def test_the_model_reads_the_body_in_its_decoder():
    config = dataclasses.replace(PRESETS["mvms-body"], **SMALL, scales=("s1", "s2", "s4", "s16"))
    model = PixelAlignedOccupancy(config)
    views, points, centre = _views(2, 3), torch.randn(2, 40, 3) * 0.3, torch.zeros(2, 3)
    body = torch.rand(2, 40, 2) * 2 - 1
    logits = model(views, centre, points, body)
    assert logits.shape == (2, 40) and model.uses_body and model.decoder[0].in_features == 16 * 2 + 2
    logits.sum().backward()
    assert torch.any(model.decoder[0].weight.grad[:, -2:] != 0)  # the body's columns learn
    with torch.no_grad():  # changing the body changes the answer
        assert not torch.allclose(model(views, centre, points, -body), logits)
    with pytest.raises(ValueError, match="body features"):
        model(views, centre, points)
    with pytest.raises(ValueError, match="body features"):
        model(views, centre, points, body[..., :1])
    plain = PixelAlignedOccupancy(dataclasses.replace(PRESETS["mvms"], **SMALL, scales=("s4",)))
    with pytest.raises(ValueError, match="body features"):
        plain(views, centre, points, body)


@pytest.mark.anny
def test_batches_carry_the_true_bodys_features(tiny_corpus):
    from neuralbody.data.corpus import read_corpus
    from neuralbody.recon.body_prior import body_model_faces
    from neuralbody.recon.dataset import ExampleSettings, make_batch

    corpus = read_corpus(tiny_corpus)
    sample = corpus.samples("train")[0]
    prior = BodyPrior(faces=body_model_faces(), scales=SCALES)
    settings = ExampleSettings(size=32, points=300)
    exact = make_batch(corpus, [sample], 2, settings, None, BodyMeshes(prior))
    assert exact.body.shape == (1, 300, 2)
    vertices = corpus.capture(sample.subject).load_vertices(sample.frame)
    expected = frame_body_features(prior, vertices, exact.points[0].numpy(), None)
    torch.testing.assert_close(exact.body[0], expected, atol=2e-5, rtol=0)
    inside_body = exact.body[0, :, 0] < -0.5  # over 1 cm inside the unclothed body: inside the clothed person too
    assert inside_body.sum() > 10 and bool(exact.labels[0, inside_body].all())
    jittered = make_batch(corpus, [sample], 2, settings, np.random.default_rng(3), BodyMeshes(prior))
    still = frame_body_features(dataclasses.replace(prior, shift=0.0, scale=0.0), vertices, jittered.points[0].numpy(), None)
    assert not torch.allclose(jittered.body[0], still) and (jittered.body[0] - still).abs().mean() < 0.3
    assert make_batch(corpus, [sample], 2, settings, None).body is None


def _body_only_run(run) -> None:
    """A tiny mvms-body run whose decoder reads the body alone: inside where the body's signed distance is negative."""
    from neuralbody.recon.model import ReconModelConfig
    from neuralbody.training.checkpoint import save_checkpoint
    from test_recon_train import TINY_OPTIONS

    model = PixelAlignedOccupancy(ReconModelConfig.from_dict(dict(TINY_OPTIONS, kind="mvms-body", body_scales=[0.02, 0.1])))
    with torch.no_grad():
        first, last = model.decoder[0], model.decoder[-1]
        first.weight.zero_(), first.bias.zero_(), last.weight.zero_(), last.bias.zero_()
        first.weight[0, -2] = -1.0  # hidden 0 = LeakyReLU(-tanh(d / 2 cm)): positive inside the body
        last.weight[0, 0] = 10.0
    save_checkpoint(run / "checkpoint.pt", {"model_config": model.config.to_dict(), "model": model.state_dict(),
                                            "optimizer": {}, "step": 0, "elapsed_s": 0.0})  # fmt: skip


@pytest.mark.anny
def test_a_training_step_and_a_reconstruction_that_reads_the_body(tiny_corpus, tmp_path):
    from neuralbody.cli.main import main
    from neuralbody.data.corpus import read_corpus
    from neuralbody.geometry.queries import closest_points
    from neuralbody.recon.body_prior import body_model_faces
    from neuralbody.recon.train import ReconTrainer
    from test_recon_train import _config

    trainer = ReconTrainer(_config(tiny_corpus, tmp_path / "train", model="mvms-body", steps=1), progress=False)
    batch = trainer.batch_for(0)
    assert batch.body.shape == (2, 256, 2) and np.isfinite(trainer.train_step(batch)["loss"])

    run, out = tmp_path / "run", tmp_path / "mesh.ply"
    _body_only_run(run)
    subject = read_corpus(tiny_corpus).samples("heldout_people")[0].subject
    vertices = np.load(tiny_corpus / subject / "vertices" / "0.npy") + np.array([0.0, 0.0, 0.02], dtype=np.float32)
    np.save(tmp_path / "fit.npy", vertices)  # a "fitted" body 2 cm above the true one
    code = main(["reconstruct", str(tiny_corpus / subject), "--frame", "0", "--model", str(run), "--out", str(out),
                 "--voxel", "0.02", "--levels", "2", "--metric-samples", "2000", "--body", str(tmp_path / "fit.npy"),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    import trimesh

    mesh = trimesh.load(out, process=False)  # the body itself, carved by the masks: within a voxel of it
    distances = closest_points(vertices.astype(np.float64), body_model_faces(), np.asarray(mesh.vertices)).distances
    assert np.median(distances) < 0.01 and json.loads(out.with_suffix(".json").read_text())["model_kind"] == "mvms-body"
    bad = tmp_path / "bad.npy"
    np.save(bad, vertices[:100])
    assert main(["reconstruct", str(tiny_corpus / subject), "--frame", "0", "--model", str(run), "--out", str(out),
                 "--body", str(bad), "--no-progress"]) == 1  # fmt: skip
