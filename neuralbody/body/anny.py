"""Anny (NAVER, Apache-2.0, ``pip install anny``) as a :class:`BodyModel`: the free default body.

Anny gives the shaped rest mesh (13,718 vertices, 104 bones) from 6 phenotype values in
[0, 1] (gender, age, muscle, weight, height, proportions; 0.5 each is the mean person):

    x_rest   = x_template + sum_k c_k(phenotype) B_k + o,   h_rest = h_template + sum_k c_k H_k + o,

with ``c_k`` Anny's phenotype blend-shape coefficients (values outside [0, 1] are clamped by
Anny) and ``o = (0, 0, floor_offset)``. Posing is ours, in the SMPL form of
:mod:`neuralbody.body.lbs`: each bone's axis-angle ``theta_j`` is a rotation about its head
``h_j`` in world-aligned axes of the rest pose, chained from the root down, then linear blend
skinning with Anny's weights, then ``x_world = R(Rh) x_body + Th``. All zeros is exactly
Anny's rest pose (``vertices == rest_vertices``). This spans the same articulated poses as
Anny's own parameterisations; only the origin of the rotation parameters differs.

World convention (body frame with Rh = Th = 0): z up, metres, x towards the person's left,
the person faces -y, and the soles touch z = 0 (Anny's native frame is already z up and
faces -y; only the vertical offset ``o`` is added, measured on the mean person's lowest
vertex; Anny keeps the soles fixed across phenotypes to within ~2 mm).

The first use builds Anny's model data once (about 95 s, ~800 MB under ``ANNY_CACHE_DIR``,
default ``~/.cache/anny``); :func:`load_anny` says so before it starts and shows elapsed time
(a bar on stderr, hidden when progress is off: :mod:`neuralbody.io.progress`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import torch

from neuralbody.body import lbs
from neuralbody.body.base import BodyModel, BodyOutput
from neuralbody.io.progress import progress_bar, progress_enabled

logger = logging.getLogger(__name__)

NUM_BONES = 104
PHENOTYPE_LABELS = ("gender", "age", "muscle", "weight", "height", "proportions")


class AnnyBody(BodyModel):
    """Anny as a :class:`BodyModel`. pose_dim 312 (104 bones x axis-angle, root first), shape_dim 6.

    Attributes:
        joint_names: the 104 Anny bone labels (``root``, ``pelvis.L``, ..., ``eye.R``).
        phenotype_labels: the 6 shape parameters, in order.
    """

    name = "anny"

    def __init__(self, model, dtype: torch.dtype = torch.float32):
        """Copy the buffers this adapter needs from an ``anny.Anny`` model (the model is not kept)."""
        super().__init__()
        from anny.models.phenotype import make_phenotype_anchors

        if list(model.phenotype_labels) != list(PHENOTYPE_LABELS):
            raise ValueError(
                f"AnnyBody expects phenotypes {PHENOTYPE_LABELS}, the Anny model has {model.phenotype_labels}"
            )
        if model.local_change_labels or model.facial_action_labels:
            raise ValueError("AnnyBody expects an Anny model without local changes or facial actions")
        self._joint_names = list(model.bone_labels)
        self._parents = [int(p) for p in model.bone_parents]
        self._parents[0] = -1
        self.phenotype_labels = list(PHENOTYPE_LABELS)
        self._extrapolate = bool(model.extrapolate_phenotypes)
        with torch.no_grad():
            # Phenotype -> blend-shape coefficient stage, kept in float64 (tiny, and ill-conditioned).
            self.register_buffer("phenotype_mask", model.stacked_phenotype_blend_shapes_mask.detach().double().clone())
            projection = model.phenotype_blendshape_projection
            projection = None if projection is None else projection.detach().double().clone()
            self.register_buffer("phenotype_projection", projection)
            self._anchor_names = sorted(make_phenotype_anchors(torch.float64))
            for label, anchors in make_phenotype_anchors(torch.float64).items():
                self.register_buffer(f"anchors_{label}", anchors)
            count = model.template_vertices.shape[0]
            self.register_buffer("template_vertices", model.template_vertices.detach().to(dtype).clone())
            self.register_buffer("blendshapes", model.blendshapes.detach().reshape(-1, count * 3).to(dtype).clone())
            self.register_buffer("template_heads", model.template_bone_heads.detach().to(dtype).clone())
            head_blendshapes = model.bone_heads_blendshapes.detach().reshape(-1, NUM_BONES * 3)
            self.register_buffer("head_blendshapes", head_blendshapes.to(dtype).clone())
            weights = torch.zeros(count, NUM_BONES, dtype=torch.float64)
            weights.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.double())
            self.register_buffer("lbs_weights", (weights / weights.sum(1, keepdim=True)).to(dtype))
            self.register_buffer("_faces", model.get_triangular_faces().long().clone())
            self.register_buffer("floor_offset", torch.zeros(3, dtype=dtype))
            mean_rest = self._rest(self.default_shapes(1).to(dtype))[0]
            self.floor_offset[2] = -mean_rest[0, :, 2].min()
        if len(self.joint_names) != NUM_BONES or self.blendshapes.shape[0] != self.head_blendshapes.shape[0]:
            raise ValueError(f"AnnyBody expects {NUM_BONES} bones and matching blend shapes")

    # --- BodyModel interface -------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return self.template_vertices.shape[0]

    @property
    def num_joints(self) -> int:
        return NUM_BONES

    @property
    def joint_names(self) -> list[str]:
        return list(self._joint_names)

    @property
    def shape_dim(self) -> int:
        return len(PHENOTYPE_LABELS)

    @property
    def faces(self) -> torch.Tensor:
        return self._faces

    @property
    def parents(self) -> list[int]:
        return list(self._parents)

    def default_shapes(self, batch: int) -> torch.Tensor:
        """(B, 6) the mean person: every phenotype 0.5."""
        return torch.full((batch, len(PHENOTYPE_LABELS)), 0.5)

    # --- maths ---------------------------------------------------------------------------
    def blendshape_coefficients(self, shapes: torch.Tensor) -> torch.Tensor:
        """(B, K) Anny blend-shape coefficients of phenotypes ``shapes`` (B, 6), computed in float64."""
        from anny.models.phenotype import phenotype_blendshape_weights

        anchors = {label: getattr(self, f"anchors_{label}") for label in self._anchor_names}
        params = shapes.to(self.phenotype_mask.dtype)
        coeffs = phenotype_blendshape_weights(
            params, self.phenotype_labels, anchors, self.phenotype_mask, extrapolate=self._extrapolate
        )
        if self.phenotype_projection is not None:
            coeffs = coeffs @ self.phenotype_projection
        return coeffs

    def _rest(self, shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest vertices (B, V, 3) and rest bone heads (B, J, 3), body frame, metres."""
        dtype = shapes.dtype
        coeffs = self.blendshape_coefficients(shapes).to(dtype)
        batch = shapes.shape[0]
        offset = self.floor_offset.to(dtype)
        vertex_offsets = (coeffs @ self.blendshapes.to(dtype)).reshape(batch, -1, 3)
        head_offsets = (coeffs @ self.head_blendshapes.to(dtype)).reshape(batch, -1, 3)
        vertices = self.template_vertices.to(dtype) + vertex_offsets + offset
        heads = self.template_heads.to(dtype) + head_offsets + offset
        return vertices, heads

    def forward(self, poses, shapes=None, Rh=None, Th=None) -> BodyOutput:
        """Pose Anny. poses: (B, 312) radians; shapes: (B, 6) in [0, 1]; Rh: (B, 3) radians; Th: (B, 3) metres.

        Computes in the dtype of ``poses``; world vertices, posed bone heads (``joints``) and
        world bone transforms such that ``lbs.linear_blend_skinning(rest_vertices,
        skinning_weights, bone_transforms) == vertices``.
        """
        poses, shapes, Rh, Th = self.check_inputs(poses, shapes, Rh, Th)
        batch = poses.shape[0]
        rest_vertices, rest_heads = self._rest(shapes)
        rotations = lbs.axis_angle_to_matrix(poses.reshape(batch, NUM_BONES, 3))
        kinematics = lbs.batch_rigid_transform(rest_heads, rotations, self._parents)
        world = lbs.global_transform(Rh, Th)[:, None] @ kinematics.bone_transforms
        weights = self.lbs_weights.to(poses.dtype)
        return BodyOutput(
            vertices=lbs.linear_blend_skinning(rest_vertices, weights, world),
            joints=lbs.apply_global(kinematics.posed_joints, Rh, Th),
            bone_transforms=world,
            rest_vertices=rest_vertices,
            rest_joints=rest_heads,
            faces=self._faces,
            skinning_weights=weights,
        )


