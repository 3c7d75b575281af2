"""Reading a folder of posed meshes with body poses, and posing the body model for its frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuralbody.body.smpl import load_smpl
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.io.errors import InputError
from neuralbody.snarf.frame_pose import world_to_body
from neuralbody.snarf.posed_meshes import read_posed_meshes
from neuralbody.snarf.subject import check_frame, make_subject, prepare_frames
from snarf_toys import write_posed_folder
from tube_body import write_smpl_npz


@pytest.fixture(scope="module")
def tube_smpl(tmp_path_factory):
    path = tmp_path_factory.mktemp("tube_smpl") / "tubes.npz"
    write_smpl_npz(path)
    return path, load_smpl(path)


def _poses(count: int, seed: int = 0) -> torch.Tensor:
    poses = 0.3 * torch.randn(count, 72, generator=torch.Generator().manual_seed(seed))
    poses[:, :3] = 0.0
    return poses


@pytest.fixture()
def folder(tmp_path, tube_smpl):
    _, body = tube_smpl
    Rh = torch.tensor([[0.0, 0.0, 0.5], [0.2, 0.0, -1.0], [0.0, 0.3, 2.0]])
    Th = torch.tensor([[0.1, 0.2, 0.0], [1.0, -0.5, 0.3], [0.0, 0.0, 2.0]])
    meta = {"body_model": "smpl", "frames": {"train": [0, 2], "novel_pose": [2, 3]}}
    return write_posed_folder(tmp_path / "posed", body, _poses(3), torch.zeros(10), Rh, Th, meta)


def test_reader_reads_frames_splits_and_values(folder):
    data = read_posed_meshes(folder)
    assert data.numbers == [0, 1, 2] and data.num_frames == 3
    assert data.body_model == "smpl" and data.splits == {"train": (0, 2), "novel_pose": (2, 3)}
    frame = data.load_frame(1)
    with np.load(folder / "gt_meshes" / "1.npz") as stored:
        assert np.array_equal(frame.vertices.numpy(), stored["vertices"])
        assert frame.faces.dtype == torch.int64 and np.array_equal(frame.faces.numpy(), stored["faces"])
    assert frame.poses.shape == (72,) and frame.Rh.tolist() == pytest.approx([0.2, 0.0, -1.0])
    assert frame.Th.tolist() == pytest.approx([1.0, -0.5, 0.3]) and frame.shapes.shape == (10,)


def test_frames_come_in_numeric_order_and_stray_files_are_ignored(folder):
    (folder / "gt_meshes" / "2.npz").rename(folder / "gt_meshes" / "10.npz")
    (folder / "params" / "2.npy").rename(folder / "params" / "10.npy")
    (folder / "gt_meshes" / "notes.npz").write_bytes(b"")
    (folder / "neuralbody.json").unlink()
    data = read_posed_meshes(folder)
    assert data.numbers == [0, 1, 10] and data.body_model is None and data.splits == {}
    assert data.load_frame(2).number == 10


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "params" / "1.npy").unlink(), "1.npy: not found"),
    (lambda f: np.save(f / "params" / "1.npy", {"poses": np.zeros(72)}, allow_pickle=True), "lacks Rh, Th, shapes"),
    (lambda f: np.savez(f / "gt_meshes" / "1.npz", vertices=np.zeros((3, 3)), faces=np.array([[0, 1, 5]])),
     "outside the 3 vertices"),
    (lambda f: (f / "gt_meshes" / "1.npz").write_bytes(b"not a zip"), "1.npz: not a readable mesh"),
])
def test_damaged_files_raise_one_line_naming_the_file(folder, damage, message):
    damage(folder)
    data = read_posed_meshes(folder)
    with pytest.raises(InputError, match=message) as error:
        data.load_frame(1)
    assert "\n" not in str(error.value) and str(folder) in str(error.value)


def test_a_pickle_that_runs_code_is_refused(folder):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    np.save(folder / "params" / "0.npy", np.array({"poses": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="refused"):
        read_posed_meshes(folder).load_frame(0)


def test_bad_folders_and_splits(tmp_path, folder):
    with pytest.raises(FileNotFoundError):
        read_posed_meshes(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no posed meshes"):
        read_posed_meshes(tmp_path / "empty")
    (folder / "neuralbody.json").write_text(json.dumps({"frames": {"train": [0, 9]}}))
    with pytest.raises(InputError, match=r"frames.train = \[0, 9\] outside the 3 frames"):
        read_posed_meshes(folder)


def test_world_to_body_inverts_the_global_placement():
    points = torch.randn(50, 3, dtype=torch.float64)
    Rh, Th = torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64), torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    world = points @ axis_angle_to_matrix(Rh).T + Th
    assert torch.allclose(world_to_body(world, Rh, Th), points, atol=1e-12)


def test_prepared_frames_put_the_mesh_on_the_body_in_its_body_frame(folder, tube_smpl):
    _, body = tube_smpl
    data = read_posed_meshes(folder)
    subject = make_subject(body, data.load_frame(0).shapes)
    frames = [data.load_frame(i) for i in range(3)]
    for frame in frames:
        check_frame(subject, frame, data.root)
    prepared = prepare_frames(subject, frames)
    for frame, ready in zip(frames, prepared):
        out = body(frame.poses[None], frame.shapes[None])  # no Rh, Th: the body frame
        assert torch.allclose(ready.vertices, out.vertices[0], atol=1e-5)  # the ground truth, moved home
        assert torch.allclose(ready.body_vertices, out.vertices[0], atol=1e-6)
        assert torch.allclose(ready.pose.bone_transforms, out.bone_transforms[0], atol=1e-6)
    other = data.load_frame(1)
    other.shapes = other.shapes + 0.1
    with pytest.raises(InputError, match="differ from the person's"):
        check_frame(subject, other, data.root)
    other.poses = other.poses[:69]
    with pytest.raises(InputError, match="poses has 69 values"):
        check_frame(subject, other, data.root)
