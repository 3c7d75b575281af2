"""The learned, shape-conditioned skinning: zero-init equality with the fixed skinning, weights, Jacobian,
implicit gradients (float64 gradcheck), a short training run, resume."""

import shutil

import numpy as np
import pytest
import torch

from neuralbody.gdna.learned_skinning import LearnedSkinning, PresetWeights, SkinningCorrection, SkinningOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def anny_case(anny_body):
    """An Anny shape's skinning, a pose bending a hip and a knee, the posed body mesh."""
    from neuralbody.gdna.shape_skinning import shape_skinning

    shapes = torch.full((anny_body.shape_dim,), 0.5)
    skinning = shape_skinning(anny_body, shapes)
    names = list(anny_body.joint_names)
    poses = torch.zeros(1, anny_body.pose_dim)
    poses[0, 3 * names.index("upperleg01.L")] = -0.7
    poses[0, 3 * names.index("lowerleg01.L")] = 0.9
    transforms = skinning.bone_transforms(poses)[0]
    with torch.no_grad():
        posed = anny_body(poses, shapes[None]).vertices[0].float()
    return skinning, transforms, posed


def _correction(skinning, seed=None):
    options = SkinningOptions(bones=skinning.grid.num_bones, hidden=16, layers=2, freqs=2,
                              shape_dim=int(skinning.subject.shapes.numel()))
    net = SkinningCorrection(torch.zeros(3), options)
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            net.out.weight.copy_(0.5 * torch.randn(net.out.weight.shape, generator=generator))
    return net


def test_a_zero_correction_is_exactly_the_fixed_skinning(anny_case):
    from neuralbody.gdna.correspondences import free_space_targets, normal_targets, occupancy_targets
    from neuralbody.gdna.meshing import NormalMesh, pose_mesh

    fixed, transforms, posed = anny_case
    learned = fixed.with_correction(_correction(fixed))
    faces = fixed.subject.faces
    points = fixed.subject.rest_vertices[::7].float() + 0.01
    assert torch.allclose(learned.learned.weights(points), fixed.grid.weights(points), atol=1e-6)
    assert torch.allclose(learned.skin(points, transforms), fixed.skin(points, transforms), atol=2e-5)
    _, jac_fixed = fixed.skin_with_jacobian(points, transforms)
    _, jac_learned = learned.skin_with_jacobian(points, transforms)
    assert torch.allclose(jac_learned, jac_fixed, atol=1e-4)
    a = occupancy_targets(fixed, transforms, posed, faces, 400, seed=3)
    b = occupancy_targets(learned, transforms, posed, faces, 400, seed=3)
    assert torch.equal(a.valid, b.valid) and int(a.valid.sum()) > 300
    assert torch.allclose(a.candidates[a.valid], b.candidates[b.valid], atol=1e-4)
    n_a = normal_targets(fixed, transforms, posed, faces, 200, seed=4)
    n_b = normal_targets(learned, transforms, posed, faces, 200, seed=4)
    assert torch.allclose(n_a.canonical, n_b.canonical, atol=1e-4)
    assert torch.allclose(n_a.inverse_transpose, n_b.inverse_transpose, atol=1e-3)
    assert torch.equal(free_space_targets(fixed, transforms, posed, faces, 300, 5),
                       free_space_targets(learned, transforms, posed, faces, 300, 5))
    mesh = NormalMesh(points.double().numpy(), np.zeros((0, 3), dtype=np.int64), np.tile([0.0, 0.0, 1.0], (len(points), 1)))
    assert np.allclose(pose_mesh(mesh, learned, transforms).vertices, pose_mesh(mesh, fixed, transforms).vertices,
                       atol=2e-5)


def test_learned_weights_sum_to_one_and_the_jacobian_matches_autograd(anny_case):
    fixed, transforms, _ = anny_case
    learned = fixed.with_correction(_correction(fixed, seed=0)).learned
    points = fixed.subject.rest_vertices[::11].float() + torch.tensor([0.01, -0.02, 0.015])
    with torch.no_grad():
        weights, preset = learned.weights(points), learned.preset.at(points)
    assert bool((weights >= 0).all()) and torch.allclose(weights.sum(dim=1), torch.ones(len(points)), atol=1e-5)
    assert float((weights - preset).abs().max()) > 0.05  # the correction does change them
    posed, jacobian = learned.skin_with_jacobian(points, transforms)
    posed_ref, jacobian_ref = learned.skin_with_jacobian_reference(points, transforms)
    assert torch.allclose(posed, posed_ref, atol=1e-5)
    assert torch.allclose(jacobian, jacobian_ref, atol=1e-4)


