"""Anny body model: rest pose, world convention, global motion, skinning, and agreement with anny itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from neuralbody.body import lbs

pytestmark = pytest.mark.anny


def _random_inputs(batch, seed, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    poses = torch.randn(batch, 312, generator=gen) * scale
    shapes = torch.rand(batch, 6, generator=gen)
    return poses, shapes


def test_interface_and_weights(anny_body):
    body = anny_body
    assert (body.num_vertices, body.num_joints, body.pose_dim, body.shape_dim) == (13718, 104, 312, 6)
    assert len(body.joint_names) == 104 and body.joint_names[0] == "root" and body.parents[0] == -1
    weights = body.lbs_weights
    assert bool((weights >= 0).all())
    torch.testing.assert_close(weights.sum(1), torch.ones(body.num_vertices), atol=1e-6, rtol=0)
    faces = body.faces
    assert faces.dtype == torch.int64 and faces.shape[1] == 3
    assert int(faces.min()) == 0 and int(faces.max()) == body.num_vertices - 1


def test_rest_pose_reproduces_rest_vertices(anny_body):
    _, shapes = _random_inputs(2, seed=0)
    out = anny_body(torch.zeros(2, 312), shapes)
    assert out.vertices.dtype == torch.float32
    torch.testing.assert_close(out.vertices, out.rest_vertices, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.joints, out.rest_joints, atol=1e-6, rtol=0)
    eye = torch.eye(4).expand(2, 104, 4, 4)
    torch.testing.assert_close(out.bone_transforms, eye, atol=1e-6, rtol=0)


def test_world_convention_z_up_feet_on_floor_facing_minus_y(anny_body):
    names = anny_body.joint_names
    shapes = torch.tensor([[0.5] * 6, [0.0, 0.3, 0.2, 0.9, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]])
    out = anny_body(torch.zeros(3, 312), shapes)
    z = out.vertices[..., 2]
    assert float(z.min(1).values.abs().max()) < 0.01  # soles at z = 0 within 1 cm for all
    assert 1.5 < float(z[0].max()) < 1.8  # mean person ~1.6 m tall, head up
    heads = out.rest_joints
    assert bool((heads[:, names.index("head"), 2] > heads[:, names.index("foot.L"), 2] + 0.5).all())
    assert bool((heads[:, names.index("upperleg01.L"), 0] > 0).all())  # left is +x
    assert bool((heads[:, names.index("eye.L"), 1] < heads[:, names.index("head"), 1] - 0.05).all())  # faces -y
    assert bool((heads[:, names.index("toe1-1.L"), 1] < heads[:, names.index("foot.L"), 1] - 0.05).all())


def test_global_rotation_and_translation(anny_body):
    poses, shapes = _random_inputs(2, seed=1)
    base = anny_body(poses, shapes)
    Rh = torch.tensor([[0.2, -0.4, 1.3], [0.0, 0.0, -2.5]])
    turned = anny_body(poses, shapes, Rh=Rh)
    for b in range(2):
        expected = Rotation.from_rotvec(Rh[b].double().numpy()).apply(base.vertices[b].double().numpy())
        np.testing.assert_allclose(turned.vertices[b].numpy(), expected, atol=2e-5)
    Th = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.3, 0.0]])
    moved = anny_body(poses, shapes, Th=Th)
    torch.testing.assert_close(moved.vertices, base.vertices + Th[:, None], atol=2e-5, rtol=0)
    torch.testing.assert_close(moved.joints, base.joints + Th[:, None], atol=2e-5, rtol=0)


def test_root_rotation_turns_body_about_root_head(anny_body):
    poses = torch.zeros(1, 312)
    poses[0, 2] = 0.7  # root bone about +z
    out = anny_body(poses)
    rest = anny_body(torch.zeros(1, 312))
    pivot = rest.rest_joints[0, 0].double().numpy()
    expected = Rotation.from_rotvec([0, 0, 0.7]).apply(rest.vertices[0].double().numpy() - pivot) + pivot
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=2e-5)


def test_lbs_with_output_transforms_reproduces_vertices(anny_body):
    poses, shapes = _random_inputs(2, seed=2, scale=0.5)
    Rh, Th = torch.tensor([[0.1, 0.2, -0.3], [1.0, 0.0, 0.0]]), torch.tensor([[0.4, -0.1, 0.0], [0.0, 0.0, 1.0]])
    out = anny_body(poses.double(), shapes.double(), Rh.double(), Th.double())
    assert out.vertices.dtype == torch.float64
    skinned = lbs.linear_blend_skinning(out.rest_vertices, out.skinning_weights, out.bone_transforms)
    torch.testing.assert_close(skinned, out.vertices, atol=1e-10, rtol=0)
    # Oracle on a vertex subset, and joints = bone transforms applied to rest heads.
    subset = torch.arange(0, anny_body.num_vertices, 997)
    slow = lbs.reference_linear_blend_skinning(
        out.rest_vertices[:, subset], out.skinning_weights[subset], out.bone_transforms
    )
    torch.testing.assert_close(slow, out.vertices[:, subset], atol=1e-10, rtol=0)
    heads = (out.bone_transforms[..., :3, :3] @ out.rest_joints[..., None])[..., 0] + out.bone_transforms[..., :3, 3]
    torch.testing.assert_close(heads, out.joints, atol=1e-10, rtol=0)


def test_agrees_with_native_anny(anny_body):
    anny = pytest.importorskip("anny")
    native = anny.Anny(skinning_method="lbs")
    poses, shapes = _random_inputs(2, seed=3, scale=0.4)
    ours = anny_body(poses.double(), shapes.double())
    offset = anny_body.floor_offset.double()
    rest = native.get_rest_model(native._get_phenotype_blendshape_coefficients(
        shapes.double(), torch.zeros(2, 0, dtype=torch.float64), torch.zeros(2, 0, dtype=torch.float64)))
    # Anny's 'world' parameterisation takes posed bone poses W = T P, T being our transform in Anny's frame.
    shift = torch.eye(4, dtype=torch.float64)
    shift[:3, 3] = offset
    transforms_native = torch.linalg.inv(shift) @ ours.bone_transforms @ shift
    posed = native(pose_parameters=transforms_native @ rest["rest_bone_poses"], phenotype_kwargs=shapes.double(),
                   pose_parameterization="world")
    # Tolerances reflect the adapter's float32 buffers.
    torch.testing.assert_close(ours.rest_vertices, posed["rest_vertices"] + offset, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.rest_joints, rest["rest_bone_heads"] + offset, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.vertices, posed["vertices"] + offset, atol=1e-6, rtol=0)


def test_gradients_reach_poses_and_shapes(anny_body):
    poses, shapes = _random_inputs(1, seed=4)
    poses.requires_grad_()
    shapes.requires_grad_()
    anny_body(poses, shapes).vertices.square().sum().backward()
    assert torch.isfinite(poses.grad).all() and poses.grad.abs().sum() > 0
    assert torch.isfinite(shapes.grad).all() and shapes.grad.abs().sum() > 0


def test_input_guards(anny_body):
    with pytest.raises(ValueError, match="poses"):
        anny_body(torch.zeros(1, 72))
    shapes = torch.full((1, 6), 0.5)
    shapes[0, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        anny_body(torch.zeros(1, 312), shapes)
    with pytest.raises(ValueError, match="shapes"):
        anny_body(torch.zeros(1, 312), torch.zeros(1, 10))


def test_first_build_notice_and_cache_detection(tmp_path, monkeypatch, caplog):
    pytest.importorskip("anny")
    import anny.paths

    from neuralbody.body import anny as anny_adapter

    real_file = anny_adapter.anny_cache_file()
    previous = anny.paths.get_anny_cache_path()
    anny.paths.set_anny_cache_path(tmp_path)
    try:
        assert not anny_adapter.anny_cache_exists()
        built = []
        monkeypatch.setattr(anny, "Anny", lambda **kwargs: built.append(kwargs) or "model")
        with caplog.at_level("INFO", logger="neuralbody.body.anny"):
            assert anny_adapter.build_native_anny() == "model"
        assert "Building the Anny body model once" in caplog.text and str(tmp_path) in caplog.text
        cache_file = anny_adapter.anny_cache_file()
        assert cache_file.parent.parent == tmp_path and cache_file.name == real_file.name
        cache_file.parent.mkdir(parents=True)
        cache_file.write_bytes(b"")
        assert anny_adapter.anny_cache_exists()
        caplog.clear()
        with caplog.at_level("INFO", logger="neuralbody.body.anny"):
            anny_adapter.build_native_anny()
        assert "Building" not in caplog.text and len(built) == 2
    finally:
        anny.paths.set_anny_cache_path(previous)
