"""The baseline Neural Body is compared against: a NeRF conditioned on the frame index.

No structured latent codes and no body model: the only per-frame inputs are a learned latent
code ``z_f`` (one per training frame) and the posed body's bounding box, used solely as the
region to sample in (the vertices' box padded ``box_padding`` metres, exactly as Neural Body
does), so a comparison with :class:`~neuralbody.models.neural_body.NeuralBody` isolates the
effect of the structured codes. For a point ``x`` (world, metres) seen along ``d`` (unit,
world)::

    h     = MLP_density(PE_10(x) ++ z_f)            (ReLU layers, PE_10(x) ++ z_f re-injected
                                                      half-way, as in NeRF's skip connection)
    sigma = act(Linear(h)) * density_scale          (1/metres; act = softplus or ReLU)
    rgb   = sigmoid(Linear(ReLU(Linear(Linear(h) ++ PE_4(d)))))

``PE_L`` is NeRF's positional encoding (:mod:`neuralbody.models.encoding`). Frames at or
beyond ``num_frames`` (unseen poses) use the code of the last training frame ``num_frames - 1``.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from neuralbody.body.frame_body import FrameBody
from neuralbody.geometry.box import body_box
from neuralbody.models.base import DensityQuery, FrameField, RadianceFieldModel, check_points, kept_rows
from neuralbody.models.encoding import encoded_size, positional_encoding
from neuralbody.models.occupancy import OccupancyGrid, occupancy_grid, points_occupied


@dataclasses.dataclass
class FrameNerfConfig:
    """Sizes of the frame-conditioned NeRF.

    The defaults give about 270k network parameters (plus ``latent_dim`` per frame), the count
    of the fast Neural Body without its per-vertex codes; a 1024-ray, 64-sample training step
    took 1.5 s on 2 CPU cores against 2.6-4.5 s for the fast Neural Body (same machine, load).

    Attributes:
        latent_dim: per-frame latent code size.
        width: hidden width of the density MLP.
        depth: number of hidden layers of the density MLP (the input is re-injected after
            ``depth // 2`` of them).
        color_width: hidden width of the colour layer.
        point_freqs: positional-encoding frequencies of the world point (metres).
        view_freqs: positional-encoding frequencies of the view direction.
        density_activation: "softplus" (as the fast Neural Body) or "relu" (original NeRF).
        density_scale: multiplies the activated density, 1/metres.
        box_padding: padding of the posed vertices' box, metres (the sampling region).
        code_init_std: standard deviation of the initial latent codes.
        occupancy_cell, occupancy_margin: the same empty-space skipping as Neural Body's
            (cells within ``margin`` metres of a posed vertex; 0 margin: the whole box), so the
            two models see exactly the same samples and differ only in the structured codes.
    """

    latent_dim: int = 32
    width: int = 192
    depth: int = 6
    color_width: int = 64
    point_freqs: int = 10
    view_freqs: int = 4
    density_activation: str = "softplus"
    density_scale: float = 50.0
    box_padding: float = 0.05
    code_init_std: float = 0.1
    occupancy_cell: float = 0.02
    occupancy_margin: float = 0.06

    def __post_init__(self) -> None:
        if self.density_activation not in ("softplus", "relu"):
            raise ValueError(f"FrameNerfConfig: density_activation must be 'softplus' or 'relu', got {self.density_activation!r}")
        if min(self.latent_dim, self.width, self.depth, self.color_width) < 1:
            raise ValueError("FrameNerfConfig: latent_dim, width, depth and color_width must be positive")
        if self.point_freqs < 0 or self.view_freqs < 0 or self.box_padding < 0:
            raise ValueError("FrameNerfConfig: frequencies and box_padding must be non-negative")

    @classmethod
    def from_options(cls, options: dict | None) -> "FrameNerfConfig":
        """A config from a JSON-able dict of field overrides (a ``preset`` key is ignored)."""
        options = dict(options or {})
        options.pop("preset", None)
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"unknown frame_nerf options {unknown}; valid: {sorted(names)}")
        return cls(**options)


class FrameNerf(RadianceFieldModel):
    """A NeRF with one learned latent code per frame (``num_frames`` codes)."""

    def __init__(self, num_frames: int, config: FrameNerfConfig | None = None) -> None:
        super().__init__()
        if num_frames < 1:
            raise ValueError(f"FrameNerf: num_frames must be positive, got {num_frames}")
        self.config = config = config or FrameNerfConfig()
        self.num_frames = int(num_frames)
        self.frame_codes = torch.nn.Embedding(num_frames, config.latent_dim)
        torch.nn.init.normal_(self.frame_codes.weight, std=config.code_init_std)
        in_width = encoded_size(3, config.point_freqs) + config.latent_dim
        self.skip_at = config.depth // 2 if config.depth > 2 else -1
        layers = []
        width = in_width
        for index in range(config.depth):
            if index == self.skip_at:
                width += in_width
            layers.append(torch.nn.Linear(width, config.width))
            width = config.width
        self.density_layers = torch.nn.ModuleList(layers)
        self.density_out = torch.nn.Linear(config.width, 1)
        self.feature_fc = torch.nn.Linear(config.width, config.width)
        self.view_fc = torch.nn.Linear(config.width + encoded_size(3, config.view_freqs), config.color_width)
        self.rgb_fc = torch.nn.Linear(config.color_width, 3)
        if config.density_activation == "softplus":
            torch.nn.init.constant_(self.density_out.bias, -1.0)

    def unseen_frame_rule(self) -> str | None:
        return "the last training frame's latent code is used"

    def code_index(self, frame_index: int) -> int:
        """The latent code used for a frame: its own, or the last one for frames beyond training."""
        if frame_index < 0:
            raise ValueError(f"FrameNerf: frame_index must be >= 0, got {frame_index}")
        return min(int(frame_index), self.num_frames - 1)

    def prepare_frame(self, frame_index: int, body: FrameBody) -> "FrameNerfField":
        """The sampling box (vertices' box padded ``box_padding`` metres) and the frame's code."""
        device = self.frame_codes.weight.device
        vertices = body.vertices.to(device=device, dtype=torch.float32)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
            raise ValueError(f"body.vertices must be (V, 3) with V > 0, got {tuple(vertices.shape)}")
        index = self.code_index(frame_index)
        box_min, box_max = body_box(vertices, self.config.box_padding)
        occupancy = None
        if self.config.occupancy_margin > 0:
            occupancy = occupancy_grid(vertices, cell=self.config.occupancy_cell, margin=self.config.occupancy_margin)
        return FrameNerfField(model=self, frame_index=int(frame_index), box_min=box_min, box_max=box_max,
                              code_index=index, occupancy=occupancy)


@dataclasses.dataclass
class FrameNerfDensity(DensityQuery):
    """:class:`DensityQuery` of a frame NeRF: ``hidden`` (K, W) at the kept rows ``keep`` (K,)."""

    keep: torch.Tensor
    hidden: torch.Tensor


@dataclasses.dataclass
class FrameNerfField(FrameField):
    """One frame of a :class:`FrameNerf`: its code and the occupancy grid (world frame)."""

    model: FrameNerf
    frame_index: int
    box_min: torch.Tensor
    box_max: torch.Tensor
    code_index: int
    occupancy: OccupancyGrid | None = None

    def occupied(self, points: torch.Tensor) -> torch.Tensor | None:
        """(N,) bool: points (N, 3) world, metres, near the posed body; None without a grid."""
        if self.occupancy is None:
            return None
        return points_occupied(self.occupancy, points)

    def query(self, points: torch.Tensor, viewdirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density (N,) 1/metres and colour (N, 3) in [0, 1] at points (N, 3) world, metres, seen along viewdirs (N, 3)."""
        check_points(points, viewdirs)
        density = self.density(points)
        rgb = points.new_zeros(points.shape[0], 3)
        if density.keep.numel():
            rgb = rgb.index_put((density.keep,), self._colour(density.hidden, viewdirs[density.keep]))
        return density.sigma, rgb

    def density(self, points: torch.Tensor) -> FrameNerfDensity:
        """Density at points (N, 3), world, metres (zero outside the occupancy; the MLP runs only inside)."""
        check_points(points)
        model, config = self.model, self.model.config
        occupied = self.occupied(points)
        keep = torch.arange(points.shape[0], device=points.device) if occupied is None else (
            torch.nonzero(occupied).squeeze(1))
        code = model.frame_codes.weight[self.code_index]
        inputs = torch.cat([positional_encoding(points[keep], config.point_freqs), code.expand(keep.numel(), -1)], dim=1)
        hidden = inputs
        for index, layer in enumerate(model.density_layers):
            if index == model.skip_at:
                hidden = torch.cat([hidden, inputs], dim=1)
            hidden = F.relu(layer(hidden))
        raw = model.density_out(hidden).squeeze(1)
        activation = F.softplus if config.density_activation == "softplus" else F.relu
        sigma = points.new_zeros(points.shape[0]).index_put((keep,), activation(raw) * config.density_scale)
        return FrameNerfDensity(sigma=sigma, points=points, keep=keep, hidden=hidden)

    def colour(self, density: FrameNerfDensity, rows: torch.Tensor, viewdirs: torch.Tensor) -> torch.Tensor:
        """Colour (J, 3) of the points ``rows`` (J,) of a :meth:`density` along viewdirs (J, 3); black outside the occupancy."""
        found, slots = kept_rows(density.keep, density.sigma.shape[0], rows)
        rgb = viewdirs.new_zeros(rows.shape[0], 3)
        if found.numel():
            rgb[found] = self._colour(density.hidden[slots], viewdirs[found])
        return rgb

    def _colour(self, hidden: torch.Tensor, viewdirs: torch.Tensor) -> torch.Tensor:
        """(K, 3) colour from the density MLP's hidden layer (K, W) and viewdirs (K, 3)."""
        model = self.model
        features = torch.cat([model.feature_fc(hidden), positional_encoding(viewdirs, model.config.view_freqs)], dim=1)
        return torch.sigmoid(model.rgb_fc(F.relu(model.view_fc(features))))
