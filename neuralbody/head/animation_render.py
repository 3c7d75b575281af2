"""The renderer ``animate-head`` draws frames with: IMAvatar's surface render or the volume render.

``renderer``:

* ``"surface"`` (IMAvatar only): the canonical surface is extracted once
  (:mod:`neuralbody.head.canonical_surface`; its density level given, or chosen by silhouette
  agreement with the volume render, :mod:`neuralbody.head.surface_level`), then every frame is
  :func:`neuralbody.head.surface_render.render_surface` (forward-mapped mesh, ray cast, band
  shading): no search from scratch per sample;
* ``"volume"``: :func:`neuralbody.head.fast_render.render_image_fast` (root finding per sample for
  IMAvatar; nerf-expr has no canonical space and is always volume rendered);
* ``"auto"``: ``"surface"`` for IMAvatar (``"volume"``, with a warning, when its density never
  reaches a surface level: an avatar barely trained), ``"volume"`` for nerf-expr.

The one-off cost of the surface (level choice and extraction) is ``setup_seconds``.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from neuralbody.data.cameras import Camera
from neuralbody.head.avatar import ImAvatar, NerfExpr
from neuralbody.head.canonical_surface import CanonicalSurface, extract_canonical_surface
from neuralbody.head.evaluation import RenderedImage
from neuralbody.head.fast_render import render_image_fast
from neuralbody.head.frame import HeadFrame
from neuralbody.head.rig import HeadRig
from neuralbody.head.surface_level import choose_level
from neuralbody.head.surface_render import SurfaceSettings, render_surface

RENDERERS = ("auto", "surface", "volume")

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AnimationRenderer:
    """Renders frames of one avatar for one camera.

    Attributes:
        avatar: the trained avatar.
        camera: the camera (world-to-camera, OpenCV axes).
        surface: IMAvatar's canonical surface (None: volume rendering).
        settings: the surface render's settings.
        workers: threads (0: ``$NEURALBODY_THREADS``, else one per core).
        setup_seconds: time spent preparing (choosing the level, extracting the surface).
    """

    avatar: ImAvatar | NerfExpr
    camera: Camera
    surface: CanonicalSurface | None
    settings: SurfaceSettings
    workers: int
    setup_seconds: float

    @property
    def name(self) -> str:
        return "volume" if self.surface is None else f"surface (level {self.surface.level:g}/m)"

    def render(self, frame: HeadFrame) -> RenderedImage:
        """The camera's image of a frame."""
        if self.surface is None:
            return render_image_fast(self.avatar, frame, self.camera, workers=self.workers)
        return render_surface(self.avatar, self.surface, frame, self.camera, settings=self.settings,
                              workers=self.workers)


def animation_renderer(avatar: ImAvatar | NerfExpr, rig: HeadRig, camera: Camera, *, renderer: str = "auto",
                       level: float = 0.0, settings: SurfaceSettings = SurfaceSettings(),
                       workers: int = 0) -> AnimationRenderer:
    """The module docstring's renderer; ``level`` > 0 fixes the surface's density (1/metres), 0 chooses it."""
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    if level < 0:
        raise ValueError(f"the surface level must be >= 0 (0: choose it), got {level}")
    surfaced = isinstance(avatar, ImAvatar)
    if renderer == "surface" and not surfaced:
        raise ValueError("--renderer surface needs an IMAvatar run: nerf-expr has no canonical space; "
                         "use --renderer volume (or auto)")
    start = time.perf_counter()
    surface = None
    if surfaced and renderer != "volume":
        try:
            surface = (extract_canonical_surface(avatar, level) if level > 0
                       else choose_level(avatar, rig, workers=workers).surface)
        except ValueError as error:  # the density never reaches a level: an untrained avatar
            if renderer == "surface":
                raise
            log.warning("animate-head: no canonical surface (%s); volume rendering instead", error)
    return AnimationRenderer(avatar=avatar, camera=camera, surface=surface, settings=settings, workers=workers,
                             setup_seconds=time.perf_counter() - start)