def _toy_skinning():
    """Three bones over a 4 x 4 x 4 grid in [-1, 1]^3 (float64), weights smooth in x, a small random correction."""
    axes = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64)
    nodes = torch.stack(torch.meshgrid(axes, axes, axes, indexing="ij"), dim=-1)
    logits = torch.stack([2.0 * nodes[..., 0], -2.0 * nodes[..., 0], nodes[..., 2]], dim=-1)
    preset = PresetWeights(torch.softmax(logits, dim=-1), torch.full((3,), -1.0, dtype=torch.float64),
                           torch.full((3,), 2.0 / 3.0, dtype=torch.float64))
    torch.manual_seed(0)
    net = SkinningCorrection(torch.zeros(3), SkinningOptions(bones=3, hidden=4, layers=1, freqs=1, shape_dim=2)).double()
    with torch.no_grad():
        net.out.weight.normal_(0.0, 0.5)
    transforms = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    for b, angle in enumerate((0.3, -0.2, 0.1)):
        c, s = np.cos(angle), np.sin(angle)
        transforms[b, :3, :3] = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        transforms[b, :3, 3] = torch.tensor([0.05 * b, -0.03, 0.02 * b], dtype=torch.float64)
    return LearnedSkinning(preset, net, torch.tensor([0.2, 0.7], dtype=torch.float64)), transforms


