"""SMPL body model: file loading (npz, chumpy pickle) and posing against an independent numpy SMPL."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from neuralbody.body import load_body_model
from neuralbody.body.smpl import load_smpl, load_smpl_file

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
NUM_VERTS = 50


class Ch:
    """Mimics chumpy.ch.Ch's pickled form: a plain object whose state dict holds 'x'."""

    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {}, "_make_dense": False}


def _fake_smpl_arrays(seed=0):
    rng = np.random.default_rng(seed)
    v_template = rng.normal(size=(NUM_VERTS, 3)) * 0.3
    regressor = rng.random((24, NUM_VERTS)) * (rng.random((24, NUM_VERTS)) < 0.2)
    regressor[:, 0] += 1e-3
    weights = rng.random((NUM_VERTS, 24)) ** 4
    kintree = np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], dtype=np.int64)
    return dict(
        v_template=v_template,
        shapedirs=rng.normal(size=(NUM_VERTS, 3, 12)) * 0.02,
        posedirs=rng.normal(size=(NUM_VERTS, 3, 207)) * 0.01,
        J_regressor=regressor / regressor.sum(1, keepdims=True),
        weights=weights / weights.sum(1, keepdims=True),
        kintree_table=kintree,
        f=rng.integers(0, NUM_VERTS, size=(96, 3)),
    )