# --- loading -------------------------------------------------------------------------------
def anny_cache_dir() -> Path:
    """Where Anny caches its built model data (``ANNY_CACHE_DIR``, default ``~/.cache/anny``)."""
    from anny.paths import get_anny_cache_path

    return Path(get_anny_cache_path())


def anny_cache_file() -> Path | None:
    """The cache file Anny reads for the default model, or None if Anny's internals changed.

    Anny names its cache files ``<cache>/v<data version>/<builder>_<hash>.safetensors``, the
    hash being the first 32 hex digits of the SHA-256 of the builder's JSON-encoded arguments;
    the default model is read through ``build_compact_model_data``.
    """
    try:
        import hashlib
        import json

        from anny.models import build_compact_model_data
        from anny.models.model_data import CURRENT_DATA_VERSION, RigConfig, TopologyConfig, _get_builder_metadata

        metadata = _get_builder_metadata(
            build_compact_model_data.__wrapped__,
            rig=RigConfig.from_string("anny"),
            topology=TopologyConfig.from_string("anny"),
            local_changes="none",
            facial_actions="none",
            phenotypes="default",
            rank=None,
        )
        digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()[:32]
        return anny_cache_dir() / f"v{CURRENT_DATA_VERSION}" / f"build_compact_model_data_{digest}.safetensors"
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def anny_cache_exists() -> bool:
    """Whether Anny's built model data for the default model is cached (no build needed)."""
    exact = anny_cache_file()
    if exact is not None:
        return exact.is_file()
    return any(anny_cache_dir().glob("v*/build_compact_model_data_*.safetensors"))


