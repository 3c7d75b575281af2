"""Colour-coded body-part segmentation for Neural Body Fitting, from the body model's skinning weights.

The body is cut into :data:`PART_NAMES` (15 parts: head, upper and lower torso, and upper,
lower and end segment of each limb). Bone ``b`` belongs to part ``part_of_bone(name_b)`` by its
Anny / MakeHuman name; vertex ``v`` belongs to the part that holds most of its skinning weight,

    part(v) = argmax_p  sum_{b in p} w_vb,

so part borders follow the skinning (no hand-painted labels). A rendered pixel gets the part of
the hit triangle's corner with the largest barycentric weight, i.e. the part of the mesh vertex
nearest the hit point on that triangle; label 0 is the background and part ``p`` is label
``p + 1``. :data:`PART_COLOURS` is the colour code of the labels (background black).
"""

from __future__ import annotations

import numpy as np
import torch

PART_NAMES = (
    "head", "upper_torso", "lower_torso",
    "upperarm.L", "lowerarm.L", "hand.L", "upperarm.R", "lowerarm.R", "hand.R",
    "upperleg.L", "lowerleg.L", "foot.L", "upperleg.R", "lowerleg.R", "foot.R",
)  # fmt: skip
"""The 15 body parts ("L" is the person's left). Label ``p + 1`` in a part map; 0 is background."""

NUM_LABELS = len(PART_NAMES) + 1

PART_COLOURS = np.array(
    [
        [0, 0, 0],  # background
        [255, 255, 255], [255, 215, 0], [139, 69, 19],
        [255, 0, 0], [255, 128, 128], [128, 0, 0], [0, 0, 255], [128, 160, 255], [0, 0, 128],
        [0, 200, 0], [160, 255, 160], [0, 96, 0], [255, 0, 255], [255, 160, 255], [112, 0, 112],
    ],
    dtype=np.uint8,
)
"""(16, 3) uint8 colour of each label (row 0: background, row p + 1: part p)."""

_LIMB_SEGMENTS = (
    (("upperarm",), "upperarm"),
    (("lowerarm",), "lowerarm"),
    (("wrist", "finger", "metacarpal"), "hand"),
    (("upperleg",), "upperleg"),
    (("lowerleg",), "lowerleg"),
    (("foot", "toe"), "foot"),
)


def part_of_bone(name: str) -> int:
    """Index into :data:`PART_NAMES` of an Anny bone by its name; raises ValueError for an unknown bone."""
    base, _, side = name.partition(".")
    base = base.lower()
    if base.startswith(("neck", "head", "eye", "jaw", "tongue")):
        return PART_NAMES.index("head")
    if base in ("root", "pelvis", "spine05", "spine04"):
        return PART_NAMES.index("lower_torso")
    if base.startswith(("spine", "clavicle", "shoulder", "breast")):
        return PART_NAMES.index("upper_torso")
    for prefixes, part in _LIMB_SEGMENTS:
        if base.startswith(prefixes):
            if side not in ("L", "R"):
                raise ValueError(f"nbf_parts: limb bone {name!r} has no .L / .R side")
            return PART_NAMES.index(f"{part}.{side}")
    raise ValueError(f"nbf_parts: no body part for bone {name!r}; extend nbf_parts.part_of_bone")


def vertex_parts(skinning_weights: torch.Tensor, joint_names: list[str]) -> torch.Tensor:
    """(V,) int64 part index of each vertex: the part holding most of its skinning weight.

    Args:
        skinning_weights: (V, J) skinning weights (rows sum to one).
        joint_names: the J bone names.
    """
    if skinning_weights.ndim != 2 or skinning_weights.shape[1] != len(joint_names):
        raise ValueError(
            f"vertex_parts: skinning_weights must be (V, {len(joint_names)}) for {len(joint_names)} bones, "
            f"got {tuple(skinning_weights.shape)}"
        )
    bone_part = torch.tensor([part_of_bone(n) for n in joint_names], device=skinning_weights.device)
    per_part = torch.zeros(skinning_weights.shape[0], len(PART_NAMES), dtype=skinning_weights.dtype,
                           device=skinning_weights.device)  # fmt: skip
    per_part.index_add_(1, bone_part, skinning_weights)
    return per_part.argmax(dim=1)


def hit_labels(
    vertex_part: torch.Tensor, faces: torch.Tensor, face_ids: torch.Tensor, barycentrics: torch.Tensor
) -> torch.Tensor:
    """(N,) int64 labels of ray hits: 1 + part of the hit face's corner with the largest barycentric weight.

    Args:
        vertex_part: (V,) int64 part of each vertex (:func:`vertex_parts`).
        faces: (F, 3) int64 triangles.
        face_ids: (N,) hit face of each ray (-1: no hit, label 0).
        barycentrics: (N, 3) weights of the hit face's corners.
    """
    if face_ids.ndim != 1 or barycentrics.shape != (face_ids.shape[0], 3):
        raise ValueError(
            f"hit_labels: face_ids must be (N,) and barycentrics (N, 3), got {tuple(face_ids.shape)}, "
            f"{tuple(barycentrics.shape)}"
        )
    hit = face_ids >= 0
    corner = barycentrics.argmax(dim=1)
    vertex = faces[face_ids.clamp_min(0), corner]
    return torch.where(hit, vertex_part[vertex] + 1, torch.zeros_like(vertex))


def colour_code(labels: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colour-coded image of a label map (...,) with values in [0, 16)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_LABELS):
        raise ValueError(f"colour_code: labels must lie in [0, {NUM_LABELS}), got [{labels.min()}, {labels.max()}]")
    return PART_COLOURS[labels]
