"""The padded box around a posed body: where a person can be in one frame.

Neural Body samples rays, draws training pixels and scores images inside the posed
vertices' axis-aligned box grown by a padding (5 cm in its configurations)::

    box_min = min_v x_v - pad,   box_max = max_v x_v + pad      (world, metres)

The original evaluator's ZJU-MoCap configurations pad along the world's up axis only
(``axes=(2,)``); every other use pads all three axes.
"""

from __future__ import annotations

import numpy as np
import torch

BODY_BOX_PADDING = 0.05  # metres, Neural Body's padding of the posed vertices' box


def body_box(vertices, padding: float = BODY_BOX_PADDING, *, axes: tuple[int, ...] = (0, 1, 2)):
    """Axis-aligned box of posed vertices, padded.

    Args:
        vertices: (V, 3) posed vertices, world coordinates, metres (torch tensor or array).
        padding: metres added on both sides along each of ``axes``.
        axes: which world axes are padded (``(2,)``: the up axis only).

    Returns:
        box_min, box_max: (3,) each, the same type, dtype and device as ``vertices``.
    """
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise ValueError(f"body_box: vertices must be (V, 3) with V > 0, got {tuple(vertices.shape)}")
    pad = np.zeros(3)
    pad[list(axes)] = padding
    if isinstance(vertices, torch.Tensor):
        pad_t = torch.as_tensor(pad, dtype=vertices.dtype, device=vertices.device)
        return vertices.min(dim=0).values - pad_t, vertices.max(dim=0).values + pad_t
    vertices = np.asarray(vertices)
    return vertices.min(axis=0) - pad.astype(vertices.dtype), vertices.max(axis=0) + pad.astype(vertices.dtype)
