"""Neural Body (Peng et al., CVPR 2021): structured latent codes on a posed body, diffused by a
sparse 3D CNN, decoded by NeRF heads.

Per frame (:meth:`NeuralBody.prepare_frame`):

1. One learnable code per body vertex (``codes_per_vertex``: (V, code_dim)) is placed at the
   vertex's posed position moved into the body frame, ``x_body = R(Rh)^T (x_world - Th)``
   (metres).
2. The codes are voxelised at ``voxel_size`` (voxel c at ``origin + c * voxel_size``; codes
   falling into one voxel are averaged) and diffused by a sparse CNN: submanifold 3x3x3
   convolutions and stride-2 sparse convolutions (norm + ReLU each), keeping four volumes at
   strides 2, 4, 8, 16 (the fast configuration also keeps the stride-1 volume).
3. A coarse occupancy grid (cells of ``occupancy_cell`` metres hit by a vertex, dilated by
   ``occupancy_margin``) marks where samples are evaluated at all; elsewhere density is zero
   (0 disables this: every sample is evaluated, as in the original). The renderer asks
   :meth:`NeuralBody.occupied_world` where that band lies on each ray and puts all its
   samples there (:func:`neuralbody.rendering.sampling.band_samples`).

Per point (:meth:`NeuralBody.query`): move to the body frame, sample the four volumes
trilinearly (zeros away from active voxels), concatenate, then::

    h     = MLP_density(codes)                      (ReLU layers)
    sigma = act(Linear(h)) * density_scale          (1/metres; act = ReLU or softplus)
    f     = Linear(Linear(h) ++ appearance[frame])
    rgb   = sigmoid(Linear(ReLU(Linear(f ++ PE_4(dir_body) ++ PE_10(x_body)))))

Frames beyond the trained ones use the last appearance code. No body-model file is needed:
only posed vertices (any count) and Rh, Th. Without gradients (rendering), a frame prepared
under ``torch.no_grad()`` also holds the first density layer precomputed at the finest
corners near the body, and the colour head's linear chain is one map per frame: the same
numbers with fewer products (:mod:`neuralbody.models.inference_fold`), and each ReLU acts in
place on its layer's output (:mod:`neuralbody.models.inference_mlp`).

Canonical colour coordinates (``canonical_freqs`` > 0, the fast configuration): the colour
head's point encoding takes, instead of ``x_body`` (which moves with the pose, so a texture
cannot be learnt as a function of it), the point carried to a reference pose: the body-frame
vertices of one training frame (:meth:`NeuralBody.set_reference`, stored with the model; no
body model is needed, vertices correspond across frames). Per finest voxel the mean posed
position ``p`` and mean reference position ``r`` of its vertices are kept; a point ``x`` gets
the trilinear, weight-normalised interpolations ``P``, ``R`` of both and::

    x_canonical = R + (x - P)

exact where the map from posed to reference positions is a translation, first-order accurate
where it rotates (``|x - P|`` is a few millimetres at the surface). Points with no active
corner keep ``x_body``. With ``texture_cells`` the colour head also reads a multi-resolution
hash grid (:mod:`neuralbody.models.hash_grid`) at ``x_canonical``: a learnt texture in the
reference pose, which an MLP over a positional encoding learns far more slowly.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from neuralbody.models.base import FrameBody, FrameState, RadianceFieldModel
from neuralbody.models.encoding import encoded_size, positional_encoding
from neuralbody.models.inference_mlp import linear_act, mlp_inference
from neuralbody.models.hash_grid import HashGrid
from neuralbody.models.inference_fold import fold_colour_chain, fuse_first_layer, fused_first_layer
from neuralbody.models.occupancy import occupancy_grid, points_occupied
from neuralbody.models.sparse_conv import SparseVolume, StridedConv3d, SubmanifoldConv3d, sort_coords
from neuralbody.models.sparse_grid import trilinear_lookup
from neuralbody.workers import cpu_workers

FUSED_KEY = "fused_first_layer"
FUSE_DILATION = 4  # finest voxels around the posed body where inference precomputes the first layer


@dataclasses.dataclass
class NeuralBodyConfig:
    """Sizes and options of a Neural Body model (defaults: the compact ``fast`` configuration).

    Attributes:
        code_dim: latent code size per vertex.
        voxel_size: voxel edge of the finest (input) level, metres.
        level_channels: channels of the four kept volumes (strides 2, 4, 8, 16).
        stage_layers: submanifold convolutions at stride 1, 2, 4, 8, 16 (five entries).
        norm: "batch" (BatchNorm over active voxels) or "none".
        density_width, density_layers: hidden width and count of the density MLP.
        feature_width: width of the colour feature.
        color_width: hidden width of the last colour layer.
        appearance_dim: per-frame appearance code size.
        view_freqs, point_freqs: positional-encoding frequencies of direction and point.
        density_activation: "relu" (original) or "softplus".
        density_scale: multiplies the activated density, 1/metres.
        box_padding: padding of the posed vertices' box, metres.
        occupancy_cell: cell of the sample-skipping grid, metres.
        occupancy_margin: evaluate samples within about this distance of a vertex, metres
            (0: evaluate everywhere in the box).
        backend: "auto" (spconv when importable and on CUDA), "torch" or "spconv".
        keep_input_level: also sample the stride-1 volume (after the first submanifold
            stage; ``code_dim`` more channels): finer detail than the original's stride-2
            finest level.
        canonical_freqs: frequencies of the colour head's point encoding when it encodes
            the point carried to the reference pose (0: encode ``x_body`` with
            ``point_freqs``, as the original).
        texture_cells: cell sizes (metres) of the hash-grid texture read at the point carried
            to the reference pose (empty: none, as the original).
        texture_features, texture_log2: features per hash-table row and log2 of the rows per
            level.
    """

    code_dim: int = 16
    voxel_size: float = 0.01
    level_channels: tuple[int, ...] = (16, 32, 32, 32)
    stage_layers: tuple[int, ...] = (1, 1, 1, 1, 1)
    norm: str = "batch"
    density_width: int = 128
    density_layers: int = 3
    feature_width: int = 128
    color_width: int = 64
    appearance_dim: int = 32
    view_freqs: int = 4
    point_freqs: int = 10
    density_activation: str = "softplus"
    density_scale: float = 50.0
    box_padding: float = 0.05
    occupancy_cell: float = 0.02
    occupancy_margin: float = 0.06
    backend: str = "auto"
    keep_input_level: bool = True
    canonical_freqs: int = 10
    texture_cells: tuple[float, ...] = (0.04, 0.02, 0.01, 0.005)
    texture_features: int = 4
    texture_log2: int = 17

    @classmethod
    def faithful(cls) -> "NeuralBodyConfig":
        """The original sizes (5 mm voxels, 32-64-128-128 volumes, 256-wide MLPs, ReLU density)."""
        return cls(
            voxel_size=0.005,
            level_channels=(32, 64, 128, 128),
            stage_layers=(2, 2, 3, 3, 3),
            density_width=256,
            density_layers=3,
            feature_width=256,
            color_width=128,
            appearance_dim=128,
            density_activation="relu",
            density_scale=1.0,
                occupancy_margin=0.0,
            keep_input_level=False,
            canonical_freqs=0,
            texture_cells=(),
        )

    @classmethod
    def from_options(cls, options: dict | None) -> "NeuralBodyConfig":
        """A config from a dict: optional ``preset`` ("fast" | "faithful") plus field overrides."""
        options = dict(options or {})
        preset = options.pop("preset", "fast")
        if preset not in ("fast", "faithful"):
            raise ValueError(f"unknown Neural Body preset {preset!r}; use 'fast' or 'faithful'")
        base = cls.faithful() if preset == "faithful" else cls()
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"unknown Neural Body options {unknown}; valid: {sorted(names)}")
        for key in ("level_channels", "stage_layers", "texture_cells"):
            if key in options:
                options[key] = tuple(options[key])
        config = dataclasses.replace(base, **options)
        if len(config.level_channels) != 4 or len(config.stage_layers) != 5:
            raise ValueError("level_channels needs 4 entries and stage_layers 5")
        return config


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (3,) axis-angle, radians -> (3, 3) rotation ``I + sin(a) K + (1 - cos(a)) K^2``."""
    angle = rotvec.norm()
    axis = rotvec / angle.clamp_min(1e-12)
    zero = torch.zeros((), dtype=rotvec.dtype, device=rotvec.device)
    k = torch.stack([
        torch.stack([zero, -axis[2], axis[1]]),
        torch.stack([axis[2], zero, -axis[0]]),
        torch.stack([-axis[1], axis[0], zero]),
    ])
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)