def test_implicit_gradient_into_the_network_matches_finite_differences_float64():
    learned, transforms = _toy_skinning()
    generator = torch.Generator().manual_seed(1)
    canonical = 0.5 * (2 * torch.rand(4, 3, generator=generator, dtype=torch.float64) - 1)
    with torch.no_grad():
        posed = learned.skin(canonical, transforms)
    starts = canonical + 0.02 * torch.randn(4, 3, generator=generator, dtype=torch.float64)
    params = learned.parameters()

    def roots(*_params):  # gradcheck perturbs the network's own parameters in place: the search sees them
        found, usable = learned.search(posed, starts, transforms, tolerance=1e-12, max_iterations=60)
        assert bool(usable.all())
        return found

    assert torch.allclose(roots(), canonical, atol=1e-9)  # Broyden finds the roots
    assert torch.autograd.gradcheck(roots, params, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_a_short_training_run_lowers_the_posed_occupancy_loss_and_learns_the_weights(anny_case):
    from neuralbody.gdna.coarse import CoarseOptions
    from neuralbody.gdna.correspondences import NormalTargets, free_space_candidates, occupancy_targets, outside_scan
    from neuralbody.gdna.detail import DetailOptions
    from neuralbody.gdna.latents import LatentCodes
    from neuralbody.gdna.learned_targets import search_occupancy
    from neuralbody.gdna.model import GenerativeModel, ModelSpec
    from neuralbody.gdna.training import TrainSettings, make_optimizers, step_loss
    from neuralbody.gdna.training_data import PreparedScan
    from neuralbody.geometry.queries import WarpMesh

    fixed, transforms, posed = anny_case
    shape_dim = int(fixed.subject.shapes.numel())
    coarse = CoarseOptions(spacings=(0.16, 0.08), features=2, freqs=2, hidden=32, layers=2, latent=4, shape_dim=shape_dim)
    spec = ModelSpec(fixed.box_min.tolist(), fixed.box_max.tolist(), coarse, DetailOptions(feature=32, latent=4),
                     skinning=SkinningOptions(bones=fixed.grid.num_bones, hidden=16, freqs=2, shape_dim=shape_dim))
    torch.manual_seed(0)
    model, codes = GenerativeModel(spec), LatentCodes(1, 4, 4)
    learned = fixed.with_correction(model.skinning)
    occupancy = occupancy_targets(learned, transforms, posed, fixed.subject.faces, 1024, seed=0)
    empty = NormalTargets(torch.zeros(0, 3), torch.zeros(0, 3, 3), torch.zeros(0, 3))
    mesh = WarpMesh(posed, fixed.subject.faces)
    candidates = free_space_candidates(fixed, 512, seed=2)
    scan = PreparedScan(fixed.subject.shapes.float(), occupancy, empty,
                        candidates[outside_scan(fixed, transforms, mesh, candidates)], learned, transforms, candidates, mesh)
    settings = TrainSettings(steps=40, scans_per_step=1, points_per_scan=256, lr=1e-2, skinning_lr=1e-2, research_every=4)
    optimizer = make_optimizers(model, codes, settings).coarse

    def loss(step):
        return step_loss(model, codes, [scan], np.arange(1), np.random.default_rng(step), settings, True,
                         cold=step % settings.research_every == 0)

    with torch.no_grad():
        before = float(sum(loss(1000 + k) for k in range(3)))
    for step in range(40):
        value = loss(step)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(sum(loss(1000 + k) for k in range(3)))
    assert after < 0.8 * before
    assert float(model.skinning.out.weight.detach().abs().max()) > 0  # the weights learned
    rows = torch.nonzero(occupancy.valid.any(dim=1)).squeeze(1)[:200]
    with torch.no_grad():  # a warm search leaves the scan holding roots under the current (learned) weights
        search_occupancy(learned, transforms, occupancy, rows, cold=False)
        first = occupancy.valid[rows].float().argmax(dim=1)
        back = learned.skin(occupancy.candidates[rows, first], transforms)
    assert float(occupancy.valid[rows].any(dim=1).float().mean()) > 0.95
    assert torch.allclose(back, occupancy.posed[rows], atol=1e-4)
    with torch.no_grad():  # the last cold step relabelled the free space under the learned weights
        loss(40)
        assert not bool(mesh.inside(learned.skin(scan.free, transforms)).any())
        assert 100 < len(scan.free) < 512


def test_learned_run_resumes_and_a_fixed_run_loads_without_a_skinning_network(tiny_corpus, tmp_path):
    from neuralbody.cli.main import main
    from neuralbody.gdna.run_files import load_run, train_run
    from neuralbody.gdna.training import TrainSettings
    from neuralbody.gdna.training_data import TargetSizes
    from neuralbody.training.checkpoint import load_checkpoint

    sizes = TargetSizes(occupancy=512, surface=128, free=256)
    settings = TrainSettings(steps=8, detail_fraction=0.25, scans_per_step=2, points_per_scan=128, research_every=3)
    run = tmp_path / "learned"
    first = train_run(tiny_corpus, run, settings, sizes=sizes, progress=False, skinning="learned")
    assert first.state.step == 8 and np.isfinite(first.state.last_loss)
    loaded = load_run(run)
    payload = load_checkpoint(run / "checkpoint.pt", "cpu")
    assert loaded.model.skinning is not None and payload["spec"]["skinning"]["bones"] > 1
    assert float(loaded.model.skinning.out.weight.abs().max()) > 0  # trained in the coarse stage
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, payload["model"][name])
    copy = tmp_path / "resumed"
    shutil.copytree(run, copy)
    again = train_run(tiny_corpus, copy, TrainSettings(**{**settings.to_dict(), "steps": 10}), sizes=sizes,
                      resume=True, progress=False)  # resumed in the detail stage: its surfaces move to the learned weights
    assert again.state.step == 10 and again.new_steps == 2 and load_run(copy).model.skinning is not None
    skinning_keys = [k for k in payload["model"] if k.startswith("skinning.")]
    assert skinning_keys and all(torch.equal(load_run(copy).model.state_dict()[k], payload["model"][k])
                                 for k in skinning_keys)  # the detail stage leaves the skinning alone
    fixed = tmp_path / "fixed"
    train_run(tiny_corpus, fixed, TrainSettings(steps=2, scans_per_step=1, points_per_scan=64), sizes=sizes,
              progress=False)
    spec = load_checkpoint(fixed / "checkpoint.pt", "cpu")["spec"]
    assert "skinning" not in spec and load_run(fixed).model.skinning is None
    assert main(["train-gen", str(tiny_corpus), "--out", str(tmp_path / "x"), "--research-every", "0",
                 "--no-progress"]) == 1
