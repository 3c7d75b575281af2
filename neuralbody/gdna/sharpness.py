"""How sharp a normal map is: the energy of its discrete Laplacian over the mask's interior.

For a unit-normal map ``N`` (H, W, 3) with a mask ``M``, the 4-neighbour Laplacian at an interior
pixel ``p`` (``p`` and its four neighbours on the mask) is
``L(p) = N(p) - (N(up) + N(down) + N(left) + N(right)) / 4`` and the map's high-frequency energy
is ``E(N) = mean_{p interior} |L(p)|^2`` (no units: normals are unit). In the Fourier domain the
Laplacian's response grows as ``|k|^2`` near 0 (``E`` weighs each frequency's power by ``~|k|^4``),
so ``E`` counts folds, creases and wrinkles and ignores the smooth shading of the body's large
curvature; silhouette pixels, whose neighbours are background, do not count. The sharpness of a
model's normals against a scan's, on the same pixels, is the ratio ``E(N_model) / E(N_scan)``: 1
is as much fine detail as the scan, below 1 smoother. :func:`laplacian_energy_reference` is the
slow pixel loop used as the test oracle.

A distribution-level figure beside it, FID-like but on hand-made features: every 3 x 3 patch of
the maps' high-frequency parts (the map less its Gaussian blur over the mask, what the
adversarial loss's discriminator sees, :func:`~neuralbody.gdna.discriminator.high_pass`), 27
numbers a patch fully on the mask, pooled over many maps; the Fréchet distance between the
Gaussians fitted to the model's patches and to the scans' (:func:`frechet_distance`): 0 when
the local detail of the two has the same mean and covariance, whatever the pixel-wise agreement.
"""

from __future__ import annotations

import torch

from neuralbody.gdna.discriminator import high_pass


def _check(normals: torch.Tensor, mask: torch.Tensor) -> None:
    if normals.ndim != 3 or normals.shape[2] != 3 or mask.shape != normals.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"laplacian_energy: normals (H, W, 3) and a bool mask (H, W), got {tuple(normals.shape)}, "
                         f"{tuple(mask.shape)} {mask.dtype}")


def interior(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: pixels of ``mask`` (H, W) bool whose four neighbours are on it too (no pixel on the border)."""
    out = torch.zeros_like(mask)
    out[1:-1, 1:-1] = (mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:])
    return out


def laplacian_energy(normals: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """(``E(N)``, interior pixels) of a normal map (H, W, 3) and its mask (H, W) bool (module docstring); (0, 0)
    without interior pixels."""
    _check(normals, mask)
    inner = interior(mask)
    count = int(inner.sum())
    if not count:
        return 0.0, 0
    n = normals.double()
    lap = torch.zeros_like(n)
    lap[1:-1, 1:-1] = n[1:-1, 1:-1] - 0.25 * (n[:-2, 1:-1] + n[2:, 1:-1] + n[1:-1, :-2] + n[1:-1, 2:])
    return float(lap[inner].pow(2).sum(dim=1).mean()), count


def laplacian_energy_reference(normals: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """The same as :func:`laplacian_energy`, one pixel at a time."""
    _check(normals, mask)
    h, w = mask.shape
    total, count = 0.0, 0
    for i in range(1, h - 1):
        for j in range(1, w - 1):
            around = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
            if not (bool(mask[i, j]) and all(bool(mask[a, b]) for a, b in around)):
                continue
            mean = sum(normals[a, b].double() for a, b in around) / 4.0
            total += float((normals[i, j].double() - mean).pow(2).sum())
            count += 1
    return (total / count if count else 0.0), count


def detail_patches(normals: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """(P, 27) float64 the 3 x 3 patches of the high-passed map (:func:`~neuralbody.gdna.discriminator.high_pass`,
    ``sigma`` pixels) of a normal map (H, W, 3) whose nine pixels are on the mask (H, W) bool, row by row."""
    _check(normals, mask)
    detail = high_pass(normals[None], mask[None], sigma)[0].double()
    h, w = mask.shape
    if h < 3 or w < 3:
        return torch.zeros(0, 27, dtype=torch.float64)
    offsets = [(di, dj) for di in range(3) for dj in range(3)]
    full = torch.stack([mask[di : h - 2 + di, dj : w - 2 + dj] for di, dj in offsets]).all(dim=0)
    patches = torch.cat([detail[di : h - 2 + di, dj : w - 2 + dj] for di, dj in offsets], dim=-1)
    return patches[full]


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets (N, D) and (M, D) (FID's formula)::

        |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^(1/2) C_b C_a^(1/2))^(1/2))

    (square roots of symmetric positive semi-definite matrices by eigendecomposition, float64)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"frechet_distance: two feature sets (N, D), (M, D) with N, M >= 2, got {tuple(a.shape)}, "
                         f"{tuple(b.shape)}")
    a, b = a.double(), b.double()

    def root(matrix: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(0.5 * (matrix + matrix.T))
        return (vectors * values.clamp_min(0).sqrt()) @ vectors.T

    ca, cb = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    half = root(ca)
    cross = root(half @ cb @ half)
    return float((a.mean(0) - b.mean(0)).pow(2).sum() + torch.trace(ca + cb - 2.0 * cross))
