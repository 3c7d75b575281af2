"""One frame of Neural Body as a decoder: density and colour at any world point.

Made by :meth:`NeuralBody.prepare_frame <neuralbody.models.neural_body.NeuralBody.prepare_frame>`
(differentiable, training) or :meth:`~neuralbody.models.neural_body.NeuralBody.compile_frame`
(inference). Both run the same code below; a compiled field also carries the first density
layer precomputed at the finest corners near the body (``fused``), read where a point's cell
is covered, and its ReLUs act in place (:mod:`neuralbody.models.inference_mlp`). The colour
head's three linear layers are composed once per field, in both cases
(:func:`~neuralbody.models.inference_fold.fold_colour_chain`).

Per point ``x`` (world, metres) seen along ``d``::

    x_body = R^T (x - Th)                          (RigidDeformer)
    codes  = [trilinear(level, x_body) for level]  (gather_codes; zeros away from the body)
    h      = MLP_density(codes)
    sigma  = act(Linear(h)) * density_scale         (0 outside the occupancy grid)
    rgb    = sigmoid(Linear(ReLU(W_h h + W_rest [PE(R^T d), PE(x_c), texture(x_c)] + b)))

with ``x_c`` the point carried to the reference pose (CarryDeformer) or ``x_body``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from neuralbody.models.base import DensityQuery, FrameField, check_points, kept_rows
from neuralbody.models.deformer import CarryDeformer, RigidDeformer
from neuralbody.models.encoding import positional_encoding
from neuralbody.models.inference_fold import fold_colour_chain, fused_first_layer
from neuralbody.models.inference_mlp import linear_act, mlp_inference
from neuralbody.models.occupancy import OccupancyGrid, points_occupied
from neuralbody.models.sparse_conv import SparseVolume
from neuralbody.models.sparse_grid import gather_codes

if TYPE_CHECKING:
    from neuralbody.models.neural_body import NeuralBody


@dataclasses.dataclass
class NeuralBodyDensity(DensityQuery):
    """:class:`DensityQuery` of a Neural Body field.

    Attributes:
        keep: (K,) rows of the points inside the occupancy (the only ones decoded).
        hidden: (K, W) the density MLP's last hidden layer there.
        points_body: (K, 3) those points in the body frame, metres.
        positions: (K, 3) the same in finest-voxel units of the code volumes.
    """

    keep: torch.Tensor
    hidden: torch.Tensor
    points_body: torch.Tensor
    positions: torch.Tensor

    def subset(self, slots: torch.Tensor) -> "NeuralBodyDensity":
        """The kept points ``slots`` (J,) (indices into ``keep``) only."""
        return NeuralBodyDensity(self.sigma, self.points, self.keep[slots], self.hidden[slots],
                                 self.points_body[slots], self.positions[slots])


@dataclasses.dataclass
class NeuralBodyField(FrameField):
    """A Neural Body frame (see the module docstring).

    Attributes:
        model: the module whose weights decode (not copied).
        frame_index: the frame; its appearance code is ``min(frame_index, num_frames - 1)``.
        box_min, box_max: (3,) the posed vertices' padded box, world, metres.
        body_frame: world to body frame.
        levels: the diffused code volumes, in the order the density MLP reads them.
        origin: (3,) body-frame position of finest voxel (0, 0, 0), metres.
        occupancy: cells near the body, body frame (None: everywhere in the box).
        carry: body frame to the reference pose (None: colour encodes ``x_body``).
        fused: the first density layer at the corners near the body (compiled fields only).
    """

    model: "NeuralBody"
    frame_index: int
    box_min: torch.Tensor
    box_max: torch.Tensor
    body_frame: RigidDeformer
    levels: list[SparseVolume]
    origin: torch.Tensor
    occupancy: OccupancyGrid | None = None
    carry: CarryDeformer | None = None
    fused: SparseVolume | None = None
    colour_fold: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        model = self.model
        frame = min(max(self.frame_index, 0), model.num_frames - 1)
        self.colour_fold = fold_colour_chain(model.view_fc, model.latent_fc, model.feature_fc,
                                             model.appearance.weight[frame])

    def occupied(self, points: torch.Tensor) -> torch.Tensor | None:
        """(N,) bool: points (N, 3), world, metres, in marked occupancy cells; None without a grid."""
        if self.occupancy is None:
            return None
        return points_occupied(self.occupancy, self.body_frame.to_body(points))

    def query(self, points: torch.Tensor, viewdirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density (N,) 1/metres and colour (N, 3) at points (N, 3) world, metres, seen along viewdirs (N, 3)."""
        check_points(points, viewdirs)
        density = self.density(points)
        rgb = points.new_zeros(points.shape[0], 3)
        if density.keep.numel():
            rgb = rgb.index_put((density.keep,), self._colour(density, viewdirs[density.keep]))
        return density.sigma, rgb

    def density(self, points: torch.Tensor) -> NeuralBodyDensity:
        """Density at points (N, 3) world, metres, keeping what :meth:`colour` needs."""
        check_points(points)
        model, config = self.model, self.model.config
        points_body = self.body_frame.to_body(points)
        inside = torch.ones_like(points_body[:, 0], dtype=torch.bool) if self.occupancy is None else (
            points_occupied(self.occupancy, points_body))
        keep = torch.nonzero(inside).squeeze(1)
        sigma_all = points.new_zeros(points.shape[0])
        if keep.numel() == 0:
            empty = points.new_zeros(0, config.density_width)
            return NeuralBodyDensity(sigma_all + 0.0 * model.density_out.bias.sum(), points, keep, empty,
                                     points_body[:0], points_body[:0])
        points_body = points_body[keep]
        positions = (points_body - self.origin) / config.voxel_size
        hidden = self._density_hidden(positions)
        raw = model.density_out(hidden).squeeze(1)
        activation = F.softplus if config.density_activation == "softplus" else F.relu
        sigma = activation(raw) * config.density_scale
        return NeuralBodyDensity(sigma_all.index_put((keep,), sigma), points, keep, hidden, points_body, positions)

    def _density_hidden(self, positions: torch.Tensor) -> torch.Tensor:
        """The density MLP's last hidden layer (K, W) at positions (K, 3) in finest-voxel units.

        The first layer's output is read from ``fused`` where it covers a point's cell (the same
        values), else computed from :func:`gather_codes`.
        """
        first_layer = self.model.density_mlp[0]
        if self.fused is None:
            first = linear_act(gather_codes(self.levels, positions), first_layer.weight, first_layer.bias, "none")
        else:
            first, missing = fused_first_layer(self.fused, positions)
            if missing.numel():  # outside the fused corners: the lookups and the layer
                codes = gather_codes(self.levels, positions[missing])
                first[missing] = linear_act(codes, first_layer.weight, first_layer.bias, "none")
        return mlp_inference(first, self.model.density_mlp[1:], overwrite_input=True)

    def colour(self, density: NeuralBodyDensity, rows: torch.Tensor, viewdirs: torch.Tensor) -> torch.Tensor:
        """Colour (J, 3) of the points ``rows`` (J,) of a :meth:`density`, seen along viewdirs (J, 3) world.

        Points outside the occupancy (zero density) get black.
        """
        if rows.ndim != 1 or viewdirs.shape != (rows.shape[0], 3):
            raise ValueError(f"rows must be (J,) and viewdirs (J, 3), got {tuple(rows.shape)}, {tuple(viewdirs.shape)}")
        found, slots = kept_rows(density.keep, density.sigma.shape[0], rows)
        rgb = viewdirs.new_zeros(rows.shape[0], 3)
        if found.numel():
            rgb[found] = self._colour(density.subset(slots), viewdirs[found])
        return rgb

    def _colour(self, density: NeuralBodyDensity, viewdirs: torch.Tensor) -> torch.Tensor:
        """(K, 3) colour of the K kept points of ``density`` along viewdirs (K, 3) world."""
        model, config = self.model, self.model.config
        points_body = density.points_body
        parts = [positional_encoding(self.body_frame.directions_to_body(viewdirs), config.view_freqs)]
        points_canonical = points_body
        if self.carry is not None:
            points_canonical, _ = self.carry.carry(points_body, density.positions)
        if config.canonical_freqs > 0:
            parts.append(positional_encoding(points_canonical, config.canonical_freqs))
        else:
            parts.append(positional_encoding(points_body, config.point_freqs))
        if model.texture_grid is not None:
            parts.append(model.texture_grid(points_canonical))
        weight_hidden, weight_rest, bias = self.colour_fold
        # in place on fresh intermediates: legal under autograd too (none of them is saved for backward)
        pre = linear_act(density.hidden, weight_hidden, bias, "none").addmm_(torch.cat(parts, dim=1), weight_rest.T)
        return torch.sigmoid_(linear_act(torch.relu_(pre), model.rgb_fc.weight, model.rgb_fc.bias, "none"))
