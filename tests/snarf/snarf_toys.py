"""Toys for the SNARF tests: a 2-bone skeleton whose skinning keeps z, an analytic canonical shape,
and a folder of posed meshes written from a body model.

The skeleton: bone 0 does not move, bone 1 turns by ``angle`` about the z axis through the
origin, and a point's weight of bone 1 is ``sigmoid(z / 0.1)``. Both bones keep z, so a point
keeps its z when skinned, and the weights of a posed point, a function of z alone, are those of
its canonical point: the posed-space weights are known exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from neuralbody.skinning.weight_grid import SkinningWeightGrid, grid_nodes

TOY_JOINTS = torch.tensor([[0.0, 0.0, -0.4], [0.0, 0.0, 0.0]])
TOY_PARENTS = [-1, 0]
SPHERE_CENTRE = torch.tensor([0.15, 0.05, 0.05])
SPHERE_RADIUS = 0.25
SHARPNESS = 40.0  # logits per metre of the analytic shape


def toy_weights(points: torch.Tensor) -> torch.Tensor:
    """(N, 2) weights of the toy skeleton at points (N, 3), metres: bone 1 has sigmoid(z / 0.1)."""
    upper = torch.sigmoid(points[:, 2] / 0.1)
    return torch.stack([1 - upper, upper], dim=1)


def toy_transforms(angle: float, dtype=torch.float32) -> torch.Tensor:
    """(2, 4, 4): identity, and a turn by ``angle`` radians about the z axis through the origin."""
    turn = torch.eye(4, dtype=dtype)
    c, s = math.cos(angle), math.sin(angle)
    turn[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=dtype)
    return torch.stack([torch.eye(4, dtype=dtype), turn])


def toy_grid(spacing: float = 0.05, half: float = 0.6) -> SkinningWeightGrid:
    """A weight grid over the cube [-half, half]^3 holding :func:`toy_weights` at its nodes."""
    count = int(round(2 * half / spacing)) + 1
    origin = torch.full((3,), -half)
    step = torch.full((3,), 2 * half / (count - 1))
    nodes = grid_nodes(origin, step, (count, count, count))
    logits = torch.log(toy_weights(nodes.reshape(-1, 3))).reshape(count, count, count, 2)
    return SkinningWeightGrid(logits, origin, step)


class SphereLogits(torch.nn.Module):
    """Analytic canonical occupancy: logits ``SHARPNESS (r - |x - c|)`` of a ball (metres)."""

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return SHARPNESS * (SPHERE_RADIUS - (points - SPHERE_CENTRE.to(points)).norm(dim=1))


class ToyPosedWeights(torch.nn.Module):
    """Posed-space weight logits of the toy skeleton (exact: they depend on z alone), any pose."""

    def forward(self, points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return torch.log(toy_weights(points))


def write_posed_folder(root: Path, body, poses: torch.Tensor, shapes: torch.Tensor, Rh: torch.Tensor,
                       Th: torch.Tensor, meta: dict | None = None) -> Path:
    """Write ``body`` posed in each row of poses (T, P) / Rh, Th (T, 3) as a posed-mesh folder (synth layout)."""
    root.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        out = body(poses, shapes[None].expand(poses.shape[0], -1), Rh, Th)
    for i in range(poses.shape[0]):
        (root / "gt_meshes").mkdir(exist_ok=True)
        (root / "params").mkdir(exist_ok=True)
        np.savez(root / "gt_meshes" / f"{i}.npz", vertices=out.vertices[i].numpy(),
                 faces=out.faces.numpy().astype(np.int32))
        params = {"poses": poses[i : i + 1].numpy(), "Rh": Rh[i : i + 1].numpy(), "Th": Th[i : i + 1].numpy(),
                  "shapes": shapes[None].numpy()}
        np.save(root / "params" / f"{i}.npy", params, allow_pickle=True)
    if meta is not None:
        (root / "neuralbody.json").write_text(json.dumps(meta))
    return root