def canonical_points(pairs: SparseVolume, positions: torch.Tensor, points_body: torch.Tensor) -> torch.Tensor:
    """Points carried to the reference pose (see the module docstring), metres.

    Args:
        pairs: stride-1 volume whose (N, 7) features are the mean posed position (3), mean
            reference position (3), both body frame, metres, and 1.
        positions: (M, 3) the points in finest-voxel units of that volume.
        points_body: (M, 3) the same points, body frame, metres.

    Returns:
        (M, 3) ``R + (x - P)`` where some corner is active, else ``points_body``.
    """
    sums = trilinear_lookup(pairs, positions)  # (M, 7): weighted sums and the weight
    weight = sums[:, 6:7]
    found = weight > 1e-6
    safe = weight.clamp_min(1e-6)
    carried = sums[:, 3:6] / safe + (points_body - sums[:, 0:3] / safe)
    return torch.where(found, carried, points_body)


class _ConvBlock(torch.nn.Module):
    """Sparse conv -> norm -> ReLU on the features."""

    def __init__(self, conv: torch.nn.Module, channels: int, norm: str) -> None:
        super().__init__()
        self.conv = conv
        self.norm = torch.nn.BatchNorm1d(channels, momentum=0.05) if norm == "batch" else torch.nn.Identity()

    def forward(self, volume: SparseVolume) -> SparseVolume:
        volume = self.conv(volume)
        return volume.replace(F.relu(self.norm(volume.features)))


