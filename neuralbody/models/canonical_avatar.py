"""An animatable radiance field: density and colour in canonical space, moved to each frame by
forward skinning (SNARF's correspondence search), with a pose-dependent shading.

The person lives in the rest pose of their body model (:mod:`neuralbody.models.canonical_body`:
canonical space, metres). At a canonical point ``x_c``::

    f, r     = MLP_density(hash(x_c))                       (r: 1 value, f: feature_dim values)
    raw      = -sdf(x_c) / surface_width + r                (sdf: the rest mesh's signed distance)
    sigma_c  = max_density * sigmoid(raw)                   (1/metres)
    albedo   = sigmoid(MLP_colour(f))

so the density starts as a sharp step across the body model's surface (the learnt ``r``
moves it: clothing, hair) and the hash grid (:mod:`neuralbody.models.hash_grid`) holds the
texture. A frame (:meth:`CanonicalAvatar.prepare_frame`) poses the skeleton with the frame's
body-model pose (``FrameBody.pose``: bone transforms in the body frame), and a posed world
point ``x`` is decoded by :class:`~neuralbody.models.canonical_avatar_field.AvatarField`:

1. ``x_body = R(Rh)^T (x - Th)``; only points in the occupancy grid of the posed vertices
   (cells within ``occupancy_margin``) are decoded;
2. the canonical candidates of ``x_body`` by the
   :class:`~neuralbody.models.skinning_deformer.ForwardSkinningDeformer` (learnable weight
   grid, Broyden from per-part rigid starts);
3. ``sigma(x)`` = the largest ``sigma_c`` over the valid candidates (SNARF), colour from the
   candidate that gives it;
4. the pose-dependent correction, shading: the surface normal of the closest rest-mesh point
   ``n_c(x_c)`` is turned by the blended skinning rotation at ``x_c`` and by ``R(Rh)`` into the
   world, ``n``, and::

       rgb = min(albedo * softplus(MLP_shade(n)), 1)

   light fixed in the world falls on a turning surface (a body turning under a lamp), which
   a canonical colour alone cannot show; the shading MLP is shared by all points and learns
   the lighting of the capture from every pose, so it holds for unseen poses as well.

No per-frame codes: every frame, seen or not, decodes with the same weights. Training uses
fewer Broyden steps than inference (``train_iterations``, ``iterations``; chosen by the
module's ``training`` flag, not by prepare/compile).

The model is built without a body: :meth:`CanonicalAvatar.set_reference` (called by the
trainer with the first training frame) loads the frame's body model (``FrameBody.pose.model``;
SMPL also needs ``body_model_path``) and stores the rig (skeleton, weight grid, surface
prior) as buffers, so a trained model renders without the body model. Loading a checkpoint
sizes the rig's tensors from it (:meth:`CanonicalAvatar.load_state_dict`).
"""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn.functional as F

