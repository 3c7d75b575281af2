"""neuralbody.models: radiance-field models of a moving person and their factory.

The protocol every model follows (what the renderer, trainer and evaluator may ask) is in
:mod:`neuralbody.models.base`; deformers between posed and canonical space in
:mod:`neuralbody.models.deformer`.
"""

from __future__ import annotations

from neuralbody.body.frame_body import FrameBody
from neuralbody.models.base import DensityQuery, FrameField, RadianceFieldModel
from neuralbody.models.deformer import CanonicalPoints, Deformer

MODEL_KINDS = ("neuralbody", "frame_nerf", "avatar")


def build_model(kind: str, *, num_vertices: int, num_frames: int, options: dict | None = None) -> RadianceFieldModel:
    """Build a model by name.

    Args:
        kind: "neuralbody" (:class:`neuralbody.models.neural_body.NeuralBody`; options: a
            ``preset`` "fast" | "faithful" plus :class:`NeuralBodyConfig` field overrides) or
            "frame_nerf" (the frame-conditioned NeRF baseline; options: FrameNerfConfig fields,
            a ``preset`` key is ignored) or "avatar" (the animatable canonical avatar,
            :class:`neuralbody.models.canonical_avatar.CanonicalAvatar`; options: AvatarConfig
            fields, a ``preset`` key is ignored; built without its body rig, which
            ``set_reference`` or a checkpoint gives it).
        num_vertices: body vertices per frame (6890 for SMPL, 13718 for Anny; the avatar takes any).
        num_frames: appearance codes; frames at or beyond it use the last one.
        options: model options (JSON-able dict), stored in the run's config.
    """
    if kind == "neuralbody":
        from neuralbody.models.neural_body import NeuralBody, NeuralBodyConfig

        return NeuralBody(num_vertices, num_frames, NeuralBodyConfig.from_options(options))
    if kind == "frame_nerf":
        from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig

        return FrameNerf(num_frames, FrameNerfConfig.from_options(options))
    if kind == "avatar":
        from neuralbody.models.canonical_avatar import AvatarConfig, CanonicalAvatar

        return CanonicalAvatar(num_frames, AvatarConfig.from_options(options))
    raise ValueError(f"unknown model kind {kind!r}; choose one of {MODEL_KINDS}")


__all__ = [
    "CanonicalPoints",
    "Deformer",
    "DensityQuery",
    "FrameBody",
    "FrameField",
    "MODEL_KINDS",
    "RadianceFieldModel",
    "build_model",
]