@pytest.fixture(scope="module")
def smpl_files(tmp_path_factory):
    """The same random SMPL-like model as .npz and as a chumpy-style .pkl (sparse regressor)."""
    arrays = _fake_smpl_arrays()
    root = tmp_path_factory.mktemp("smpl")
    np.savez(root / "model.npz", **arrays)
    pickled = dict(arrays)
    pickled["shapedirs"] = Ch(arrays["shapedirs"])
    pickled["weights"] = Ch(arrays["weights"])
    pickled["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    pickled["bs_style"] = "lbs"
    fake_ch = types.ModuleType("chumpy.ch")
    fake_ch.Ch = Ch
    saved_module = Ch.__module__
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake_ch
    Ch.__module__ = "chumpy.ch"
    try:
        for protocol in (0, 2):
            with open(root / f"model_p{protocol}.pkl", "wb") as handle:
                pickle.dump(pickled, handle, protocol=protocol)
    finally:
        Ch.__module__ = saved_module
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    return arrays, root


def numpy_smpl(arrays, pose, betas, Rh, Th):
    """Independent SMPL: numpy float64, scipy rotations, per-joint and per-vertex loops."""
    v_shaped = arrays["v_template"] + arrays["shapedirs"][:, :, :10] @ betas
    joints = arrays["J_regressor"] @ v_shaped
    rots = Rotation.from_rotvec(pose.reshape(24, 3)).as_matrix()
    v_posed = v_shaped + arrays["posedirs"] @ (rots[1:] - np.eye(3)).reshape(-1)
    world = []
    for j in range(24):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        parent = SMPL_PARENTS[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0)
        world.append(local if parent < 0 else world[parent] @ local)
    skin = []
    for j in range(24):
        unbind = np.eye(4)
        unbind[:3, 3] = -joints[j]
        skin.append(world[j] @ unbind)
    out = np.zeros_like(v_posed)
    for v in range(v_posed.shape[0]):
        blend = sum(arrays["weights"][v, j] * skin[j] for j in range(24))
        out[v] = (blend @ np.append(v_posed[v], 1.0))[:3]
    global_rot = Rotation.from_rotvec(Rh)
    posed_joints = np.stack([w[:3, 3] for w in world])
    return global_rot.apply(out) + Th, global_rot.apply(posed_joints) + Th


@pytest.mark.parametrize("name", ["model.npz", "model_p0.pkl", "model_p2.pkl"])
def test_smpl_matches_independent_numpy(smpl_files, name):
    arrays, root = smpl_files
    assert "chumpy" not in sys.modules
    if name.endswith(".pkl"):
        assert b"chumpy.ch" in (root / name).read_bytes() and b"csc_matrix" in (root / name).read_bytes()
    body = load_smpl(root / name, dtype=torch.float64)
    assert (body.num_vertices, body.num_joints, body.pose_dim, body.shape_dim) == (NUM_VERTS, 24, 72, 10)
    rng = np.random.default_rng(1)
    poses, betas = rng.normal(size=(3, 72)) * 0.5, rng.normal(size=(3, 10))
    Rh, Th = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    out = body(*(torch.from_numpy(a) for a in (poses, betas, Rh, Th)))
    for b in range(3):
        vertices, joints = numpy_smpl(arrays, poses[b], betas[b], Rh[b], Th[b])
        np.testing.assert_allclose(out.vertices[b].numpy(), vertices, atol=1e-10)
        np.testing.assert_allclose(out.joints[b].numpy(), joints, atol=1e-10)
    np.testing.assert_array_equal(body.faces.numpy(), arrays["f"])
    assert body.parents == SMPL_PARENTS


def test_smpl_float32_close_to_numpy(smpl_files):
    arrays, root = smpl_files
    body = load_body_model("smpl", model_path=root / "model_p2.pkl")
    rng = np.random.default_rng(2)
    poses, betas, Rh, Th = rng.normal(size=72) * 0.5, rng.normal(size=10), rng.normal(size=3), rng.normal(size=3)
    out = body(*(torch.from_numpy(a[None]).float() for a in (poses, betas, Rh, Th)))
    vertices, _ = numpy_smpl(arrays, poses, betas, Rh, Th)
    assert out.vertices.dtype == torch.float32
    np.testing.assert_allclose(out.vertices[0].numpy(), vertices, atol=1e-5)


def test_smpl_rest_pose_rotation_and_translation(smpl_files):
    _, root = smpl_files
    body = load_smpl(root / "model.npz", dtype=torch.float64)
    betas = torch.from_numpy(np.random.default_rng(3).normal(size=(1, 10)))
    rest = body(torch.zeros(1, 72, dtype=torch.float64), betas)
    np.testing.assert_allclose(rest.vertices.numpy(), rest.rest_vertices.numpy(), atol=1e-12)
    Rh = torch.tensor([[0.3, -1.1, 0.7]], dtype=torch.float64)
    turned = body(torch.zeros(1, 72, dtype=torch.float64), betas, Rh=Rh)
    expected = Rotation.from_rotvec(Rh[0].numpy()).apply(rest.vertices[0].numpy())
    np.testing.assert_allclose(turned.vertices[0].numpy(), expected, atol=1e-12)
    Th = torch.tensor([[0.5, -2.0, 0.25]], dtype=torch.float64)
    moved = body(torch.zeros(1, 72, dtype=torch.float64), betas, Th=Th)
    np.testing.assert_allclose((moved.vertices - rest.vertices).numpy(), Th.expand(1, NUM_VERTS, 3).numpy(), atol=1e-12)
    weights = rest.skinning_weights
    assert bool((weights >= 0).all()) and torch.allclose(weights.sum(1), torch.ones(NUM_VERTS, dtype=torch.float64))


def test_smpl_input_guards(smpl_files):
    _, root = smpl_files
    body = load_smpl(root / "model.npz")
    with pytest.raises(ValueError, match="poses"):
        body(torch.zeros(1, 69))
    bad = torch.zeros(1, 72)
    bad[0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        body(bad)
    with pytest.raises(ValueError, match="shapes"):
        body(torch.zeros(2, 72), torch.zeros(2, 9))
    with pytest.raises(ValueError, match="Rh"):
        body(torch.zeros(2, 72), Rh=torch.zeros(1, 3))


def test_smpl_file_errors(smpl_files, tmp_path):
    arrays, _ = smpl_files
    incomplete = {k: v for k, v in arrays.items() if k != "posedirs"}
    np.savez(tmp_path / "incomplete.npz", **incomplete)
    with pytest.raises(ValueError, match=r"incomplete\.npz.*posedirs"):
        load_smpl_file(tmp_path / "incomplete.npz")
    wrong = dict(arrays, weights=arrays["weights"][:, :23])
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(ValueError, match="weights"):
        load_smpl_file(tmp_path / "wrong.npz")
    with pytest.raises(FileNotFoundError, match="smpl.is.tue.mpg.de"):
        load_smpl_file(tmp_path / "absent.pkl")
    with pytest.raises(ValueError, match="smpl.is.tue.mpg.de"):
        load_body_model("smpl")
    with pytest.raises(ValueError, match="unknown body model"):
        load_body_model("mano")
    # A pickle that would call an arbitrary global is refused, not executed.
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match="refusing"):
        load_smpl_file(tmp_path / "evil.pkl")