from neuralbody.body.frame_body import FrameBody
from neuralbody.geometry.box import body_box
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.models.base import RadianceFieldModel
from neuralbody.models.canonical_body import CanonicalRig, bone_transforms, canonical_rig, surface_prior
from neuralbody.models.deformer import RigidDeformer
from neuralbody.models.hash_grid import HashGrid
from neuralbody.models.occupancy import occupancy_grid
from neuralbody.models.skinning_deformer import ForwardSkinningDeformer, SearchOptions
from neuralbody.skinning.forward_skinning import SkinningField, blend_transforms
from neuralbody.skinning.initial_guesses import BoneGroups, bone_groups
from neuralbody.skinning.trilinear import trilinear
from neuralbody.skinning.weight_grid import SkinningWeightGrid, weight_grid_from_mesh

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AvatarConfig:
    """Sizes and options of the canonical avatar (``--option KEY=VALUE`` of ``neuralbody train``).

    Attributes:
        body_model_path: the SMPL model file when the capture's poses are SMPL's (Anny needs none).
        skinning_voxel, skinning_padding: node spacing and padding of the weight grid, metres.
        learn_skinning: train the weight grid too (implicit gradients through the search; off:
            the body model's weights, and a cheaper step).
        prior_voxel, prior_padding: node spacing and padding of the surface prior, metres.
        surface_width: the density's step across the prior surface, metres (``sdf / width``
            in the sigmoid).
        max_density: density deep inside, 1/metres.
        hash_cells: cell edges of the hash-grid levels, metres (coarse to fine).
        hash_features, hash_log2: features per row and log2 of the rows per level.
        hidden: width of the density MLP's hidden layer.
        feature_dim: features passed from the density MLP to the colour MLP.
        colour_hidden, shading_hidden: hidden widths of the colour and shading MLPs.
        candidates: canonical candidates (search starts) per point.
        tolerance: residual of a valid candidate, metres.
        train_iterations, iterations: most Broyden steps per start in training / inference.
        occupancy_cell, occupancy_margin: the posed vertices' occupancy grid, metres.
        box_padding: padding of the posed vertices' box, metres.
    """

    body_model_path: str | None = None
    skinning_voxel: float = 0.025
    skinning_padding: float = 0.15
    learn_skinning: bool = False
    prior_voxel: float = 0.0125
    prior_padding: float = 0.1
    surface_width: float = 0.003
    max_density: float = 400.0
    hash_cells: tuple[float, ...] = (0.08, 0.04, 0.02, 0.01, 0.005)
    hash_features: int = 4
    hash_log2: int = 16
    hidden: int = 64
    feature_dim: int = 15
    colour_hidden: int = 32
    shading_hidden: int = 16
    candidates: int = 3
    tolerance: float = 1e-4
    train_iterations: int = 6
    iterations: int = 15
    occupancy_cell: float = 0.02
    occupancy_margin: float = 0.04
    box_padding: float = 0.05

    @classmethod
    def from_options(cls, options: dict | None) -> "AvatarConfig":
        """A config from a dict of field overrides (a ``preset`` key is ignored)."""
        options = {key: value for key, value in dict(options or {}).items() if key != "preset"}
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"unknown avatar options {unknown}; valid: {sorted(names)}")
        if "hash_cells" in options:
            options["hash_cells"] = tuple(float(c) for c in options["hash_cells"])
        config = cls(**options)
        positive = ("skinning_voxel", "prior_voxel", "surface_width", "max_density", "tolerance", "occupancy_cell")
        bad = [name for name in positive if not getattr(config, name) > 0]
        counts = ("hidden", "feature_dim", "colour_hidden", "shading_hidden", "candidates", "train_iterations",
                  "iterations")
        bad += [name for name in counts if int(getattr(config, name)) < 1]
        if bad:
            raise ValueError(f"avatar options {bad} must be positive")
        return config


def _mlp(inputs: int, hidden: int, outputs: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs))


# the rig's tensors: sized by set_reference or by the checkpoint loaded (see load_state_dict)
RIG_TENSORS = ("skinning.logits", "skinning.origin", "skinning.spacing", "prior_values", "prior_origin",
               "prior_spacing", "rest_joints", "parents", "joint_names_utf8")


