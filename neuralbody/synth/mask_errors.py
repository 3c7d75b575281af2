"""Person masks with the errors of real segmentations, made from exact ones.

A real capture's masks come from a segmentation network (ZJU-MoCap: CIHP parsing) and are
wrong in the ways listed in :data:`MASK_ERRORS`, each with a size of ``amount`` pixels:

* ``erode``: the border pulled in by ``amount`` px (a disc of that radius);
* ``dilate``: the border pushed out by ``amount`` px (a halo of background);
* ``ragged``: the border moved in and out by a smooth random offset of standard deviation
  ``amount`` px (correlation length ``2 amount`` px): the mask is
  ``signed_distance + offset > 0.5`` with the signed distance to the border (positive inside);
* ``holes``: 1-3 discs of radius ``1.5 amount`` px cut out of the mask's interior (missed
  patches of similar colour to the background).

Errors apply in the order given. Everything is seeded by the ``numpy`` generator passed in.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MASK_ERRORS = ("erode", "dilate", "ragged", "holes")


def _disc(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    v, u = np.mgrid[-r : r + 1, -r : r + 1]
    return u * u + v * v <= radius * radius


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) float64 distance in pixels to the nearest pixel of the other kind: positive inside ``mask``
    (>= 1), negative outside (<= -1)."""
    return ndimage.distance_transform_edt(mask) - ndimage.distance_transform_edt(~mask)


def _ragged(mask: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma=2.0 * amount, mode="reflect")
    noise *= amount / max(float(noise.std()), 1e-12)
    return signed_distance(mask) + noise > 0.5


def _holes(mask: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    radius = 1.5 * amount
    inside = np.argwhere(ndimage.distance_transform_edt(mask) > radius + 1.0)
    if len(inside) == 0:
        return mask.copy()
    out = mask.copy()
    v, u = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    for index in rng.choice(len(inside), size=min(int(rng.integers(1, 4)), len(inside)), replace=False):
        row, col = inside[index]
        out[(v - row) ** 2 + (u - col) ** 2 <= radius * radius] = False
    return out


def degrade_mask(mask: np.ndarray, errors: tuple[str, ...], amount: float, rng: np.random.Generator) -> np.ndarray:
    """The exact (H, W) bool ``mask`` with ``errors`` (names in :data:`MASK_ERRORS`) of ``amount`` pixels.

    Returns a new (H, W) bool array; an empty mask stays empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"degrade_mask: mask must be (H, W), got shape {mask.shape}")
    unknown = [e for e in errors if e not in MASK_ERRORS]
    if unknown:
        raise ValueError(f"degrade_mask: unknown mask errors {unknown}; choose from {', '.join(MASK_ERRORS)}")
    if errors and amount <= 0:
        raise ValueError(f"degrade_mask: amount must be > 0 pixels, got {amount}")
    out = mask.copy()
    if not out.any():
        return out
    for error in errors:
        if error == "erode":
            out = ndimage.binary_erosion(out, structure=_disc(amount))
        elif error == "dilate":
            out = ndimage.binary_dilation(out, structure=_disc(amount))
        elif error == "ragged":
            out = _ragged(out, amount, rng)
        else:
            out = _holes(out, amount, rng)
    return out
