"""gDNA's adversarial loss in the detail stage: crops of the scans' normal maps, real against the model's.

Each detail step, for every scan drawn, one of its views (:mod:`neuralbody.gdna.normal_views`)
and a ``crop x crop`` window of it centred (clamped to the image) on a random masked pixel are
drawn from ``rng``. The real map is the scan's normals there; the fake map is the detail
network's normal at the pixels' canonical correspondences, posed by ``J^{-T}`` (exactly as the
normal loss poses it, :func:`~neuralbody.gdna.correspondences.posed_normals`) and turned into the
view's frame; both share the window's mask, and the discriminator sees their high-frequency
parts (:func:`~neuralbody.gdna.discriminator.high_pass`, ``sigma`` pixels). The detail network and codes get
``weight * L_G`` on top of the normal loss; the discriminator is then stepped on ``L_D``
(:mod:`neuralbody.gdna.discriminator`) with its own Adam (betas (0, 0.99), as gDNA).

:class:`Adversary` holds the discriminator and its optimiser; its state in a checkpoint is plain
values (:func:`adversary_state`, :func:`load_adversary_state`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.gdna.correspondences import posed_normals
from neuralbody.gdna.discriminator import DiscriminatorOptions, PatchDiscriminator, discriminator_input, high_pass
from neuralbody.gdna.latents import LatentCodes
from neuralbody.gdna.model import GenerativeModel
from neuralbody.gdna.normal_views import NormalViews
from neuralbody.gdna.training_data import PreparedScan


@dataclasses.dataclass
class Adversary:
    """The discriminator and its optimiser."""

    discriminator: PatchDiscriminator
    optimizer: torch.optim.Adam


def make_adversary(options: DiscriminatorOptions, lr: float, seed: int) -> Adversary:
    """A new discriminator (initialised from ``seed``, the global torch generator left as it was) and its Adam."""
    if not lr > 0:
        raise ValueError(f"make_adversary: lr must be > 0, got {lr}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        discriminator = PatchDiscriminator(options)
    return Adversary(discriminator, torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.0, 0.99)))


def adversary_state(adversary: Adversary) -> dict:
    """Plain values: the options, the discriminator's and the optimiser's state dicts."""
    return {"options": adversary.discriminator.options.to_dict(), "discriminator": adversary.discriminator.state_dict(),
            "optimizer": adversary.optimizer.state_dict()}


def load_adversary_state(adversary: Adversary, state: dict) -> None:
    """Load :func:`adversary_state`'s values (ValueError when the options differ)."""
    if DiscriminatorOptions(**state["options"]) != adversary.discriminator.options:
        raise ValueError(f"the checkpoint's discriminator is {state['options']}, not {adversary.discriminator.options}")
    adversary.discriminator.load_state_dict(state["discriminator"])
    adversary.optimizer.load_state_dict(state["optimizer"])


def draw_window(views: NormalViews, crop: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """(view, top row, left column) of a ``crop``-pixel window around a random masked pixel of a random view."""
    count, size = views.mask.shape[0], views.mask.shape[1]
    if not 1 <= crop <= size:
        raise ValueError(f"draw_window: crop must be in [1, {size}], got {crop}")
    usable = [v for v in range(count) if bool(views.mask[v].any())]
    if not usable:
        raise ValueError("draw_window: the scan's views have no masked pixel")
    view = int(usable[int(rng.integers(len(usable)))])
    pixels = torch.nonzero(views.mask[view])
    row, column = pixels[int(rng.integers(len(pixels)))].tolist()
    top = min(max(row - crop // 2, 0), size - crop)
    left = min(max(column - crop // 2, 0), size - crop)
    return view, top, left


def window_maps(model: GenerativeModel, views: NormalViews, window: tuple[int, int, int], crop: int,
                shape_code: torch.Tensor, detail_code: torch.Tensor,
                shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(real (crop, crop, 3), fake (crop, crop, 3), mask (crop, crop)) of one window; the fake map carries the
    gradient to the detail network and ``detail_code`` (Ld,); ``shape_code`` (Ls,), ``shapes`` (S,)."""
    view, top, left = window
    rows, columns = slice(top, top + crop), slice(left, left + crop)
    index, mask = views.index[view, rows, columns], views.mask[view, rows, columns]
    chosen = index[mask]
    points = views.canonical[chosen]
    _, features = model.coarse(points, shape_code, shapes)
    posed = posed_normals(model.detail(points, detail_code, features), views.inverse_transpose[chosen])
    in_view = posed @ views.rotations[view].T
    fake = torch.zeros(crop, crop, 3).index_put((mask,), in_view)
    return views.real[view, rows, columns], fake, mask


def adversarial_maps(model: GenerativeModel, codes: LatentCodes, scans: list[PreparedScan], chosen: np.ndarray, crop: int,
                     rng: np.random.Generator, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) discriminator inputs (B, 4, crop, crop) of one window a scan ``chosen`` (indices into
    ``scans``, prepared with views), high-passed at ``sigma`` pixels (:func:`~neuralbody.gdna.discriminator.high_pass`);
    ``codes`` the run's latent codes."""
    reals, fakes, masks = [], [], []
    for index in chosen:
        scan, i = scans[int(index)], int(index)
        if scan.views is None:
            raise ValueError("adversarial_maps: the scan was prepared without views")
        window = draw_window(scan.views, crop, rng)
        real, fake, mask = window_maps(model, scan.views, window, crop, codes.shape[i].detach(), codes.detail[i],
                                       scan.shapes)
        reals.append(real)
        fakes.append(fake)
        masks.append(mask)
    mask = torch.stack(masks)
    return (discriminator_input(high_pass(torch.stack(reals), mask, sigma), mask),
            discriminator_input(high_pass(torch.stack(fakes), mask, sigma), mask))
