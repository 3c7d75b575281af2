"""neuralbody.body: parametric body models behind one interface.

``load_body_model("anny")`` (default, free: ``pip install anny``) or
``load_body_model("smpl", model_path=...)`` (needs the SMPL model file from smpl.is.tue.mpg.de).
Posing maths lives in :mod:`neuralbody.body.lbs`.
"""

from __future__ import annotations

from pathlib import Path

from neuralbody.body.base import BodyModel, BodyOutput
from neuralbody.body.frame_body import FrameBody

BODY_MODELS = ("anny", "smpl")


def load_body_model(name: str = "anny", model_path: str | Path | None = None, device=None) -> BodyModel:
    """A body model by name on ``device`` (CPU if None).

    Args:
        name: ``"anny"`` (free default) or ``"smpl"``.
        model_path: the SMPL model file (.pkl or .npz); required for ``"smpl"``, ignored for Anny.
        device: torch device for the buffers.
    Raises:
        ValueError: unknown name, or SMPL without a model file.
        FileNotFoundError: the SMPL model file does not exist.
    """
    key = name.lower()
    if key == "anny":
        from neuralbody.body.anny import load_anny

        return load_anny(device=device)
    if key == "smpl":
        from neuralbody.body.smpl import load_smpl

        if model_path is None:
            raise ValueError(
                "the SMPL body model needs its model file: pass "
                "model_path=/path/to/basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl (SMPL requires a free "
                "registration at https://smpl.is.tue.mpg.de); or use the free default, name='anny'"
            )
        return load_smpl(model_path, device=device)
    raise ValueError(f"unknown body model {name!r}; choose one of {BODY_MODELS}")


__all__ = ["BODY_MODELS", "BodyModel", "BodyOutput", "FrameBody", "load_body_model"]
