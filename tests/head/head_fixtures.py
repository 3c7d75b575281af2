"""A tiny stand-in for Anny's head rig (a sphere with four bones) and a tiny head capture, for fast tests."""

from __future__ import annotations

import math

import torch

from anny.models.facial_actions import FACIAL_ACTION_LABELS

from neuralbody.head.rig import NUM_ACTIONS, HeadRig


def sphere_mesh(rings: int = 8, sectors: int = 12, radius: float = 0.08, centre=(0.0, -0.04, 0.69)):
    """(V, 3) vertices and (F, 3) faces of a closed UV sphere, metres."""
    vertices = [(0.0, 0.0, radius)]
    for i in range(1, rings):
        theta = math.pi * i / rings
        for j in range(sectors):
            phi = 2 * math.pi * j / sectors
            vertices.append((radius * math.sin(theta) * math.cos(phi), radius * math.sin(theta) * math.sin(phi),
                             radius * math.cos(theta)))
    vertices.append((0.0, 0.0, -radius))
    faces = []
    for j in range(sectors):
        faces.append((0, 1 + j, 1 + (j + 1) % sectors))
    for i in range(rings - 2):
        for j in range(sectors):
            a, b = 1 + i * sectors + j, 1 + i * sectors + (j + 1) % sectors
            faces += [(a, a + sectors, b), (b, a + sectors, b + sectors)]
    last = len(vertices) - 1
    for j in range(sectors):
        a, b = 1 + (rings - 2) * sectors + j, 1 + (rings - 2) * sectors + (j + 1) % sectors
        faces.append((a, last, b))
    return torch.tensor(vertices) + torch.tensor(centre), torch.tensor(faces, dtype=torch.long)


def tiny_rig(seed: int = 0) -> HeadRig:
    """A sphere 'head' with smooth four-bone weights (more jaw low and in front) and small random expressions."""
    vertices, faces = sphere_mesh()
    generator = torch.Generator().manual_seed(seed)
    z, y = vertices[:, 2] - 0.69, vertices[:, 1] + 0.04
    logits = torch.stack([-4 - 60 * z, -2 - 40 * z, torch.full_like(z, 1.0), -60 * (z + y)], dim=1)
    basis = 0.004 * torch.randn(NUM_ACTIONS, vertices.shape[0], 3, generator=generator)
    return HeadRig(rest_vertices=vertices.float(), faces=faces, expression_basis=basis,
                   weights=torch.softmax(logits, dim=1).float(),
                   rest_joints=torch.tensor([[0.0, -0.0075, 0.56], [0.0, -0.016, 0.589], [0.0, -0.042, 0.657],
                                             [0.0, -0.058, 0.663]]),
                   action_labels=list(FACIAL_ACTION_LABELS),
                   eye_centres=torch.tensor([[0.029, -0.119, 0.697], [-0.029, -0.119, 0.697]]))
