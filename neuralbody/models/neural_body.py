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
   (0 disables this: every sample is evaluated, as in the original). The renderer asks the
   frame's field where that band lies on each ray and puts all its samples there
   (:func:`neuralbody.rendering.sampling.band_samples`).

The result is a :class:`~neuralbody.models.neural_body_field.NeuralBodyField`, the frame's
decoder. Per point: move to the body frame, sample the volumes trilinearly (zeros away from
active voxels), concatenate, then::

    h     = MLP_density(codes)                      (ReLU layers)
    sigma = act(Linear(h)) * density_scale          (1/metres; act = ReLU or softplus)
    f     = Linear(Linear(h) ++ appearance[frame])
    rgb   = sigmoid(Linear(ReLU(Linear(f ++ PE_4(dir_body) ++ PE_10(x_body)))))

Frames beyond the trained ones use the last appearance code. No body-model file is needed:
only posed vertices (any count) and Rh, Th. The three linear layers of the colour chain are
composed once per frame (training and inference alike, :mod:`neuralbody.models.inference_fold`);
:meth:`NeuralBody.compile_frame` (inference) also precomputes the first density layer at the
finest corners near the body: the same numbers with fewer products.

Canonical colour coordinates (``canonical_freqs`` > 0, the fast configuration): the colour
head's point encoding takes, instead of ``x_body`` (which moves with the pose, so a texture
cannot be learnt as a function of it), the point carried to a reference pose: the body-frame
vertices of one training frame (:meth:`NeuralBody.set_reference`, stored with the model; no
body model is needed, vertices correspond across frames), by the
:class:`~neuralbody.models.deformer.CarryDeformer` (``x_canonical = R + (x - P)`` from the
mean posed and reference positions of nearby vertices). Points with no vertex near keep
``x_body``. With ``texture_cells`` the colour head also reads a multi-resolution
hash grid (:mod:`neuralbody.models.hash_grid`) at ``x_canonical``: a learnt texture in the
reference pose, which an MLP over a positional encoding learns far more slowly.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from neuralbody.body.frame_body import FrameBody
from neuralbody.geometry.box import body_box
from neuralbody.geometry.rotations import axis_angle_to_matrix
from neuralbody.models.base import RadianceFieldModel
from neuralbody.models.deformer import CarryDeformer, RigidDeformer
from neuralbody.models.encoding import encoded_size
from neuralbody.models.hash_grid import HashGrid
from neuralbody.models.inference_fold import fuse_first_layer
from neuralbody.models.neural_body_field import NeuralBodyField
from neuralbody.models.occupancy import occupancy_grid
from neuralbody.models.sparse_conv import SparseVolume, StridedConv3d, SubmanifoldConv3d, sort_coords
from neuralbody.workers import cpu_workers

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
        rigid = RigidDeformer(axis_angle_to_matrix(body.Rh.to(vertices).reshape(3)), body.Th.to(vertices).reshape(3))
        self.reference_vertices.copy_(rigid.to_body(vertices))
        self.has_reference.fill_(True)

    def unseen_frame_rule(self) -> str | None:
        return "the last training frame's appearance code is used"

    def prepare_frame(self, frame_index: int, body: FrameBody) -> NeuralBodyField:
        """Pose and voxelise the codes, run the sparse CNN, build the occupancy grid (differentiable)."""
        return self._frame(frame_index, body, compiled=False)

    def compile_frame(self, frame_index: int, body: FrameBody) -> NeuralBodyField:
        """:meth:`prepare_frame` without gradients, plus the first density layer precomputed at the
        finest corners near the body (:func:`~neuralbody.models.inference_fold.fuse_first_layer`)."""
        with torch.no_grad():
            return self._frame(frame_index, body, compiled=True)

    def _frame(self, frame_index: int, body: FrameBody, *, compiled: bool) -> NeuralBodyField:
        config = self.config
        device = self.codes_per_vertex.weight.device
        vertices = body.vertices.to(device=device, dtype=torch.float32)
        if vertices.ndim != 2 or vertices.shape != (self.num_vertices, 3):
            raise ValueError(
                f"body.vertices must be ({self.num_vertices}, 3) for this model, got {tuple(vertices.shape)}"
            )
        rigid = RigidDeformer(axis_angle_to_matrix(body.Rh.to(device=device, dtype=torch.float32).reshape(3)),
                              body.Th.to(device=device, dtype=torch.float32).reshape(3))
        vertices_body = rigid.to_body(vertices)
        origin = vertices_body.min(dim=0).values
        coords = torch.round((vertices_body - origin) / config.voxel_size).long()
        coords, inverse = sort_coords(coords)
        counts = torch.bincount(inverse, minlength=coords.shape[0]).clamp_min(1).to(torch.float32)
        codes = torch.zeros((coords.shape[0], config.code_dim), device=device)
        codes = codes.index_add(0, inverse, self.codes_per_vertex.weight) / counts[:, None]
        volume = SparseVolume(coords, codes)
        levels = self.diffusion(volume, keep_input_level=config.keep_input_level)
        fused = None
        if compiled:
            fused = fuse_first_layer(levels, coords, self.density_mlp[0], dilation=FUSE_DILATION,
                                     workers=cpu_workers(0, device))
        carry = None
        if config.canonical_freqs > 0 or config.texture_cells:
            reference = self.reference_vertices if bool(self.has_reference) else vertices_body
            pairs = torch.cat([vertices_body, reference, torch.ones_like(vertices_body[:, :1])], dim=1)
            pairs = pairs.new_zeros(coords.shape[0], 7).index_add(0, inverse, pairs) / counts[:, None]
            # same active set as the codes: shares their dense row index
            carry = CarryDeformer(SparseVolume(coords, pairs.detach(), 1, volume.keys, volume.cache), origin,
                                  config.voxel_size)
        occupancy = None
        if config.occupancy_margin > 0:
            occupancy = occupancy_grid(vertices_body, cell=config.occupancy_cell, margin=config.occupancy_margin)
        box_min, box_max = body_box(vertices, config.box_padding)
        return NeuralBodyField(
            model=self, frame_index=int(frame_index), box_min=box_min, box_max=box_max, body_frame=rigid,
            levels=levels, origin=origin, occupancy=occupancy, carry=carry, fused=fused,
        )
