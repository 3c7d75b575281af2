"""neuralbody.rendering: sampling along rays, volume rendering, rendering rays and images."""

from neuralbody.rendering.render import (
    ImageRender,
    RenderOutput,
    RenderSettings,
    camera_rays,
    frame_occupancy,
    render_rays,
    render_view,
)
from neuralbody.rendering.sampling import RaySamples, band_samples, stratified_samples
from neuralbody.rendering.volrend import composite, render_weights, render_weights_reference

__all__ = [
    "ImageRender",
    "RenderOutput",
    "RenderSettings",
    "RaySamples",
    "camera_rays",
    "frame_occupancy",
    "composite",
    "render_rays",
    "render_view",
    "render_weights",
    "render_weights_reference",
    "band_samples",
    "stratified_samples",
]
