"""SMPL from a model file the user supplies (.pkl or .npz), read without chumpy.

SMPL (Loper et al. 2015), with ``beta`` the first 10 shape coefficients and ``theta`` 24
axis-angle joint rotations (root first):

    v_shaped = v_template + shapedirs[..., :10] beta                    (V, 3)
    J        = J_regressor v_shaped                                     (24, 3)
    v_posed  = v_shaped + posedirs vec(R_1 - I, ..., R_23 - I)          (pose blend shapes, 207 features)
    G_j      = forward kinematics of (J, R(theta)) (see :mod:`neuralbody.body.lbs`)
    x_body   = sum_j w_vj G_j [v_posed; 1],       x_world = R(Rh) x_body + Th.

Units: metres, radians; the frame is the model file's (SMPL: y up, facing +z).
``BodyOutput.rest_vertices`` is ``v_shaped`` (no pose blend shapes), so for SMPL
``LBS(rest_vertices, bone_transforms)`` differs from ``vertices`` by the pose correctives.

The official SMPL pickles hold ``chumpy`` objects (``shapedirs``, sometimes ``weights`` or
``J``) and a ``scipy.sparse`` ``J_regressor``. :func:`load_smpl_file` reads them with a
restricted unpickler that maps every ``chumpy`` class to a stand-in yielding the stored array,
allows numpy and scipy.sparse, and refuses anything else.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from neuralbody.body import lbs
from neuralbody.body.base import BodyModel, BodyOutput

NUM_JOINTS = 24
SHAPE_DIM = 10
JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_REGISTRATION_HINT = (
    "SMPL needs a free registration at https://smpl.is.tue.mpg.de (download e.g. "
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl); Anny (load_body_model('anny')) is the free default."
)


@dataclasses.dataclass
class SmplData:
    """The arrays of an SMPL model file (V vertices, S >= 10 shape directions, F faces).

    Attributes:
        v_template: (V, 3) float64 template vertices, metres.
        shapedirs: (V, 3, S) float64 shape blend shapes, metres per unit coefficient.
        posedirs: (V, 3, 207) float64 pose blend shapes, metres per unit of (R - I) entries.
        J_regressor: (24, V) float64 dense joint regressor.
        weights: (V, 24) float64 skinning weights.
        parents: (24,) int64 parent of each joint, -1 for the root.
        faces: (F, 3) int64 triangles.
        path: the file read.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    path: str = ""


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling; keeps the pickled state."""

    def __init__(self, *args, **kwargs):
        self.state = {"x": args[0]} if args else {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_array(self) -> np.ndarray:
        if "x" not in self.state:
            raise ValueError(f"chumpy object of type {type(self).__name__} holds no stored array 'x'")
        return np.asarray(_to_plain(self.state["x"]))


_ALLOWED_PREFIXES = ("numpy", "scipy.sparse")
_ALLOWED_GLOBALS = {
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("__builtin__", "set"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("_codecs", "encode"),
}


class _SmplUnpickler(pickle.Unpickler):
    """Unpickler allowing numpy, scipy.sparse and builtins; chumpy classes become stand-ins."""

    def find_class(self, module, name):
        if module == "chumpy" or module.startswith("chumpy."):
            return type(name, (_ChumpyStandIn,), {})
        if (module, name) in _ALLOWED_GLOBALS or module.startswith(_ALLOWED_PREFIXES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an SMPL pickle")


def _to_plain(value):
    if isinstance(value, _ChumpyStandIn):
        return value.to_array()
    if hasattr(value, "toarray") and hasattr(value, "tocsr"):  # scipy sparse
        return value.toarray()
    return value


def _read_raw(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    if suffix in (".pkl", ".pickle"):
        data = path.read_bytes()
        try:
            raw = _SmplUnpickler(io.BytesIO(data), encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise ValueError(f"{path}: cannot read SMPL pickle ({error})") from error
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a pickled dict of SMPL arrays, got {type(raw).__name__}")
        return raw
    raise ValueError(f"{path}: unsupported SMPL model file type {suffix!r}; give a .pkl or .npz file")


def load_smpl_file(path: str | Path) -> SmplData:
    """Read an SMPL model file (.pkl, chumpy or not, or .npz) into :class:`SmplData`.

    Raises:
        FileNotFoundError: the file is missing (the message says where to get SMPL).
        ValueError: a key is missing or has the wrong shape (the message names file and key).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"SMPL model file not found: {path}. {_REGISTRATION_HINT}")
    raw = _read_raw(path)
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise ValueError(
            f"{path}: missing SMPL key(s) {missing}; found {sorted(raw)}. Expected an SMPL model file with "
            f"{list(REQUIRED_KEYS)} (e.g. basicmodel_*_lbs_10_207_0_v1.1.0.pkl from smpl.is.tue.mpg.de)."
        )
    try:
        arrays = {key: np.asarray(_to_plain(raw[key])) for key in REQUIRED_KEYS}
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    v_template = arrays["v_template"].astype(np.float64)
    count = v_template.shape[0] if v_template.ndim == 2 else -1
    expected = {
        "v_template": (count, 3),
        "posedirs": (count, 3, 9 * (NUM_JOINTS - 1)),
        "J_regressor": (NUM_JOINTS, count),
        "weights": (count, NUM_JOINTS),
        "kintree_table": (2, NUM_JOINTS),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape or count < 0:
            raise ValueError(
                f"{path}: SMPL key {key!r} has shape {arrays[key].shape}, expected {shape} (V vertices, 24 joints)"
            )
    shapedirs = arrays["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (count, 3) or shapedirs.shape[2] < SHAPE_DIM:
        raise ValueError(
            f"{path}: SMPL key 'shapedirs' has shape {shapedirs.shape}, expected ({count}, 3, S>={SHAPE_DIM})"
        )
    faces = arrays["f"].astype(np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= count:
        raise ValueError(f"{path}: SMPL key 'f' must be (F, 3) vertex indices in [0, {count}), got shape {faces.shape}")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1  # the root's entry is a large sentinel in the official files
    return SmplData(
        v_template=v_template,
        shapedirs=shapedirs.astype(np.float64),
        posedirs=arrays["posedirs"].astype(np.float64),
        J_regressor=arrays["J_regressor"].astype(np.float64),
        weights=arrays["weights"].astype(np.float64),
        parents=parents,
        faces=faces,
        path=str(path),
    )


class SmplBody(BodyModel):
    """SMPL as a :class:`BodyModel`: buffers from :class:`SmplData`, maths from :mod:`lbs`.

    pose_dim 72 (24 joints x axis-angle, root first), shape_dim 10. The vertex count comes
    from the file; the joint count must be 24. ``joint_names`` are SMPL's standard names.
    """

    name = "smpl"

    def __init__(self, data: SmplData, dtype: torch.dtype = torch.float32):
        super().__init__()
        self._parents = [int(p) for p in data.parents]
        self.register_buffer("v_template", torch.as_tensor(data.v_template, dtype=dtype))
        self.register_buffer("shapedirs", torch.as_tensor(data.shapedirs[:, :, :SHAPE_DIM], dtype=dtype))
        self.register_buffer("posedirs", torch.as_tensor(data.posedirs, dtype=dtype).reshape(-1, 9 * (NUM_JOINTS - 1)))
        self.register_buffer("J_regressor", torch.as_tensor(data.J_regressor, dtype=dtype))
        self.register_buffer("lbs_weights", torch.as_tensor(data.weights, dtype=dtype))
        self.register_buffer("_faces", torch.as_tensor(data.faces, dtype=torch.int64))

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def joint_names(self) -> list[str]:
        return list(JOINT_NAMES)

    @property
    def num_joints(self) -> int:
        return NUM_JOINTS

    @property
    def shape_dim(self) -> int:
        return SHAPE_DIM

    @property
    def faces(self) -> torch.Tensor:
        return self._faces

    @property
    def parents(self) -> list[int]:
        return list(self._parents)

    def forward(self, poses, shapes=None, Rh=None, Th=None) -> BodyOutput:
        """Pose SMPL. poses: (B, 72) radians; shapes: (B, 10); Rh: (B, 3) radians; Th: (B, 3) metres."""
        poses, shapes, Rh, Th = self.check_inputs(poses, shapes, Rh, Th)
        dtype = poses.dtype
        batch = poses.shape[0]
        v_shaped = self.v_template.to(dtype) + torch.einsum("vcs,bs->bvc", self.shapedirs.to(dtype), shapes)
        rest_joints = torch.einsum("jv,bvc->bjc", self.J_regressor.to(dtype), v_shaped)
        rotations = lbs.axis_angle_to_matrix(poses.reshape(batch, NUM_JOINTS, 3))
        eye = torch.eye(3, dtype=dtype, device=poses.device)
        pose_features = (rotations[:, 1:] - eye).reshape(batch, -1)  # (B, 207)
        v_posed = v_shaped + (pose_features @ self.posedirs.to(dtype).T).reshape(batch, -1, 3)
        kinematics = lbs.batch_rigid_transform(rest_joints, rotations, self._parents)
        world = lbs.global_transform(Rh, Th)[:, None] @ kinematics.bone_transforms
        vertices = lbs.linear_blend_skinning(v_posed, self.lbs_weights.to(dtype), world)
        return BodyOutput(
            vertices=vertices,
            joints=lbs.apply_global(kinematics.posed_joints, Rh, Th),
            bone_transforms=world,
            rest_vertices=v_shaped,
            rest_joints=rest_joints,
            faces=self._faces,
            skinning_weights=self.lbs_weights.to(dtype),
        )


def load_smpl(model_path: str | Path, device=None, dtype: torch.dtype = torch.float32) -> SmplBody:
    """An :class:`SmplBody` from an SMPL model file (.pkl or .npz) on ``device``."""
    return SmplBody(load_smpl_file(model_path), dtype=dtype).to(device or "cpu")
