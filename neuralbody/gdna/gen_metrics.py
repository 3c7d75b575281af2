"""The standard 3D generative metrics over Chamfer distance: COV, MMD and 1-NNA.

Given a generated set ``G`` and a reference set ``R`` of shapes (each a point set sampled on
its surface, metres) and the Chamfer distance between point sets::

    CD(A, B) = mean_{a in A} min_{b in B} |a - b|^2 + mean_{b in B} min_{a in A} |a - b|^2   (m^2)

* coverage ``COV = |{argmin_{r in R} CD(g, r) : g in G}| / |R|``: the share of reference shapes
  that are the nearest reference of at least one generated shape (high: the generator covers
  the references' variety);
* minimum matching distance ``MMD = mean_{r in R} min_{g in G} CD(g, r)`` (low: every reference
  has a close generated shape: quality);
* 1-nearest-neighbour accuracy: each shape of ``G u R`` is classified by the label (generated or
  reference) of its nearest other shape; ``1-NNA`` is the share classified right. 50 % when the
  two sets are indistinguishable samples of one distribution, 100 % when they are apart; a
  generator that copies the references exactly scores 0 % (each shape's twin is in the other set).

The fast functions work on distance matrices; :func:`one_nna_reference` and
:func:`chamfer_reference` are the slow, obvious loops that the tests hold them to.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class GenerativeMetrics:
    """Generated shapes against reference shapes (module docstring).

    Attributes:
        coverage: COV, in [0, 1].
        mmd: MMD, square metres (Chamfer-L2).
        one_nna: 1-NNA, in [0, 1] (0.5 is best).
        num_generated, num_reference: the set sizes.
    """

    coverage: float
    mmd: float
    one_nna: float
    num_generated: int
    num_reference: int


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Chamfer distance (module docstring), square metres, of point sets a (N, 3) and b (M, 3)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != 3 or b.shape[1] != 3 or not len(a) or not len(b):
        raise ValueError(f"chamfer_distance: a and b must be non-empty (N, 3), got {tuple(a.shape)}, {tuple(b.shape)}")
    squared = torch.cdist(a.double(), b.double()).square()
    return squared.min(dim=1).values.mean() + squared.min(dim=0).values.mean()


def chamfer_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """:func:`chamfer_distance` point by point (test oracle)."""
    def one_way(p, q):
        return sum(min(float(((x - y) ** 2).sum()) for y in q) for x in p) / len(p)
    a, b = a.double(), b.double()
    return one_way(a, b) + one_way(b, a)


def distance_matrix(first: list[torch.Tensor], second: list[torch.Tensor]) -> torch.Tensor:
    """(len(first), len(second)) Chamfer distances between point sets, each (N_i, 3), metres."""
    return torch.stack([torch.stack([chamfer_distance(a, b) for b in second]) for a in first]) if first and second \
        else torch.zeros(len(first), len(second), dtype=torch.float64)


def coverage_and_mmd(gen_ref: torch.Tensor) -> tuple[float, float]:
    """(COV, MMD) of the (G, R) generated-to-reference distance matrix."""
    if gen_ref.ndim != 2 or 0 in gen_ref.shape:
        raise ValueError(f"coverage_and_mmd: gen_ref must be a non-empty (G, R) matrix, got {tuple(gen_ref.shape)}")
    matched = torch.unique(gen_ref.argmin(dim=1))
    return matched.numel() / gen_ref.shape[1], float(gen_ref.min(dim=0).values.mean())


def one_nna(gen_gen: torch.Tensor, gen_ref: torch.Tensor, ref_ref: torch.Tensor) -> float:
    """1-NNA from the (G, G), (G, R) and (R, R) distance matrices (the diagonals are ignored)."""
    g, r = gen_ref.shape
    if gen_gen.shape != (g, g) or ref_ref.shape != (r, r) or g < 1 or r < 1 or g + r < 3:
        raise ValueError(f"one_nna: need (G, G), (G, R), (R, R) with G, R >= 1 and G + R >= 3, got "
                         f"{tuple(gen_gen.shape)}, {tuple(gen_ref.shape)}, {tuple(ref_ref.shape)}")
    full = torch.cat([torch.cat([gen_gen, gen_ref], dim=1), torch.cat([gen_ref.T, ref_ref], dim=1)]).double()
    full = full + torch.diag(torch.full((g + r,), float("inf"), dtype=full.dtype))
    labels = torch.cat([torch.zeros(g, dtype=torch.bool), torch.ones(r, dtype=torch.bool)])
    nearest = full.argmin(dim=1)
    return float((labels[nearest] == labels).double().mean())


def one_nna_reference(generated: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """1-NNA by looping over every shape and every other shape (test oracle)."""
    shapes = [(s, False) for s in generated] + [(s, True) for s in reference]
    right = 0
    for i, (shape, label) in enumerate(shapes):
        best, best_label = float("inf"), None
        for j, (other, other_label) in enumerate(shapes):
            if i != j and (d := chamfer_reference(shape, other)) < best:
                best, best_label = d, other_label
        right += best_label == label
    return right / len(shapes)


def generative_metrics(generated: list[torch.Tensor], reference: list[torch.Tensor]) -> GenerativeMetrics:
    """COV, MMD and 1-NNA of generated point sets against reference point sets, each (N_i, 3) metres."""
    if not generated or not reference:
        raise ValueError(f"generative_metrics: need shapes in both sets, got {len(generated)}, {len(reference)}")
    gen_ref = distance_matrix(generated, reference)
    coverage, mmd = coverage_and_mmd(gen_ref)
    nna = one_nna(distance_matrix(generated, generated), gen_ref, distance_matrix(reference, reference))
    return GenerativeMetrics(coverage, mmd, nna, len(generated), len(reference))
