"""neuralbody.models: radiance-field models of a moving person and their factory."""

from __future__ import annotations

from neuralbody.models.base import FrameBody, FrameState, RadianceFieldModel

MODEL_KINDS = ("neuralbody", "frame_nerf")


def build_model(kind: str, *, num_vertices: int, num_frames: int, options: dict | None = None) -> RadianceFieldModel:
    """Build a model by name.

    Args:
        kind: "neuralbody" (:class:`neuralbody.models.neural_body.NeuralBody`; options: a
            ``preset`` "fast" | "faithful" plus :class:`NeuralBodyConfig` field overrides) or
            "frame_nerf" (the frame-conditioned NeRF baseline; options: FrameNerfConfig fields).
        num_vertices: body vertices per frame (6890 for SMPL, 13718 for Anny).
        num_frames: appearance codes; frames at or beyond it use the last one.
        options: model options (JSON-able dict), stored in the run's config.
    """
    if kind == "neuralbody":
        from neuralbody.models.neural_body import NeuralBody, NeuralBodyConfig

        return NeuralBody(num_vertices, num_frames, NeuralBodyConfig.from_options(options))
    if kind == "frame_nerf":
        from neuralbody.models.frame_nerf import FrameNerf, FrameNerfConfig

        options = dict(options or {})
        options.pop("preset", None)
        if hasattr(FrameNerfConfig, "from_options"):
            config = FrameNerfConfig.from_options(options)
        else:
            config = FrameNerfConfig(**options)
        return FrameNerf(num_frames, config)
    raise ValueError(f"unknown model kind {kind!r}; choose one of {MODEL_KINDS}")


__all__ = ["FrameBody", "FrameState", "RadianceFieldModel", "build_model", "MODEL_KINDS"]