class CanonicalAvatar(RadianceFieldModel):
    """The canonical avatar of one person (see the module docstring); ``num_frames`` is kept for the
    run's bookkeeping only (no per-frame codes)."""

    num_vertices = None  # any body mesh: vertices only bound the occupancy and the box

    def __init__(self, num_frames: int, config: AvatarConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AvatarConfig()
        self.num_frames = int(num_frames)
        self.skinning = SkinningWeightGrid(torch.zeros(2, 2, 2, 1), torch.zeros(3), torch.ones(3))
        self.skinning.logits.requires_grad_(config.learn_skinning)
        self.register_buffer("prior_values", torch.zeros(2, 2, 2, 4))
        self.register_buffer("prior_origin", torch.zeros(3))
        self.register_buffer("prior_spacing", torch.ones(3))
        self.register_buffer("rest_joints", torch.zeros(1, 3))
        self.register_buffer("parents", torch.full((1,), -1, dtype=torch.long))
        self.register_buffer("joint_names_utf8", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("has_rig", torch.zeros((), dtype=torch.bool))
        self.texture_grid = HashGrid(config.hash_cells, table_log2=config.hash_log2, features=config.hash_features)
        self.density_mlp = _mlp(self.texture_grid.out_features, config.hidden, 1 + config.feature_dim)
        self.colour_mlp = _mlp(config.feature_dim, config.colour_hidden, 3)
        self.shading_mlp = _mlp(3, config.shading_hidden, 3)
        with torch.no_grad():  # start as the prior surface, grey, evenly lit
            self.density_mlp[2].weight[0].zero_()
            self.density_mlp[2].bias[0] = 0.0
            self.shading_mlp[2].weight.mul_(0.1)
            self.shading_mlp[2].bias.fill_(0.5413)  # softplus(0.5413) = 1
        self._groups: BoneGroups | None = None
        self._node_weights: tuple[int, torch.Tensor] | None = None

    # -- the rig -------------------------------------------------------------------------------
    @property
    def joint_names(self) -> list[str]:
        """The skeleton's bone names (stored as UTF-8 bytes, newline-separated)."""
        text = bytes(self.joint_names_utf8.cpu().tolist()).decode("utf-8")
        return text.split("\n") if text else []

    def set_rig(self, rig: CanonicalRig) -> None:
        """Store a person's rest pose: weight grid, surface prior, skeleton (see the module docstring)."""
        config = self.config
        grid = weight_grid_from_mesh(rig.rest_vertices, rig.faces, rig.skinning_weights,
                                     voxel_size=config.skinning_voxel, padding=config.skinning_padding)
        prior = surface_prior(rig.rest_vertices, rig.faces, voxel_size=config.prior_voxel,
                              padding=config.prior_padding)
        device = self.prior_values.device
        with torch.no_grad():
            self.skinning.logits.data = grid.logits.to(device)
            self.skinning.origin = grid.origin.to(device)
            self.skinning.spacing = grid.spacing.to(device)
            self.prior_values = prior.values.to(device)
            self.prior_origin = prior.origin.to(device)
            self.prior_spacing = prior.spacing.to(device)
            self.rest_joints = rig.rest_joints.to(device)
            self.parents = torch.tensor(rig.parents, dtype=torch.long, device=device)
            self.joint_names_utf8 = torch.tensor(list("\n".join(rig.joint_names).encode("utf-8")), dtype=torch.uint8,
                                                 device=device)
            self.has_rig.fill_(True)
        self._groups, self._node_weights = None, None

    def set_reference(self, body: FrameBody) -> None:
        """Build the rig from the body model of ``body.pose`` (with its shapes), unless the model has one."""
        if bool(self.has_rig):
            return
        if body.pose is None:
            raise ValueError("the canonical avatar needs the body model's poses: the capture's params/{n}.npy "
                             "must hold 'poses' (and 'shapes'); fit the body with `neuralbody fit`")
        from neuralbody.body import load_body_model

        body_model = load_body_model(body.pose.model, model_path=self.config.body_model_path)
        self.set_rig(canonical_rig(body_model, body.pose.shapes))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """:meth:`torch.nn.Module.load_state_dict`, first resizing the rig's tensors to the checkpoint's."""
        with torch.no_grad():
            for name in RIG_TENSORS:
                value = state_dict.get(name)
                if value is None:
                    continue
                module_name, _, attribute = name.rpartition(".")
                owner = self.get_submodule(module_name) if module_name else self
                current = getattr(owner, attribute)
                if current.shape != value.shape:
                    if isinstance(current, torch.nn.Parameter):
                        current.data = torch.zeros(value.shape, dtype=current.dtype, device=current.device)
                    else:
                        setattr(owner, attribute, torch.zeros(value.shape, dtype=value.dtype, device=current.device))
        self._groups, self._node_weights = None, None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def bone_groups(self) -> BoneGroups:
        """The skeleton's bone groups (starts of the correspondence search), computed once."""
        if self._groups is None:
            self._groups = bone_groups(self.parents.tolist(), self.rest_joints)
        return self._groups

    def skinning_field(self, bones: torch.Tensor) -> SkinningField:
        """The frame's forward-skinning map for bone transforms (B, 4, 4); the node weights are cached
        while the weight grid is not trained."""
        grid = self.skinning
        if grid.logits.requires_grad and torch.is_grad_enabled():
            return grid.field(bones)
        version = grid.logits._version
        if self._node_weights is None or self._node_weights[0] != version or (
                self._node_weights[1].device != grid.logits.device):
            with torch.no_grad():
                self._node_weights = (version, grid.node_weights())
        transforms = blend_transforms(self._node_weights[1], bones.to(grid.logits.dtype))
        return SkinningField(transforms, grid.origin, grid.spacing)

    # -- the canonical networks ----------------------------------------------------------------
    def canonical(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """At canonical points (M, 3), metres: density (M,) 1/metres, colour features (M, F) and the
        prior's surface normal (M, 3) (not normalised)."""
        config = self.config
        prior = trilinear(self.prior_values, (points - self.prior_origin) / self.prior_spacing).values
        out = self.density_mlp(self.texture_grid(points))
        raw = out[:, 0] - prior[:, 0] / config.surface_width
        return config.max_density * torch.sigmoid(raw), out[:, 1:], prior[:, 1:4]

    def albedo(self, features: torch.Tensor) -> torch.Tensor:
        """(M, 3) albedo in [0, 1] of colour features (M, F)."""
        return torch.sigmoid(self.colour_mlp(features))

    def shading(self, normals: torch.Tensor) -> torch.Tensor:
        """(M, 3) non-negative light per channel on surfaces with unit world normals (M, 3)."""
        return F.softplus(self.shading_mlp(normals))

    def search_options(self) -> SearchOptions:
        """The correspondence search: fewer Broyden steps while training (``self.training``)."""
        config = self.config
        iterations = config.train_iterations if self.training else config.iterations
        return SearchOptions(num_candidates=config.candidates, tolerance=config.tolerance, max_iterations=iterations)

    # -- frames --------------------------------------------------------------------------------
    def prepare_frame(self, frame_index: int, body: FrameBody):
        """The frame's :class:`~neuralbody.models.canonical_avatar_field.AvatarField` (differentiable)."""
        from neuralbody.models.canonical_avatar_field import AvatarField

        config = self.config
        if not bool(self.has_rig):
            raise ValueError("the canonical avatar has no rig yet: call set_reference(body) with a frame "
                             "whose pose is known (the trainer does), or load a trained checkpoint")
        if body.pose is None:
            raise ValueError(f"frame {frame_index}: no body-model poses (the capture's params/ lack 'poses'); the "
                             "canonical avatar is posed by them")
        device = self.prior_values.device
        vertices = body.vertices.to(device=device, dtype=torch.float32)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
            raise ValueError(f"body.vertices must be (V, 3), got {tuple(vertices.shape)}")
        bones = bone_transforms(self.rest_joints, self.parents.tolist(), body.pose.poses.to(device))
        rigid = RigidDeformer(axis_angle_to_matrix(body.Rh.to(device=device, dtype=torch.float32).reshape(3)),
                              body.Th.to(device=device, dtype=torch.float32).reshape(3))
        deformer = ForwardSkinningDeformer(self.skinning_field(bones), bones, self.bone_groups(), self.search_options())
        occupancy = occupancy_grid(rigid.to_body(vertices), cell=config.occupancy_cell, margin=config.occupancy_margin)
        box_min, box_max = body_box(vertices, config.box_padding)
        return AvatarField(model=self, frame_index=int(frame_index), box_min=box_min, box_max=box_max,
                           body_frame=rigid, deformer=deformer, occupancy=occupancy)