def _make_conv(kind: str, in_channels: int, out_channels: int, *, bias: bool, backend: str) -> torch.nn.Module:
    if backend == "torch":
        return (SubmanifoldConv3d if kind == "subm" else StridedConv3d)(in_channels, out_channels, bias=bias)
    from neuralbody.models.sparse_conv_spconv import make_conv

    return make_conv(kind, in_channels, out_channels, bias=bias, backend=backend)


class SparseCodeDiffusion(torch.nn.Module):
    """The sparse CNN: stride-1 stage, then four (stride-2 conv, submanifold stage) levels."""

    def __init__(self, config: NeuralBodyConfig) -> None:
        super().__init__()
        backend = config.backend
        bias = config.norm != "batch"
        self.stages = torch.nn.ModuleList()
        channels = config.code_dim
        layers = [_ConvBlock(_make_conv("subm", channels, channels, bias=bias, backend=backend), channels, config.norm)
                  for _ in range(config.stage_layers[0])]
        self.stages.append(torch.nn.Sequential(*layers))
        for level, out_channels in enumerate(config.level_channels):
            layers = [_ConvBlock(_make_conv("down", channels, out_channels, bias=bias, backend=backend), out_channels, config.norm)]
            layers += [
                _ConvBlock(_make_conv("subm", out_channels, out_channels, bias=bias, backend=backend), out_channels, config.norm)
                for _ in range(config.stage_layers[level + 1])
            ]
            self.stages.append(torch.nn.Sequential(*layers))
            channels = out_channels

    def forward(self, volume: SparseVolume, *, keep_input_level: bool = False) -> list[SparseVolume]:
        volume = self.stages[0](volume)
        outputs = [volume] if keep_input_level else []
        for stage in self.stages[1:]:
            volume = stage(volume)
            outputs.append(volume)
        return outputs


