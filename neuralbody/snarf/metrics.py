"""Scores of a posed occupancy model against a posed ground-truth mesh (SNARF's protocol).

For one frame, with the ground-truth mesh in the frame's body frame:

* **IoU** (volumetric): ``|pred & gt| / |pred | gt|`` over points uniform in the mesh's box
  grown by ``box_padding`` (:func:`~neuralbody.snarf.samples.box_points`); ``pred`` is
  occupancy > 0.5, ``gt`` the winding-number inside test.
* **near-surface IoU**: the same over points within ``band`` metres of the surface
  (:func:`~neuralbody.snarf.samples.near_surface_points`), where most of the difference
  between good and poor reconstructions lies (the volumetric IoU is dominated by the easy
  interior).
* **Chamfer-L2** (square metres): the level set occupancy = 0.5 extracted by marching cubes
  on a grid of ``voxel`` metres over the padded box
  (:func:`neuralbody.evaluation.mesh_extraction.marching_cubes_world`, every component kept),
  scored by :func:`neuralbody.evaluation.geometry_metrics.chamfer_l2` (mean squared
  point-to-surface distance both ways, averaged). Infinite when the field never crosses 0.5.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from neuralbody.evaluation.geometry_metrics import chamfer_l2
from neuralbody.evaluation.mesh_extraction import DensityGrid, Mesh, grid_over_box, marching_cubes_world
from neuralbody.geometry.box import body_box
from neuralbody.geometry.queries import WarpMesh
from neuralbody.snarf.frame_pose import FramePose
from neuralbody.snarf.posed_occupancy import PosedOccupancy, occupancy_in_chunks
from neuralbody.snarf.samples import box_points, near_surface_points
from neuralbody.snarf.subject import PreparedFrame


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How a frame is scored (module docstring).

    Attributes:
        volume_samples: points for the volumetric IoU.
        surface_samples: points for the near-surface IoU.
        band: half-width of the near-surface band, metres.
        box_padding: metres added around the ground truth's box (IoU samples, marching cubes).
        voxel: marching-cubes grid spacing, metres.
        chamfer_samples: surface points per mesh for the Chamfer distance.
        seed: seeds every sample set.
    """

    volume_samples: int = 100_000
    surface_samples: int = 100_000
    band: float = 0.01
    box_padding: float = 0.05
    voxel: float = 0.015
    chamfer_samples: int = 30_000
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.volume_samples, self.surface_samples, self.chamfer_samples) < 1:
            raise ValueError(f"EvalSettings: sample counts must be >= 1, got {self}")
        if not (self.band > 0 and self.voxel > 0 and self.box_padding >= 0):
            raise ValueError(f"EvalSettings: band and voxel must be > 0, box_padding >= 0 metres, got {self}")


@dataclasses.dataclass
class FrameScores:
    """Scores of one frame.

    Attributes:
        number: the frame's number on disk.
        iou: volumetric IoU in [0, 1].
        near_surface_iou: near-surface IoU in [0, 1].
        chamfer_l2: square metres (inf when no surface was extracted).
    """

    number: int
    iou: float
    near_surface_iou: float
    chamfer_l2: float


def label_iou(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """``|predicted & truth| / |predicted | truth|`` of two (N,) bool labellings; 1 when both are empty."""
    if predicted.shape != truth.shape or predicted.ndim != 1:
        raise ValueError(f"label_iou: labellings must both be (N,), got {tuple(predicted.shape)}, {tuple(truth.shape)}")
    union = int((predicted | truth).sum())
    return float((predicted & truth).sum()) / union if union else 1.0


def posed_mesh(model: PosedOccupancy, frame: FramePose, box_min: np.ndarray, box_max: np.ndarray,
               voxel: float) -> Mesh | None:
    """The occupancy = 0.5 surface of ``model`` in ``frame`` over a box ((3,) each, metres); None if empty."""
    origin, shape = grid_over_box(box_min, box_max, voxel)
    axes = [torch.as_tensor(origin[a] + voxel * np.arange(n), dtype=torch.float32) for a, n in enumerate(shape)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    occupancy = occupancy_in_chunks(model, points, frame).reshape(shape).cpu().numpy()
    try:
        return marching_cubes_world(DensityGrid(occupancy, origin, voxel), 0.5)
    except ValueError:  # the level is never crossed: nothing (or everything) is occupied
        return None


def score_frame(model: PosedOccupancy, frame: PreparedFrame, settings: EvalSettings = EvalSettings()) -> FrameScores:
    """:class:`FrameScores` of ``model`` against the frame's ground-truth mesh (module docstring)."""
    truth = WarpMesh(frame.vertices, frame.faces)
    ious = []
    for points in (box_points(frame.vertices, settings.volume_samples, settings.box_padding, settings.seed),
                   near_surface_points(frame.vertices, frame.faces, settings.surface_samples, settings.band,
                                       settings.seed)):
        predicted = occupancy_in_chunks(model, points, frame.pose) > 0.5
        ious.append(label_iou(predicted.cpu(), truth.inside(points).cpu()))
    low, high = body_box(frame.vertices.detach().double().cpu().numpy(), settings.box_padding)
    mesh = posed_mesh(model, frame.pose, low, high, settings.voxel)
    chamfer = math.inf
    if mesh is not None and len(mesh.faces):
        chamfer = chamfer_l2((mesh.vertices, mesh.faces), (frame.vertices, frame.faces),
                             num_samples=settings.chamfer_samples, seed=settings.seed)
    return FrameScores(frame.number, ious[0], ious[1], chamfer)
