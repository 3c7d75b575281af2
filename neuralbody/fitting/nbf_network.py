"""The Neural Body Fitting network: a small CNN with the body model inside it.

image (B, C, H, W) -> CNN -> [6D rotations of the n bones of :data:`~nbf_data.NBF_BONES` and of the
body's global orientation in the camera frame, 6 phenotypes, weak-perspective camera (s, tx, ty)]
-> body-model kinematics (:class:`BodyJoints`, differentiable) -> 3D joints -> projection.

* 6D rotations (Zhou et al. 2019): the first two columns ``(a1, a2)`` of a rotation matrix;
  back by Gram-Schmidt, ``b1 = a1/|a1|``, ``b2 = (a2 - (b1.a2) b1)/|...|``, ``b3 = b1 x b2``,
  ``R = [b1 b2 b3]`` (columns). Continuous, unlike axis-angle or quaternions.
* Joints: root-relative, camera frame (OpenCV axes), metres:
  ``J_cam = G (J_body - J_body[root])`` with ``G`` the predicted global orientation and
  ``J_body`` the posed joints of Anny in its body frame (Rh = 0) for the predicted bone
  rotations and phenotypes; every other bone stays at its rest rotation.
* 2D: weak perspective in normalised image coordinates, ``uv = s J_cam[:, :2] + (tx, ty)``,
  ``s = exp(raw)`` (about focal / depth of the root in normalised units, ~1 per metre for the
  training crops).

Losses (:func:`nbf_losses`): 3D parameters (L1 on the rotation matrices of the bones and of
the global orientation, L1 on the phenotypes), 3D joints (mean Euclidean error, metres) and 2D
joints (mean Euclidean error, normalised image units).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from neuralbody.body import lbs
from neuralbody.body.base import BodyModel
from neuralbody.fitting.nbf_data import NBF_BONES, NBF_JOINTS, ROOT_JOINT
from neuralbody.geometry.rotations import matrix_to_axis_angle

INPUT_KINDS = ("segmentation", "rgb")


def rotation_6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices from (..., 6) 6D vectors (two columns, Gram-Schmidt)."""
    if x.shape[-1] != 6:
        raise ValueError(f"rotation_6d_to_matrix: expected (..., 6), got {tuple(x.shape)}")
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6D vectors (first two columns) of (..., 3, 3) rotation matrices."""
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"matrix_to_rotation_6d: expected (..., 3, 3), got {tuple(R.shape)}")
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


class BodyJoints(nn.Module):
    """Differentiable joint positions of Anny for a subset of posed bones (the body model in the network).

    Only the ancestors of the requested joints matter, so the kinematic chain is pruned to them
    (the other bones have rest rotations and do not move these joints): rest heads
    ``h(s) = h_template + c(s) H + o`` from the phenotypes ``s`` (Anny's blend-shape coefficients
    ``c``), then forward kinematics (:func:`neuralbody.body.lbs.batch_rigid_transform`). Equal
    to ``body(poses, shapes).joints[:, joints]`` with ``Rh = Th = 0``. Holds a reference to the
    body (not registered: the body's buffers stay out of the network's state dict).
    """

    def __init__(self, body: BodyModel, bones: tuple[str, ...] = NBF_BONES, joints: tuple[str, ...] = NBF_JOINTS):
        super().__init__()
        names = list(getattr(body, "joint_names", []))
        if getattr(body, "name", "") != "anny" or not hasattr(body, "head_blendshapes"):
            raise ValueError(f"BodyJoints: Neural Body Fitting needs the Anny body model, got {body.name!r}")
        missing = [b for b in tuple(bones) + tuple(joints) if b not in names]
        if missing:
            raise ValueError(f"BodyJoints: the body has no bones {missing}")
        parents = body.parents
        keep = set()
        for name in tuple(joints) + tuple(bones):
            j = names.index(name)
            while j >= 0 and j not in keep:
                keep.add(j)
                j = parents[j]
        kept = sorted(keep)  # parents come before children in Anny's order; we re-index either way
        position = {j: k for k, j in enumerate(kept)}
        self.sub_parents = [position[parents[j]] if parents[j] >= 0 else -1 for j in kept]
        self.bones, self.joints = tuple(bones), tuple(joints)
        self.bone_index = [position[names.index(b)] for b in bones]
        self.joint_index = [position[names.index(j)] for j in joints]
        self.root_index = list(joints).index(ROOT_JOINT) if ROOT_JOINT in joints else 0
        self._body = (body,)  # a tuple hides it from nn.Module registration
        kept_t = torch.tensor(kept)
        count = body.template_heads.shape[0]
        heads_bs = body.head_blendshapes.reshape(-1, count, 3)[:, kept_t]
        self.register_buffer("template_heads", body.template_heads[kept_t].clone(), persistent=False)
        self.register_buffer("head_blendshapes", heads_bs.reshape(heads_bs.shape[0], -1).clone(), persistent=False)
        self.register_buffer("floor_offset", body.floor_offset.clone(), persistent=False)

    def forward(self, bone_rotations: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) posed joints, body frame, metres. bone_rotations: (B, n, 3, 3); shapes: (B, 6)."""
        batch = bone_rotations.shape[0]
        if bone_rotations.shape[1:] != (len(self.bones), 3, 3):
            raise ValueError(
                f"BodyJoints: bone_rotations must be (B, {len(self.bones)}, 3, 3), got {tuple(bone_rotations.shape)}"
            )
        if shapes.shape != (batch, 6):
            raise ValueError(f"BodyJoints: shapes must be ({batch}, 6), got {tuple(shapes.shape)}")
        dtype = bone_rotations.dtype
        coeffs = self._body[0].blendshape_coefficients(shapes).to(dtype)
        heads = self.template_heads.to(dtype) + (coeffs @ self.head_blendshapes.to(dtype)).reshape(batch, -1, 3)
        heads = heads + self.floor_offset.to(dtype)
        count = heads.shape[1]
        eye = torch.eye(3, dtype=dtype, device=heads.device).expand(batch, count, 3, 3)
        index = torch.tensor(self.bone_index, device=heads.device)
        rotations = eye.index_copy(1, index, bone_rotations)
        posed = lbs.batch_rigid_transform(heads, rotations, self.sub_parents).posed_joints
        return posed[:, self.joint_index]