class NeuralBody(RadianceFieldModel):
    """Neural Body for one capture: ``num_vertices`` codes, ``num_frames`` appearance codes."""

    def __init__(self, num_vertices: int, num_frames: int, config: NeuralBodyConfig | None = None) -> None:
        super().__init__()
        if num_vertices < 1 or num_frames < 1:
            raise ValueError(f"num_vertices and num_frames must be positive, got {num_vertices}, {num_frames}")
        self.config = config = config or NeuralBodyConfig()
        self.num_vertices = num_vertices
        self.num_frames = num_frames
        self.codes_per_vertex = torch.nn.Embedding(num_vertices, config.code_dim)
        self.appearance = torch.nn.Embedding(num_frames, config.appearance_dim)
        self.diffusion = SparseCodeDiffusion(config)
        width = config.density_width
        layers, in_width = [], sum(config.level_channels) + (config.code_dim if config.keep_input_level else 0)
        for _ in range(config.density_layers):
            layers += [torch.nn.Linear(in_width, width), torch.nn.ReLU()]
            in_width = width
        self.density_mlp = torch.nn.Sequential(*layers)
        self.density_out = torch.nn.Linear(width, 1)
        self.feature_fc = torch.nn.Linear(width, config.feature_width)
        self.latent_fc = torch.nn.Linear(config.feature_width + config.appearance_dim, config.feature_width)
        point_freqs = config.canonical_freqs if config.canonical_freqs > 0 else config.point_freqs
        color_in = config.feature_width + encoded_size(3, config.view_freqs) + encoded_size(3, point_freqs)
        self.texture_grid = None
        if config.texture_cells:
            self.texture_grid = HashGrid(config.texture_cells, table_log2=config.texture_log2,
                                         features=config.texture_features)
            color_in += self.texture_grid.out_features
        self.view_fc = torch.nn.Linear(color_in, config.color_width)
        self.rgb_fc = torch.nn.Linear(config.color_width, 3)
        if config.density_activation == "softplus":
            torch.nn.init.constant_(self.density_out.bias, -1.0)
        # (V, 3) body-frame vertices of the reference pose, metres (canonical colour coordinates)
        self.register_buffer("reference_vertices", torch.zeros(num_vertices, 3))
        self.register_buffer("has_reference", torch.zeros((), dtype=torch.bool))

    def set_reference(self, body: FrameBody) -> None:
        """Use this frame's vertices, moved into its body frame, as the reference pose."""
        vertices = body.vertices.to(self.reference_vertices)
        if vertices.shape != self.reference_vertices.shape:
            raise ValueError(f"body.vertices must be {tuple(self.reference_vertices.shape)}, got {tuple(vertices.shape)}")
        rotation = axis_angle_to_matrix(body.Rh.to(vertices).reshape(3))
        self.reference_vertices.copy_((vertices - body.Th.to(vertices).reshape(3)) @ rotation)
        self.has_reference.fill_(True)

    # ----------------------------------------------------------------------------------------
    def prepare_frame(self, frame_index: int, body: FrameBody) -> FrameState:
        """Pose and voxelise the codes, run the sparse CNN, build the occupancy grid."""
        config = self.config
        device = self.codes_per_vertex.weight.device
        vertices = body.vertices.to(device=device, dtype=torch.float32)
        if vertices.ndim != 2 or vertices.shape != (self.num_vertices, 3):
            raise ValueError(
                f"body.vertices must be ({self.num_vertices}, 3) for this model, got {tuple(vertices.shape)}"
            )
        rotation = axis_angle_to_matrix(body.Rh.to(device=device, dtype=torch.float32).reshape(3))
        translation = body.Th.to(device=device, dtype=torch.float32).reshape(3)
        vertices_body = (vertices - translation) @ rotation  # R^T (x - Th) for row vectors
        origin = vertices_body.min(dim=0).values
        coords = torch.round((vertices_body - origin) / config.voxel_size).long()
        coords, inverse = sort_coords(coords)
        counts = torch.bincount(inverse, minlength=coords.shape[0]).clamp_min(1).to(torch.float32)
        codes = torch.zeros((coords.shape[0], config.code_dim), device=device)
        codes = codes.index_add(0, inverse, self.codes_per_vertex.weight) / counts[:, None]
        volume = SparseVolume(coords, codes)
        levels = self.diffusion(volume, keep_input_level=config.keep_input_level)
        extras = {"levels": levels, "rotation": rotation, "translation": translation, "origin": origin}
        if not torch.is_grad_enabled():  # inference: the first density layer at the corners near the body
            fused = fuse_first_layer(levels, coords, self.density_mlp[0], dilation=FUSE_DILATION,
                                     workers=cpu_workers(0, device))
            if fused is not None:
                extras[FUSED_KEY] = fused
        if config.canonical_freqs > 0 or config.texture_cells:
            reference = self.reference_vertices if bool(self.has_reference) else vertices_body
            pairs = torch.cat([vertices_body, reference, torch.ones_like(vertices_body[:, :1])], dim=1)
            pairs = pairs.new_zeros(coords.shape[0], 7).index_add(0, inverse, pairs) / counts[:, None]
            # same active set as the codes: shares their dense row index
            extras["canonical_pairs"] = SparseVolume(coords, pairs.detach(), 1, volume.keys, volume.cache)
        if config.occupancy_margin > 0:
            extras.update(self._occupancy(vertices_body))
        box_min = vertices.min(dim=0).values - config.box_padding
        box_max = vertices.max(dim=0).values + config.box_padding
        return FrameState(frame_index=int(frame_index), box_min=box_min, box_max=box_max, extras=extras)

    def _occupancy(self, vertices_body: torch.Tensor) -> dict:
        """Occupancy grid of cells within ~occupancy_margin of a vertex, body frame (see occupancy.py)."""
        return occupancy_grid(vertices_body, cell=self.config.occupancy_cell, margin=self.config.occupancy_margin)

    def occupied(self, state: FrameState, points_body: torch.Tensor) -> torch.Tensor:
        """(N,) bool: points (N, 3) body frame, metres, inside the occupancy grid's marked cells."""
        if "occupancy" not in state.extras:
            return torch.ones(points_body.shape[0], dtype=torch.bool, device=points_body.device)
        return points_occupied(state.extras, points_body, cell=self.config.occupancy_cell)

    def occupied_world(self, state: FrameState, points_world: torch.Tensor) -> torch.Tensor | None:
        """(N,) bool: points (N, 3) world, metres, in marked occupancy cells; None without a grid.

        Used by the renderer to place samples only where the density may be non-zero.
        """
        if "occupancy" not in state.extras:
            return None
        points_body = (points_world - state.extras["translation"]) @ state.extras["rotation"]
        return self.occupied(state, points_body)

    def query(
        self, state: FrameState, points_world: torch.Tensor, viewdirs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Density (N,) 1/metres and colour (N, 3) at points (N, 3) world, metres, seen along viewdirs (N, 3)."""
        if points_world.ndim != 2 or points_world.shape[1] != 3 or viewdirs.shape != points_world.shape:
            raise ValueError(
                f"points_world and viewdirs must be (N, 3), got {tuple(points_world.shape)} and {tuple(viewdirs.shape)}"
            )
        density = self.query_density(state, points_world)
        rgb = points_world.new_zeros(points_world.shape[0], 3)
        if density.keep.numel():
            rgb = rgb.index_put((density.keep,), self._colour(state, density, viewdirs[density.keep]))
        return density.sigma, rgb

    def query_density(self, state: FrameState, points_world: torch.Tensor) -> "DensityQuery":
        """Density at points (N, 3) world, metres, keeping what :meth:`query_colour` needs.

        The renderer uses it to ask for colour only where a sample's compositing weight counts.
        """
        if points_world.ndim != 2 or points_world.shape[1] != 3:
            raise ValueError(f"points_world must be (N, 3), got {tuple(points_world.shape)}")
        config = self.config
        rotation, translation = state.extras["rotation"], state.extras["translation"]
        points_body = (points_world - translation) @ rotation
        keep = torch.nonzero(self.occupied(state, points_body)).squeeze(1)
        sigma_all = points_world.new_zeros(points_world.shape[0])
        if keep.numel() == 0:
            empty = points_world.new_zeros(0, config.density_width)
            return DensityQuery(sigma_all + 0.0 * self.density_out.bias.sum(), keep, empty, points_body[:0], points_body[:0])
        points_body = points_body[keep]
        positions = (points_body - state.extras["origin"]) / config.voxel_size
        hidden = self._density_hidden(state, positions)
        raw = self.density_out(hidden).squeeze(1)
        activation = F.softplus if config.density_activation == "softplus" else F.relu
        sigma = activation(raw) * config.density_scale
        return DensityQuery(sigma_all.index_put((keep,), sigma), keep, hidden, points_body, positions)

    def _density_hidden(self, state: FrameState, positions: torch.Tensor) -> torch.Tensor:
        """The density MLP's last hidden layer (K, W) at positions (K, 3) in finest-voxel units.

        Without gradients, where the frame state holds the fused first layer
        (:mod:`neuralbody.models.inference_fold`), points whose cell it covers read the first
        layer's output from it (the same values, one lookup instead of one per level).
        """
        levels = state.extras["levels"]
        fused = state.extras.get(FUSED_KEY)
        if fused is None or torch.is_grad_enabled():
            codes = torch.cat([trilinear_lookup(level, positions) for level in levels], dim=1)
            return self.density_mlp(codes) if torch.is_grad_enabled() else mlp_inference(codes, self.density_mlp)
        first, missing = fused_first_layer(fused, positions)
        if missing.numel():  # outside the fused corners: the lookups and the layer as in training
            codes = torch.cat([trilinear_lookup(level, positions[missing]) for level in levels], dim=1)
            first[missing] = linear_act(codes, self.density_mlp[0].weight, self.density_mlp[0].bias, "none")
        return mlp_inference(first, self.density_mlp[1:], overwrite_input=True)

    def query_colour(
        self, state: FrameState, density: "DensityQuery", rows: torch.Tensor, viewdirs: torch.Tensor
    ) -> torch.Tensor:
        """Colour (J, 3) of the points ``rows`` (J,) of a :meth:`query_density`, seen along viewdirs (J, 3) world.

        Points outside the model's occupancy (zero density) get black.
        """
        if rows.ndim != 1 or viewdirs.shape != (rows.shape[0], 3):
            raise ValueError(f"rows must be (J,) and viewdirs (J, 3), got {tuple(rows.shape)}, {tuple(viewdirs.shape)}")
        slot = torch.full((density.sigma.shape[0],), -1, dtype=torch.long, device=rows.device)
        slot[density.keep] = torch.arange(density.keep.numel(), device=rows.device)
        picked = slot[rows]
        found = torch.nonzero(picked >= 0).squeeze(1)
        rgb = viewdirs.new_zeros(rows.shape[0], 3)
        if found.numel():
            rgb[found] = self._colour(state, density.subset(picked[found]), viewdirs[found])
        return rgb

    def _colour(self, state: FrameState, density: "DensityQuery", viewdirs: torch.Tensor) -> torch.Tensor:
        """(K, 3) colour of the K kept points of ``density`` along viewdirs (K, 3) world."""
        config = self.config
        points_body, hidden = density.points_body, density.hidden
        dirs_body = viewdirs @ state.extras["rotation"]
        frame = min(max(state.frame_index, 0), self.num_frames - 1)
        parts = [positional_encoding(dirs_body, config.view_freqs)]
        if "canonical_pairs" in state.extras:
            points_canonical = canonical_points(state.extras["canonical_pairs"], density.positions, points_body)
        if config.canonical_freqs > 0:
            parts.append(positional_encoding(points_canonical, config.canonical_freqs))
        else:
            parts.append(positional_encoding(points_body, config.point_freqs))
        if self.texture_grid is not None:
            parts.append(self.texture_grid(points_canonical))
        rest = torch.cat(parts, dim=1)
        if torch.is_grad_enabled():
            appearance = self.appearance.weight[frame].expand(points_body.shape[0], -1)
            features = self.latent_fc(torch.cat([self.feature_fc(hidden), appearance], dim=1))
            pre = self.view_fc(torch.cat([features, rest], dim=1))
        else:  # the same linear chain folded into one map for this frame: a quarter of the products
            weight_hidden, weight_rest, bias = fold_colour_chain(self.view_fc, self.latent_fc, self.feature_fc,
                                                                 self.appearance.weight[frame])
            pre = linear_act(hidden, weight_hidden, bias, "none").addmm_(rest, weight_rest.T)
            return torch.sigmoid_(linear_act(torch.relu_(pre), self.rgb_fc.weight, self.rgb_fc.bias, "none"))
        return torch.sigmoid(self.rgb_fc(F.relu(pre)))


@dataclasses.dataclass
class DensityQuery:
    """What :meth:`NeuralBody.query_density` found at N points.

    Attributes:
        sigma: (N,) density, 1/metres (zero outside the occupancy).
        keep: (K,) rows of the points inside the occupancy (the only ones decoded).
        hidden: (K, W) the density MLP's last hidden layer there.
        points_body: (K, 3) those points in the body frame, metres.
        positions: (K, 3) the same in finest-voxel units of the code volumes.
    """

    sigma: torch.Tensor
    keep: torch.Tensor
    hidden: torch.Tensor
    points_body: torch.Tensor
    positions: torch.Tensor

    def subset(self, slots: torch.Tensor) -> "DensityQuery":
        """The kept points ``slots`` (J,) (indices into ``keep``) only."""
        return DensityQuery(self.sigma, self.keep[slots], self.hidden[slots], self.points_body[slots],
                            self.positions[slots])
