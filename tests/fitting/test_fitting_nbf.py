"""Neural Body Fitting: part maps, synthetic data, the network with the body model inside, training, fit hook."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from neuralbody.data.cameras import Camera
from neuralbody.fitting import nbf_data, nbf_init, nbf_parts, nbf_train
from neuralbody.fitting.nbf_network import (
    BodyJoints,
    NBFNetwork,
    matrix_to_rotation_6d,
    mpjpe_mm,
    nbf_losses,
    rotation_6d_to_matrix,
)
from neuralbody.geometry.rotations import axis_angle_to_matrix, look_at_rotation

pytestmark = pytest.mark.anny


def _random_rotations(count: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(2.0 * torch.rand(count, 3, generator=generator, dtype=dtype) - 1.0)


# --- part segmentation ---------------------------------------------------------------------------
def test_every_anny_bone_has_a_part_and_every_part_has_vertices(anny_body):
    parts = nbf_parts.vertex_parts(anny_body.lbs_weights, anny_body.joint_names)
    counts = np.bincount(parts.numpy(), minlength=len(nbf_parts.PART_NAMES))
    assert counts.min() > 50, dict(zip(nbf_parts.PART_NAMES, counts))
    names = anny_body.joint_names
    assert nbf_parts.PART_NAMES[nbf_parts.part_of_bone("lowerarm02.L")] == "lowerarm.L"
    assert nbf_parts.PART_NAMES[nbf_parts.part_of_bone("finger3-2.R")] == "hand.R"
    assert nbf_parts.PART_NAMES[nbf_parts.part_of_bone("toe1-1.R")] == "foot.R"
    # the vertex most weighted to each limb bone lies in that bone's part
    for bone in ("upperleg01.L", "lowerleg01.R", "upperarm01.R", "wrist.L", "head"):
        vertex = int(anny_body.lbs_weights[:, names.index(bone)].argmax())
        assert int(parts[vertex]) == nbf_parts.part_of_bone(bone)
    assert len(nbf_parts.PART_COLOURS) == nbf_parts.NUM_LABELS
    assert len({tuple(c) for c in nbf_parts.PART_COLOURS}) == nbf_parts.NUM_LABELS


def test_part_labels_known_answer_two_triangles():
    """Two triangles at z = 3 in front of a camera at the origin: left one part 1, right one part 7."""
    vertices = torch.tensor(
        [[-1.0, -1.0, 3.0], [-0.1, -1.0, 3.0], [-0.1, 1.0, 3.0], [0.1, -1.0, 3.0], [1.0, -1.0, 3.0], [0.1, 1.0, 3.0]]
    )
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    vertex_part = torch.tensor([1, 1, 1, 7, 7, 7])
    res = 32
    K = np.array([[res / 1.0, 0, res / 2 - 0.5], [0, res / 1.0, res / 2 - 0.5], [0, 0, 1]])  # x, y in [-0.5, 0.5]
    camera = Camera(K=K, R=np.eye(3), T=np.zeros(3), D=np.zeros(5), width=res, height=res)
    from neuralbody.data.cameras import pixel_rays
    from neuralbody.geometry.raycast import cast_rays

    o, d = pixel_rays(camera)
    hits = cast_rays(vertices, faces, torch.tensor(o, dtype=torch.float32), torch.tensor(d, dtype=torch.float32))
    labels = nbf_parts.hit_labels(vertex_part, faces, hits.face_ids, hits.barycentrics).reshape(res, res).numpy()
    # independent answer: the pixel centre's point on the plane, inside which triangle
    v, u = np.meshgrid(np.arange(res), np.arange(res), indexing="ij")
    x, y = 3.0 * (u - K[0, 2]) / K[0, 0], 3.0 * (v - K[1, 2]) / K[1, 1]
    left = (x >= -1) & (x <= -0.1) & (y >= -1) & (y - -1.0 <= (x + 1.0) / 0.9 * 2.0)
    right = (x >= 0.1) & (x <= 1.0) & (y >= -1) & (y - -1.0 <= (1.0 - x) / 0.9 * 2.0)
    expected = np.where(left, 2, np.where(right, 8, 0))
    interior = np.abs(np.diff(expected, axis=1, prepend=expected[:, :1])) + np.abs(
        np.diff(expected, axis=0, prepend=expected[:1])
    )  # ignore pixels on an edge
    agree = (labels == expected) | (interior > 0)
    assert agree.all() and (labels == 2).sum() > 50 and (labels == 8).sum() > 50


def test_rendered_part_of_each_pixel_is_the_part_of_the_nearest_vertex(anny_body):
    rng = np.random.default_rng(3)
    poses = torch.zeros(1, anny_body.num_joints, 3)
    names = anny_body.joint_names
    poses[0, [names.index(b) for b in nbf_data.NBF_BONES]] = torch.tensor(
        nbf_data.sample_bone_poses(anny_body, rng, 1)[0], dtype=torch.float32
    )
    with torch.no_grad():
        out = anny_body(poses.reshape(1, -1))
    vertices = out.vertices[0]
    R = look_at_rotation(np.array([0.5, -3.5, 1.2]), np.array([0.0, 0.0, 0.9]))
    T = -R @ np.array([0.5, -3.5, 1.2])
    K = nbf_data.crop_intrinsics(np.array([-0.3, -0.3]), np.array([0.3, 0.3]), 64, 1.0)
    camera = Camera(K=K, R=R, T=T, D=np.zeros(5), width=64, height=64)
    look = nbf_data._body_look(anny_body)
    parts, rgb = nbf_data.render_crop(camera, vertices, out.rest_vertices[0], look, rng, supersample=1)
    assert parts.shape == (64, 64) and rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    from neuralbody.data.cameras import pixel_rays
    from neuralbody.geometry.raycast import cast_rays

    o, d = (torch.tensor(a, dtype=torch.float32) for a in pixel_rays(camera))
    hits = cast_rays(vertices, look.faces, o, d)
    assert np.array_equal(parts.reshape(-1) > 0, hits.hit.numpy())
    points = hits.points(o, d)[hits.hit]
    nearest = torch.cdist(points.double(), vertices.double()).argmin(1)
    expected = look.vertex_part[nearest] + 1
    agreement = (torch.from_numpy(parts.reshape(-1)[hits.hit.numpy()]).long() == expected).float().mean()
    assert hits.hit.sum() > 300 and agreement > 0.99


def test_colour_code_and_part_guards(anny_body):
    assert np.array_equal(nbf_parts.colour_code(np.array([[0, 3]])), nbf_parts.PART_COLOURS[[[0, 3]]])
    with pytest.raises(ValueError, match="labels"):
        nbf_parts.colour_code(np.array([16]))
    with pytest.raises(ValueError, match="no body part"):
        nbf_parts.part_of_bone("tail01")
    with pytest.raises(ValueError, match="skinning_weights"):
        nbf_parts.vertex_parts(anny_body.lbs_weights[:, :10], anny_body.joint_names)
    with pytest.raises(ValueError, match="barycentrics"):
        nbf_parts.hit_labels(torch.zeros(3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long),
                             torch.zeros(4, dtype=torch.long), torch.zeros(4, 2))  # fmt: skip


# --- rotations, body joints, network ----------------------------------------------------------------
def test_rotation_6d_round_trip_and_gradcheck():
    R = _random_rotations(64)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-12)
    x = torch.randn(32, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    M = rotation_6d_to_matrix(x)
    assert torch.allclose(M.transpose(-1, -2) @ M, torch.eye(3, dtype=torch.float64).expand(32, 3, 3), atol=1e-12)
    assert torch.allclose(torch.det(M), torch.ones(32, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(M[..., 0], x[:, :3] / x[:, :3].norm(dim=1, keepdim=True), atol=1e-12)  # first column kept
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (x[:4].clone().requires_grad_(True),))
    with pytest.raises(ValueError):
        rotation_6d_to_matrix(torch.zeros(2, 5))
    with pytest.raises(ValueError):
        matrix_to_rotation_6d(torch.zeros(2, 3))


def test_body_joints_equal_the_body_models_joints(anny_body):
    joints_model = BodyJoints(anny_body)
    rng = np.random.default_rng(0)
    bones = torch.tensor(nbf_data.sample_bone_poses(anny_body, rng, 3), dtype=torch.float32)
    shapes = torch.tensor(rng.uniform(0.3, 0.7, (3, 6)), dtype=torch.float32)
    names = anny_body.joint_names
    full = torch.zeros(3, anny_body.num_joints, 3)
    full[:, [names.index(b) for b in nbf_data.NBF_BONES]] = bones
    with torch.no_grad():
        expected = anny_body(full.reshape(3, -1), shapes).joints[:, [names.index(j) for j in nbf_data.NBF_JOINTS]]
        got = joints_model(axis_angle_to_matrix(bones), shapes)
    assert torch.allclose(got, expected, atol=2e-5)
    assert len(joints_model.sub_parents) < anny_body.num_joints  # the chain is pruned
    assert not any(k.startswith("body_joints") for k in NBFNetwork(joints_model).state_dict())  # no body buffers saved
    with pytest.raises(ValueError, match="bone_rotations"):
        joints_model(torch.eye(3).expand(3, 4, 3, 3), shapes)
    with pytest.raises(ValueError, match="shapes"):
        joints_model(axis_angle_to_matrix(bones), shapes[:, :5])


def test_network_output_shapes_and_gradients_reach_the_image_through_the_body(anny_body):
    torch.manual_seed(0)
    net = NBFNetwork(BodyJoints(anny_body), resolution=32, width=8, hidden=32).eval()
    images = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = net(images)
    n, J = len(nbf_data.NBF_BONES), len(nbf_data.NBF_JOINTS)
    assert out.bone_rotations.shape == (2, n, 3, 3) and out.global_rotation.shape == (2, 3, 3)
    assert out.shapes.shape == (2, 6) and out.camera.shape == (2, 3)
    assert out.joints3d.shape == (2, J, 3) and out.joints2d.shape == (2, J, 2)
    assert out.bone_axis_angle().shape == (2, n, 3)
    assert torch.allclose(out.joints3d[:, nbf_data.NBF_JOINTS.index("root")], torch.zeros(2, 3))
    # a loss on the 3D joints only: its gradient goes through the kinematics to the shape outputs and the image
    net.zero_grad()
    out.joints3d.square().sum().backward()
    shape_rows = slice(6 * (n + 1), 6 * (n + 1) + 6)
    assert net.head.weight.grad[shape_rows].abs().sum() > 0
    assert images.grad is not None and images.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="images"):
        net(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        NBFNetwork(BodyJoints(anny_body), resolution=40)


def test_losses_and_mpjpe_known_answers(anny_body):
    target = torch.zeros(2, 4, 3)
    pred = target.clone()
    pred[:, 1:] += torch.tensor([0.0, 0.003, 0.004])  # 5 mm on 3 of 4 joints, root exact
    assert torch.allclose(mpjpe_mm(pred, target), torch.full((2,), 3.75))
    shifted = pred + torch.tensor([1.0, 2.0, 3.0])  # root alignment removes a translation
    assert torch.allclose(mpjpe_mm(shifted, target), torch.full((2,), 3.75), atol=1e-4)
    with pytest.raises(ValueError):
        mpjpe_mm(pred[:, :3], target)


# --- data, training, checkpoints ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_dataset(anny_body):
    return nbf_data.generate_dataset(anny_body, nbf_data.NBFDataConfig(count=32, resolution=32, seed=1), progress=False)


def test_dataset_ground_truth_is_consistent(small_dataset, anny_body, tmp_path):
    d = small_dataset
    assert d.parts.shape == (32, 32, 32) and d.rgb.shape == (32, 32, 32, 3) and d.parts.max() < nbf_parts.NUM_LABELS
    assert (d.parts > 0).mean() > 0.05
    names = anny_body.joint_names
    full = torch.zeros(4, anny_body.num_joints, 3)
    full[:, [names.index(b) for b in nbf_data.NBF_BONES]] = torch.from_numpy(d.bone_poses[:4])
    with torch.no_grad():
        out = anny_body(full.reshape(4, -1), torch.from_numpy(d.shapes[:4]), torch.from_numpy(d.Rh[:4]))
    world = out.joints[:, [names.index(j) for j in nbf_data.NBF_JOINTS]].double().numpy()
    for i in range(4):
        cam = world[i] @ d.R[i].T.astype(np.float64) + d.T[i]
        uv = cam[:, :2] / cam[:, 2:] * d.K[i, 0, 0] + d.K[i, :2, 2]
        assert np.allclose(2 * (uv + 0.5) / 32 - 1, d.joints2d[i], atol=1e-4)
        assert np.allclose(cam - cam[0], d.joints3d[i], atol=1e-5)
        R_h = axis_angle_to_matrix(torch.from_numpy(d.Rh[i]).double()).numpy()
        body_rel = (world[i] - world[i, 0]) @ R_h  # undo Rh: the body frame
        assert np.allclose(body_rel @ d.global_rotation[i].T.astype(np.float64), d.joints3d[i], atol=1e-5)
    assert np.all(np.abs(d.joints2d) < 1.0)  # the crop holds the whole body
    path = d.save(tmp_path / "d.npz")
    again = nbf_data.NBFDataset.load(path)
    assert np.array_equal(again.parts, d.parts) and np.array_equal(again.joints3d, d.joints3d)
    a, b = (nbf_data.generate_dataset(anny_body, nbf_data.NBFDataConfig(count=2, resolution=16, seed=5), progress=False)
            for _ in range(2))  # fmt: skip
    assert np.array_equal(a.parts, b.parts) and np.array_equal(a.rgb, b.rgb)  # deterministic


def test_tiny_training_run_lowers_the_loss_and_checkpoints_round_trip(small_dataset, anny_body, tmp_path):
    config = nbf_train.NBFTrainConfig(input_kind="segmentation", steps=60, batch=16, lr=2e-3, width=8, hidden=64,
                                      checkpoint_every=30)  # fmt: skip
    result = nbf_train.train_nbf(small_dataset, anny_body, config, checkpoint=tmp_path / "w.pt", progress=False)
    losses = np.array([row[1] for row in result.history])
    assert losses[-10:].mean() < 0.7 * losses[:5].mean()
    model, loaded_config = nbf_train.load_nbf(tmp_path / "w.pt", anny_body)
    assert loaded_config == config
    a = nbf_train.predict(result.model, small_dataset.subset(slice(0, 4)), "segmentation").joints3d
    b = nbf_train.predict(model, small_dataset.subset(slice(0, 4)), "segmentation").joints3d
    assert torch.allclose(a, b)
    assert nbf_train.evaluate_mpjpe(model, small_dataset, "segmentation").shape == (32,)
    with pytest.raises(ValueError, match="input_kind"):
        nbf_train.NBFTrainConfig(input_kind="depth")
    with pytest.raises(ValueError, match="kind"):
        nbf_train.network_input(small_dataset, [0], "depth")
    with pytest.raises(FileNotFoundError):
        nbf_train.load_nbf(tmp_path / "missing.pt", anny_body)
    targets = nbf_train.dataset_targets(small_dataset, [0, 1])
    out = model(nbf_train.network_input(small_dataset, [0, 1, 2], "segmentation"))
    with pytest.raises(ValueError, match="differ"):
        nbf_losses(out, targets)


def test_data_guards():
    with pytest.raises(ValueError):
        nbf_data.NBFDataConfig(count=0)
    with pytest.raises(ValueError, match="empty box"):
        nbf_data.crop_intrinsics(np.zeros(2), np.zeros(2), 64, 1.2)
    camera = Camera(K=np.diag([50.0, 50.0, 1.0]), R=np.eye(3), T=np.zeros(3), D=np.zeros(5), width=64, height=64)
    with pytest.raises(ValueError, match="box_uv"):
        nbf_data.crop_camera(camera, [10, 10, 5, 20], 32)


# --- the fit hook -----------------------------------------------------------------------------------
def test_mean_rotation_and_combine_views_known_answer():
    R_true = _random_rotations(1, seed=5)[0]
    bones_true = _random_rotations(15, seed=6)
    cams = _random_rotations(4, seed=7)
    G = cams @ R_true  # what a perfect network would predict in each view
    noise = axis_angle_to_matrix(0.02 * torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8)))
    world = cams.transpose(1, 2) @ G
    bones, Rh = nbf_init.combine_views(bones_true.expand(4, -1, -1, -1) @ noise[:, None], world)
    assert np.allclose(axis_angle_to_matrix(torch.tensor(Rh, dtype=torch.float64)), R_true, atol=1e-5)
    assert (axis_angle_to_matrix(torch.from_numpy(bones).double()) - bones_true).abs().max() < 0.03
    flip = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    mean = nbf_init.mean_rotation(torch.stack([R_true, R_true @ axis_angle_to_matrix(torch.tensor([0.2, 0, 0.0]).double())]))
    assert torch.allclose(mean, R_true @ axis_angle_to_matrix(torch.tensor([0.1, 0, 0.0]).double()), atol=1e-9)
    assert torch.det(nbf_init.mean_rotation((flip @ R_true)[None])) > 0
    with pytest.raises(ValueError):
        nbf_init.combine_views(bones_true, world)


def test_crop_image_and_mask_box_known_answer():
    K = np.array([[40.0, 0, 31.5], [0, 40.0, 31.5], [0, 0, 1]])
    camera = Camera(K=K, R=np.eye(3), T=np.zeros(3), D=np.zeros(5), width=64, height=64)
    v, u = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    image = np.stack([u * 3, v * 3, np.zeros_like(u)], -1).astype(np.uint8)  # pixel value = 3 x coordinate
    mask = np.zeros((64, 64), bool)
    mask[20:40, 10:30] = True
    box = nbf_init.mask_box(mask)
    assert np.array_equal(box, [9.5, 19.5, 29.5, 39.5])
    crop = nbf_data.crop_camera(camera, box, 16, factor=1.0)
    out = nbf_init.crop_image(image, camera, crop)
    # crop pixel (i, j) sees original u = 9.5 + (j + 0.5) * 20 / 16 - 0.5... the same ray: u = cx + f x
    jj, ii = np.meshgrid(np.arange(16), np.arange(16))
    u_expected = 9.5 + (jj + 0.5) * 20 / 16
    v_expected = 19.5 + (ii + 0.5) * 20 / 16
    assert np.abs(out[..., 0] - 3 * u_expected).max() <= 1.0 and np.abs(out[..., 1] - 3 * v_expected).max() <= 1.0
    assert np.array_equal(nbf_init.crop_image(image.astype(np.float32) / 255.0, camera, crop), out)  # float [0, 1] too
    assert nbf_init.mask_box(np.zeros((8, 8), bool)) is None
    with pytest.raises(ValueError):
        nbf_init.crop_image(image[:10], camera, crop)


def test_initial_global_with_given_rotation_recovers_translation(tiny_capture, anny_body):
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.keypoints import anny_keypoint_regressor, keypoints2d_from_points
    from neuralbody.fitting.optimize import FitConfig, SequenceFitter

    capture = read_capture(tiny_capture)
    regressor = anny_keypoint_regressor()
    fitter = SequenceFitter(anny_body, regressor, capture.cameras, FitConfig())
    params = capture.load_params(3)
    points = regressor(torch.from_numpy(capture.load_vertices(3))).numpy()
    _, triangulation = fitter.prepare(keypoints2d_from_points(capture.cameras, points))
    names = anny_body.joint_names
    poses = torch.from_numpy(params["poses"].reshape(-1, 3)).float()
    subset = poses[[names.index(b) for b in fitter.config.bones]]
    Rh, Th = fitter.initial_global(subset, anny_body.default_shapes(1), triangulation, Rh=params["Rh"].reshape(3))
    assert np.allclose(Rh.numpy(), params["Rh"].reshape(3)) and np.abs(Th.numpy() - params["Th"].reshape(3)).max() < 0.01
    start = fitter._start(3, torch.zeros_like(subset), anny_body.default_shapes(1), triangulation,
                          lambda frame: (subset.numpy(), params["Rh"].reshape(3)))  # fmt: skip
    assert torch.allclose(start[0], subset) and np.abs(start[2].numpy() - params["Th"].reshape(3)).max() < 0.01
    # a guess that cannot be used (NaN) falls back to the default start: the frame is still fitted
    fitter = SequenceFitter(anny_body, regressor, capture.cameras,
                            FitConfig(fit_shape=False, silhouette_weight=0.0, pose_iterations=5))  # fmt: skip
    keypoints = keypoints2d_from_points(capture.cameras, points)
    nan_guess = lambda frame: (np.full((len(fitter.config.bones), 3), np.nan), np.zeros(3))  # noqa: E731
    result = fitter.fit_sequence([3], lambda frame: keypoints, None, progress=False, initial_guess=nan_guess)
    assert 3 in result.fits and not result.skipped


def test_nbf_initial_guess_and_fit_cli(tiny_capture, anny_body, tmp_path):
    from neuralbody.cli.main import main
    from neuralbody.data.capture import read_capture
    from neuralbody.fitting.optimize import DEFAULT_BONES

    capture = read_capture(tiny_capture)
    config = nbf_train.NBFTrainConfig(input_kind="rgb", width=8, hidden=32)
    torch.manual_seed(0)  # an untrained network; some random ones send the fit's first stage off (then it falls back)
    model = nbf_train.make_network(anny_body, config, 32).eval()
    guess = nbf_init.make_initial_guess(capture, model, "rgb", DEFAULT_BONES)
    bones, Rh = guess(0)
    assert bones.shape == (len(DEFAULT_BONES), 3) and Rh.shape == (3,) and np.isfinite(bones).all()
    assert guess(0) is guess(0)  # cached per frame
    with pytest.raises(ValueError, match="RGB"):
        nbf_init.make_initial_guess(capture, model, "segmentation", DEFAULT_BONES)
    nbf_train.save_checkpoint(tmp_path / "w.pt", model, None, 0, config)
    root = tmp_path / "capture"
    shutil.copytree(tiny_capture, root)
    argv = ["fit", str(root), "--from-gt-noise", "0", "--frames", "0:1", "--iterations", "10", "--no-shape",
            "--no-overlays", "--no-silhouette", "--init", "nbf"]  # fmt: skip
    assert main(argv) != 0  # no weights given: a clear error, nothing written
    assert not (root / "before_fit").exists()
    assert main([*argv, "--nbf-weights", str(tmp_path / "w.pt")]) == 0
    fitted, truth = np.load(root / "vertices" / "0.npy"), np.load(root / "before_fit" / "vertices" / "0.npy")
    assert np.linalg.norm(fitted - truth, axis=1).mean() < 0.05