@dataclasses.dataclass
class NBFOutput:
    """Network predictions (batch B, n bones, J joints).

    Attributes:
        bone_rotations: (B, n, 3, 3) local rotations of :data:`NBF_BONES` (world-aligned rest axes).
        global_rotation: (B, 3, 3) body-to-camera rotation.
        shapes: (B, 6) phenotypes.
        camera: (B, 3) weak-perspective ``(s, tx, ty)``, normalised image units.
        joints3d: (B, J, 3) root-relative joints, camera frame, metres.
        joints2d: (B, J, 2) projected joints, normalised image coordinates.
    """

    bone_rotations: torch.Tensor
    global_rotation: torch.Tensor
    shapes: torch.Tensor
    camera: torch.Tensor
    joints3d: torch.Tensor
    joints2d: torch.Tensor

    def bone_axis_angle(self) -> torch.Tensor:
        """(B, n, 3) axis-angle of the bone rotations, radians."""
        return matrix_to_axis_angle(self.bone_rotations)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class NBFNetwork(nn.Module):
    """CNN encoder + parameter head + :class:`BodyJoints`.

    Encoder on a ``resolution``² image with ``in_channels`` channels (3: a colour-coded part map or
    an RGB image, values in [-1, 1]): stride-2 3x3 convolutions to ``resolution/16``, widths
    ``w, 2w, 4w, 8w`` with one extra stride-1 convolution at 2w and 4w, BatchNorm + ReLU, then a
    fully connected layer of ``hidden`` units and a linear head initialised to the rest pose,
    an upright person facing the camera, mean shape and ``s = 1``.
    """

    def __init__(self, body_joints: BodyJoints, *, in_channels: int = 3, resolution: int = 64, width: int = 32,
                 hidden: int = 256):  # fmt: skip
        super().__init__()
        if resolution % 16 or resolution < 16:
            raise ValueError(f"NBFNetwork: resolution must be a multiple of 16, got {resolution}")
        self.body_joints = body_joints
        self.in_channels, self.resolution = in_channels, resolution
        w = width
        self.encoder = nn.Sequential(
            _block(in_channels, w, 2), _block(w, 2 * w, 2), _block(2 * w, 2 * w, 1),
            _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 1), _block(4 * w, 8 * w, 2), nn.Flatten(),
            nn.Linear(8 * w * (resolution // 16) ** 2, hidden), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.num_bones = len(body_joints.bones)
        self.head = nn.Linear(hidden, 6 * (self.num_bones + 1) + 6 + 3)
        with torch.no_grad():
            self.head.weight.mul_(0.01)
            identity = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
            self.head.bias.zero_()
            self.head.bias[: 6 * (self.num_bones + 1)] = identity.repeat(self.num_bones + 1)
            # global orientation: upright and facing the camera (body z -> camera -y, body -y -> camera -z)
            self.head.bias[6 * self.num_bones : 6 * (self.num_bones + 1)] = torch.tensor([1.0, 0, 0, 0, 0, 1.0])

    def forward(self, images: torch.Tensor) -> NBFOutput:
        """Predictions for images (B, C, H, W) in [-1, 1]."""
        if images.ndim != 4 or images.shape[1:] != (self.in_channels, self.resolution, self.resolution):
            raise ValueError(
                f"NBFNetwork: images must be (B, {self.in_channels}, {self.resolution}, {self.resolution}), "
                f"got {tuple(images.shape)}"
            )
        raw = self.head(self.encoder(images))
        batch, n = raw.shape[0], self.num_bones
        rotations = rotation_6d_to_matrix(raw[:, : 6 * (n + 1)].reshape(batch, n + 1, 6))
        bones, orientation = rotations[:, :n], rotations[:, n]
        shapes = 0.5 + raw[:, 6 * (n + 1) : 6 * (n + 1) + 6]
        camera = raw[:, -3:]
        scale = camera[:, :1].exp()
        joints = self.body_joints(bones, shapes)
        relative = joints - joints[:, self.body_joints.root_index : self.body_joints.root_index + 1]
        joints3d = relative @ orientation.transpose(1, 2)
        joints2d = scale[:, None] * joints3d[..., :2] + camera[:, None, 1:]
        return NBFOutput(bones, orientation, shapes, torch.cat([scale, camera[:, 1:]], 1), joints3d, joints2d)


@dataclasses.dataclass
class NBFTargets:
    """Ground truth of a batch: bone_rotations (B, n, 3, 3), global_rotation (B, 3, 3), shapes (B, 6),
    joints3d (B, J, 3) root-relative camera frame metres, joints2d (B, J, 2) normalised image units."""

    bone_rotations: torch.Tensor
    global_rotation: torch.Tensor
    shapes: torch.Tensor
    joints3d: torch.Tensor
    joints2d: torch.Tensor


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the NBF losses (3D parameters, 3D joints in metres, 2D joints in normalised units)."""

    params: float = 1.0
    joints3d: float = 5.0
    joints2d: float = 1.0


def nbf_losses(output: NBFOutput, target: NBFTargets, weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """Scalar losses ``params``, ``joints3d``, ``joints2d`` and their weighted ``total``."""
    if output.joints3d.shape != target.joints3d.shape:
        raise ValueError(
            f"nbf_losses: predicted joints {tuple(output.joints3d.shape)} and targets {tuple(target.joints3d.shape)} differ"
        )
    params = (
        (output.bone_rotations - target.bone_rotations).abs().mean()
        + (output.global_rotation - target.global_rotation).abs().mean()
        + (output.shapes - target.shapes).abs().mean()
    )
    joints3d = (output.joints3d - target.joints3d).norm(dim=-1).mean()
    joints2d = (output.joints2d - target.joints2d).norm(dim=-1).mean()
    total = weights.params * params + weights.joints3d * joints3d + weights.joints2d * joints2d
    return {"params": params, "joints3d": joints3d, "joints2d": joints2d, "total": total}


def mpjpe_mm(pred: torch.Tensor, target: torch.Tensor, root: int = 0) -> torch.Tensor:
    """(B,) mean per-joint position error after root alignment, millimetres. pred, target: (B, J, 3) metres."""
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"mpjpe_mm: pred and target must both be (B, J, 3), got {tuple(pred.shape)}, {tuple(target.shape)}")
    pred = pred - pred[:, root : root + 1]
    target = target - target[:, root : root + 1]
    return 1000.0 * (pred - target).norm(dim=-1).mean(-1)
