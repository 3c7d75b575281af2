"""The head avatars: IMAvatar (canonical head + learned deformation) and the ``nerf-expr`` baseline.

Both answer ``query(points, frame) -> (sigma, rgb)`` for world points (N, 3), metres, with
sigma (N,) in 1/metres and rgb (N, 3) in [0, 1], add a ``regularisation(frame)`` loss and name
the grid to smooth (``smoothed_grid()``).

**IMAvatar** (:class:`ImAvatar`): a canonical grid of density and colour (``voxel`` metres) in
the face model's rest frame, and the deformation grid of expression blend shapes, pose
correctives and skinning logits (:mod:`neuralbody.head.deformation`, ``deform_voxel`` metres).
A world point's canonical candidates come from root finding (:mod:`neuralbody.head.deformer`);
its density is the largest over the valid candidates (SNARF's rule), its colour that
candidate's. Densities ``sigma = scale softplus(raw)``, colours ``sigmoid``. Its
regularisation is IMAvatar's FLAME loss: at the face model's rest vertices the fields are
pulled towards the model's own blend shapes (in cm), skinning weights and zero correctives.

**nerf-expr** (:class:`NerfExpr`): no deformation model. A world point goes to the head bone's
frame rigidly, ``x_h = G_head^{-1} x`` (the rigid head pose a NeRF avatar gets from tracking),
a feature grid (``voxel``) is interpolated there and an MLP of ``[feature, psi, theta]`` gives
density and colour: expressions change the field only through the MLP's conditioning.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from neuralbody.head.deformation import NUM_POSE_FEATURES, channel_count, frame_grid
from neuralbody.head.deformer import RootOptions, find_canonical
from neuralbody.head.frame import HeadFrame
from neuralbody.head.grid_box import GridBox, box_around
from neuralbody.head.rig import BONES, NUM_ACTIONS, HeadRig
from neuralbody.skinning.trilinear import trilinear

MODELS = ("imavatar", "nerf-expr")


@dataclasses.dataclass(frozen=True)
class AvatarSettings:
    """Sizes of the avatars.

    Attributes:
        voxel: canonical (or feature) grid spacing, metres.
        deform_voxel: deformation grid spacing, metres (IMAvatar).
        density_scale: sigma = scale * softplus(raw), 1/metres.
        initial_raw: raw density everywhere at the start (IMAvatar's training then starts its
            density from the rest mesh instead: ``TrainSettings.mesh_density``).
        features: feature channels of the baseline's grid; hidden: its MLP width.
        prior_weight: weight of IMAvatar's face-model prior.
        prior_points: rest vertices drawn for the prior per step.
        smooth_colour: IMAvatar's total variation also smooths its colour channels (else the density only).
    """

    voxel: float = 0.004
    deform_voxel: float = 0.012
    density_scale: float = 100.0
    initial_raw: float = -3.0
    features: int = 16
    hidden: int = 64
    prior_weight: float = 1.0
    prior_points: int = 2048
    smooth_colour: bool = True


def _density(raw: torch.Tensor, scale: float) -> torch.Tensor:
    return scale * nn.functional.softplus(raw)


class ImAvatar(nn.Module):
    """IMAvatar on the face model's rest frame (module docstring)."""

    def __init__(self, rig: HeadRig, settings: AvatarSettings = AvatarSettings(), options: RootOptions = RootOptions()):
        super().__init__()
        self.settings, self.options = settings, options
        self.box: GridBox = box_around(rig.rest_vertices, settings.voxel)
        self.deform_box: GridBox = box_around(rig.rest_vertices, settings.deform_voxel, padding=0.03)
        canonical = torch.zeros(*self.box.shape, 4)
        canonical[..., 0] = settings.initial_raw
        self.canonical = nn.Parameter(canonical)
        self.deformation = nn.Parameter(torch.zeros(*self.deform_box.shape, channel_count()))
        self.register_buffer("rest_vertices", rig.rest_vertices.clone(), persistent=False)
        basis = rig.expression_basis.permute(1, 2, 0).reshape(-1, 3 * NUM_ACTIONS)  # (V, 3 A)
        self.register_buffer("prior_basis", basis.clone(), persistent=False)
        self.register_buffer("prior_weights", rig.weights.clone(), persistent=False)

    def query(self, points: torch.Tensor, frame: HeadFrame, *,
              frame_values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """sigma (N,), rgb (N, 3) at world points (N, 3).

        ``frame_values``: the frame's contracted deformation grid (:meth:`fold`), when folded once
        for many queries (inference); the same values are computed per call when None.
        """
        found = find_canonical(points, self.deformation, self.deform_box, frame.code, self.options,
                               frame_values=frame_values)
        count, k = found.valid.shape
        values = trilinear(self.canonical, self.box.coords(found.points.reshape(-1, 3))).values.reshape(count, k, 4)
        sigma = _density(values[..., 0], self.settings.density_scale) * found.valid
        best = sigma.argmax(dim=1)
        rows = torch.arange(count, device=points.device)
        return sigma[rows, best], torch.sigmoid(values[rows, best, 1:])

    def fold(self, frame: HeadFrame) -> torch.Tensor:
        """(X, Y, Z, 3 + B) the frame's ``E psi + Pc theta`` and logits on the deformation grid, no gradients.

        A per-frame constant of the search (:func:`neuralbody.head.deformation.frame_grid`): inference
        computes it once a frame and passes it to every :meth:`query` as ``frame_values``.
        """
        with torch.no_grad():
            return frame_grid(self.deformation.detach(), frame.code)

    def smoothed_grid(self) -> torch.Tensor:
        """(X, Y, Z, 1 or 4) the grid the training's total variation smooths: the raw density (and colour)."""
        return self.canonical if self.settings.smooth_colour else self.canonical[..., :1]

    def regularisation(self, frame: HeadFrame | None) -> torch.Tensor:
        """The face-model prior at random rest vertices (module docstring; the same for every frame)."""
        pick = torch.randint(0, self.rest_vertices.shape[0], (self.settings.prior_points,), device=self.canonical.device)
        values = trilinear(self.deformation, self.deform_box.coords(self.rest_vertices[pick])).values
        expression = values[:, : 3 * NUM_ACTIONS]
        correctives = values[:, 3 * NUM_ACTIONS : 3 * (NUM_ACTIONS + NUM_POSE_FEATURES)]
        weights = torch.softmax(values[:, -len(BONES):], dim=1)
        loss = ((expression - self.prior_basis[pick]) * 100.0).square().mean() * 10.0
        loss = loss + (correctives * 100.0).square().mean() + (weights - self.prior_weights[pick]).square().mean() * 10.0
        return self.settings.prior_weight * loss


class NerfExpr(nn.Module):
    """The expression-conditioned NeRF baseline (module docstring)."""

    def __init__(self, rig: HeadRig, settings: AvatarSettings = AvatarSettings()):
        super().__init__()
        self.settings = settings
        self.box: GridBox = box_around(rig.rest_vertices, settings.voxel)
        self.features = nn.Parameter(torch.randn(*self.box.shape, settings.features) * 0.1)
        width = settings.features + NUM_ACTIONS + NUM_POSE_FEATURES
        self.mlp = nn.Sequential(nn.Linear(width, settings.hidden), nn.ReLU(), nn.Linear(settings.hidden, settings.hidden),
                                 nn.ReLU(), nn.Linear(settings.hidden, 4))
        with torch.no_grad():
            self.mlp[-1].bias[0] = settings.initial_raw

    def query(self, points: torch.Tensor, frame: HeadFrame, *,
              frame_values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """sigma (N,), rgb (N, 3) at world points (N, 3).

        ``frame_values``: (H,) the first layer's frame part ``W_code [psi, theta] + b`` (:meth:`fold`),
        when folded once for many queries (inference); the layer runs on ``[feature, psi, theta]`` when None.
        """
        head = frame.code.transforms[BONES.index("head")].to(points)
        local = (points - head[:3, 3]) @ head[:3, :3]  # G^{-1} x for a rigid G
        feature = trilinear(self.features, self.box.coords(local)).values
        if frame_values is None:
            code = torch.cat([frame.code.expression, frame.code.pose_feature]).to(points)
            out = self.mlp(torch.cat([feature, code.expand(points.shape[0], -1)], dim=1))
        else:
            first = self.mlp[0]
            out = self.mlp[1:](torch.addmm(frame_values, feature, first.weight[:, : self.settings.features].T))
        inside = self.box.contains(local)
        return _density(out[:, 0], self.settings.density_scale) * inside, torch.sigmoid(out[:, 1:])

    def fold(self, frame: HeadFrame) -> torch.Tensor:
        """(H,) the MLP's first layer on the frame's constant part: ``W_code [psi, theta] + b``, no gradients.

        The first layer is linear, ``W [f; c] + b = W_f f + (W_c c + b)``, and ``c`` is the same for
        every sample of a frame: inference folds it once and passes it to :meth:`query` as ``frame_values``.
        """
        with torch.no_grad():
            first = self.mlp[0]
            code = torch.cat([frame.code.expression, frame.code.pose_feature]).to(first.weight)
            return first.weight[:, self.settings.features :] @ code + first.bias

    def smoothed_grid(self) -> torch.Tensor:
        """(X, Y, Z, F) the grid the training's total variation smooths: the features."""
        return self.features

    def regularisation(self, frame: HeadFrame | None) -> torch.Tensor:
        """None beyond the pixels: zero."""
        return self.features.new_zeros(())


def make_avatar(name: str, rig: HeadRig, settings: AvatarSettings = AvatarSettings()) -> ImAvatar | NerfExpr:
    """The avatar called ``name`` (one of :data:`MODELS`)."""
    if name == "imavatar":
        return ImAvatar(rig, settings)
    if name == "nerf-expr":
        return NerfExpr(rig, settings)
    raise ValueError(f"make_avatar: model must be one of {MODELS}, got {name!r}")
