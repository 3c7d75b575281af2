"""Choosing training rays (Neural Body's sampler) from the training images.

For each training image (frame f, camera v) with person mask M and box region B (the
projection of the posed vertices' box padded ``box_padding`` metres), pixels within
``border_px`` of the mask border (the band ``dilate(M) xor erode(M)``) are excluded, because
masks are least reliable there. A step draws rays from every training view of one frame:
half uniformly from ``M - band``, half from ``B - band``. With masks judged from the data
(``trust``, :mod:`neuralbody.training.mask_trust`) nothing is excluded: M is the mask with
its small holes filled and each ray carries a colour weight, 0 within the trust band of its outline.

Images are held as uint8 on the CPU (about 0.26 MB per 256x256 image), all preloaded or
streamed through a bounded cache (:mod:`neuralbody.training.image_source`); per-camera ray
directions are computed once (cameras do not move).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from neuralbody.data.cameras import pixel_rays
from neuralbody.geometry.box import BODY_BOX_PADDING
from neuralbody.training.image_source import (  # noqa: F401  (re-exported: border_band, ...)
    DEFAULT_CACHE_BYTES,
    DEFAULT_PRELOAD_BUDGET,
    DecodeSettings,
    TrainingImage,
    border_band,
    choose_source,
    default_border_px,
)
from neuralbody.training.mask_trust import MaskQuality

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RayBatch:
    """Training rays of one frame.

    Attributes:
        frame: capture frame index.
        rays_o: (N, 3) origins, world, metres.
        rays_d: (N, 3) unit directions, world.
        rgb: (N, 3) target colours in [0, 1].
        mask: (N,) target opacity (1 on the person, 0 elsewhere).
        colour_weight: (N,) 1 where the colour is supervised, 0 where it is not trusted.
    """

    frame: int
    rays_o: torch.Tensor
    rays_d: torch.Tensor
    rgb: torch.Tensor
    mask: torch.Tensor
    colour_weight: torch.Tensor


class RaySampler:
    """Training images of a capture (preloaded or streamed) and the ray draws of each step.

    ``image_source``: "auto" (preload when the decoded images fit ``preload_budget_bytes``,
    else stream through an LRU cache of ``cache_bytes``), "preload" or "stream"; see
    :mod:`neuralbody.training.image_source`. The draws do not depend on the source.
    Body fits of all training frames are loaded up front (small: (V, 3) each).
    """

    def __init__(
        self,
        capture,
        *,
        frames: list[int],
        views: list[int],
        border_px: int | None = None,
        trust: MaskQuality | None = None,
        box_padding: float = BODY_BOX_PADDING,
        progress: bool = True,
        image_source: str = "auto",
        preload_budget_bytes: int = DEFAULT_PRELOAD_BUDGET,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if not frames or not views:
            raise ValueError("RaySampler needs at least one training frame and one training view")
        self.frames = list(frames)
        self.views = list(views)
        self.rays = {}
        for view in views:
            camera = capture.cameras[view]
            rays_o, rays_d = pixel_rays(camera)
            self.rays[view] = (torch.from_numpy(rays_o).float(), torch.from_numpy(rays_d).float())
        self.bodies = {frame: capture.load_body(frame) for frame in self.frames}
        self.source = choose_source(
            capture, frames=self.frames, views=self.views, bodies=self.bodies,
            settings=DecodeSettings(border_px=border_px, box_padding=box_padding, trust=trust), mode=image_source,
            preload_budget_bytes=preload_budget_bytes, cache_bytes=cache_bytes, progress=progress,
        )

    @property
    def streaming(self) -> bool:
        return self.source.streaming

    def prefetch(self, frame: int) -> None:
        """Start decoding ``frame``'s images in the background (streaming only)."""
        self.source.prefetch(frame)

    def close(self) -> None:
        self.source.close()

    def sample(self, frame: int, num_rays: int, generator: np.random.Generator) -> RayBatch:
        """``num_rays`` rays spread over the training views of ``frame``: half on the person.

        Returns a :class:`RayBatch` (rays_o, rays_d: (N, 3) world, metres; rgb (N, 3); mask (N,);
        colour_weight (N,)).
        """
        images = [self.source.get(frame, view) for view in self.views]
        per_view = np.full(len(images), num_rays // len(images))
        per_view[: num_rays - per_view.sum()] += 1
        ids_o, ids_d, rgbs, masks, weights = [], [], [], [], []
        for image, count in zip(images, per_view):
            n_inside = count // 2
            pick_inside = image.inside_ids[torch.from_numpy(generator.integers(0, len(image.inside_ids), n_inside))]
            pick_box = image.box_ids[torch.from_numpy(generator.integers(0, len(image.box_ids), count - n_inside))]
            pixels = torch.cat([pick_inside, pick_box]).long()
            rays_o, rays_d = self.rays[image.view]
            ids_o.append(rays_o[pixels])
            ids_d.append(rays_d[pixels])
            rgbs.append(image.rgb[pixels].float() / 255.0)
            masks.append(image.mask[pixels].float())
            trusted = image.colour_trust
            weights.append(torch.ones(len(pixels)) if trusted is None else trusted[pixels].float())
        return RayBatch(frame, torch.cat(ids_o), torch.cat(ids_d), torch.cat(rgbs), torch.cat(masks),
                        torch.cat(weights))
