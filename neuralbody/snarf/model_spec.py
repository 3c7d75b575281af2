"""Building the two occupancy models, new (from a subject) or again (from a saved description).

A :class:`ModelSpec` is everything needed to rebuild a model's modules before loading its
saved weights: the kind (``"forward"``: SNARF, ``"backward"``: the baseline), the sizes of
its networks, the canonical box, and the skeleton (parents and rest joints: the bone
groups of the correspondence search). It is saved as plain values in the checkpoint.

New models start from the body model: the forward model's canonical weight grid takes the
closest rest-surface point's weights (:func:`neuralbody.skinning.weight_grid.weight_grid_from_mesh`);
the backward model's weight network starts at random and is warmed up by training. Both
cover the same canonical box (the rest mesh's, grown by the weight grid's padding) with the
same canonical occupancy network.
"""

from __future__ import annotations

import dataclasses

import torch

from neuralbody.models.skinning_deformer import SearchOptions
from neuralbody.skinning.initial_guesses import bone_groups
from neuralbody.skinning.weight_grid import DEFAULT_PADDING, SkinningWeightGrid, weight_grid_from_mesh
from neuralbody.snarf.backward_model import BackwardOccupancy, PoseConditionedWeights, PoseWeightsOptions
from neuralbody.snarf.canonical_occupancy import CanonicalOccupancy, OccupancyOptions
from neuralbody.snarf.forward_model import ForwardOccupancy
from neuralbody.snarf.posed_occupancy import PosedOccupancy
from neuralbody.snarf.subject import Subject

MODEL_KINDS = ("forward", "backward")
DEFAULT_WEIGHT_VOXEL = 0.04  # metres between the forward weight grid's nodes (Anny: 38 x 21 x 55 nodes)


@dataclasses.dataclass
class ModelSpec:
    """What a model is made of (module docstring).

    Attributes:
        kind: "forward" or "backward".
        box_min, box_max: the canonical box, 3 floats each, metres.
        parents: the skeleton's parent of each bone (-1: root).
        rest_joints: (B, 3) canonical bone heads, metres, as nested lists.
        pose_dim: P, the length of the pose vector.
        occupancy: the canonical occupancy network's size.
        weight_grid_shape: the forward weight grid's (X, Y, Z) nodes (forward only).
        pose_weights: the backward weight network's size (backward only).
        search: the forward correspondence search's settings.
    """

    kind: str
    box_min: list[float]
    box_max: list[float]
    parents: list[int]
    rest_joints: list[list[float]]
    pose_dim: int
    occupancy: OccupancyOptions = OccupancyOptions()
    weight_grid_shape: list[int] | None = None
    pose_weights: PoseWeightsOptions = PoseWeightsOptions()
    search: SearchOptions = SearchOptions()

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"ModelSpec: kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if len(self.rest_joints) != len(self.parents):
            raise ValueError(f"ModelSpec: {len(self.parents)} parents but {len(self.rest_joints)} rest joints")
        if self.kind == "forward" and (self.weight_grid_shape is None or len(self.weight_grid_shape) != 3):
            raise ValueError(f"ModelSpec: a forward model needs weight_grid_shape (X, Y, Z), got {self.weight_grid_shape}")

    @property
    def num_bones(self) -> int:
        return len(self.parents)

    def to_dict(self) -> dict:
        """Plain values (lists, numbers, strings) for a checkpoint."""
        values = dataclasses.asdict(self)
        values["occupancy"] = self.occupancy.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        """The spec of :meth:`to_dict`'s values (ValueError / KeyError / TypeError when they do not fit)."""
        return cls(**{
            **values,
            "occupancy": OccupancyOptions.from_dict(values["occupancy"]),
            "pose_weights": PoseWeightsOptions(**values["pose_weights"]),
            "search": SearchOptions(**values["search"]),
        })


def build_model(spec: ModelSpec, weight_grid: SkinningWeightGrid | None = None) -> PosedOccupancy:
    """The model of ``spec``; the forward model's weight grid is ``weight_grid``, else zeros (to load into)."""
    occupancy = CanonicalOccupancy(torch.tensor(spec.box_min), torch.tensor(spec.box_max), spec.occupancy)
    if spec.kind == "backward":
        return BackwardOccupancy(PoseConditionedWeights(spec.num_bones, spec.pose_dim, spec.pose_weights), occupancy)
    if weight_grid is None:
        shape = (*spec.weight_grid_shape, spec.num_bones)
        low, high = torch.tensor(spec.box_min), torch.tensor(spec.box_max)
        spacing = (high - low) / (torch.tensor(spec.weight_grid_shape, dtype=torch.float32) - 1)
        weight_grid = SkinningWeightGrid(torch.zeros(shape), low, spacing)
    groups = bone_groups(spec.parents, torch.tensor(spec.rest_joints, dtype=torch.float32))
    return ForwardOccupancy(weight_grid, groups, occupancy, spec.search)


def new_model(subject: Subject, kind: str, *, weight_voxel: float = DEFAULT_WEIGHT_VOXEL,
              occupancy: OccupancyOptions = OccupancyOptions(),
              pose_weights: PoseWeightsOptions = PoseWeightsOptions(),
              search: SearchOptions = SearchOptions()) -> tuple[PosedOccupancy, ModelSpec]:
    """A new model of ``kind`` for ``subject`` and its spec (see the module docstring)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"new_model: kind must be one of {MODEL_KINDS}, got {kind!r}")
    grid = weight_grid_from_mesh(subject.rest_vertices, subject.faces, subject.vertex_weights,
                                 voxel_size=weight_voxel, padding=DEFAULT_PADDING)
    high = grid.origin + grid.spacing * (torch.tensor(grid.logits.shape[:3], dtype=torch.float32) - 1)
    spec = ModelSpec(
        kind=kind,
        box_min=grid.origin.tolist(),
        box_max=high.tolist(),
        parents=subject.parents,
        rest_joints=subject.rest_joints.tolist(),
        pose_dim=subject.body.pose_dim,
        occupancy=occupancy,
        weight_grid_shape=list(grid.logits.shape[:3]) if kind == "forward" else None,
        pose_weights=pose_weights,
        search=search,
    )
    return build_model(spec, grid if kind == "forward" else None), spec