@contextlib.contextmanager
def _elapsed_bar(description: str):
    """A bar showing elapsed time, refreshed from a thread while the body runs; nothing when progress is off."""
    if not progress_enabled():
        yield
        return
    bar = progress_bar(total=None, desc=description, bar_format="{desc}: {elapsed} elapsed", leave=False)
    done = threading.Event()

    def tick():
        while not done.wait(0.5):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        bar.close()


def build_native_anny():
    """The default ``anny.Anny`` model (torch LBS, no Warp), building its cache first if needed."""
    import anny

    if not anny_cache_exists():
        logger.warning(
            "Building the Anny body model once (about 2 minutes, ~800 MB in %s); later runs load it in seconds",
            anny_cache_dir(),
        )
        start = time.perf_counter()
        with _elapsed_bar("Building Anny model data"):
            model = anny.Anny(skinning_method="lbs")
        logger.info("Anny model data built in %.0f s", time.perf_counter() - start)
        return model
    return anny.Anny(skinning_method="lbs")


def load_anny(device=None, dtype: torch.dtype = torch.float32) -> AnnyBody:
    """The default body model: :class:`AnnyBody` on ``device`` (CPU if None) with buffers in ``dtype``."""
    start = time.perf_counter()
    body = AnnyBody(build_native_anny(), dtype=dtype).to(device or "cpu")
    logger.info("Loaded the Anny body model in %.1f s", time.perf_counter() - start)
    return body
