"""neuralbody.evaluation: image metrics (PSNR, SSIM, Neural Body's box-mask protocols, optional
LPIPS), mesh metrics (Chamfer-L2, P2S, volumetric IoU, normal consistency) and reports.

``psnr`` is :func:`neuralbody.metrics.psnr` (re-exported: training uses it too)."""

from neuralbody.evaluation.geometry_metrics import (
    GeometryMetrics,
    SurfaceSamples,
    chamfer_l2,
    mesh_metrics,
    normal_consistency,
    point_to_surface,
    sample_surface,
    volumetric_iou,
)
from neuralbody.evaluation.image_metrics import (
    PROTOCOLS,
    SSIM_GAUSSIAN,
    SSIM_NEURAL_BODY,
    ImageProtocol,
    SsimWindow,
    box_mask_metrics,
    get_protocol,
    mask_bounding_rect,
    ssim,
)
from neuralbody.evaluation.lpips_metric import LpipsMetric, load_lpips, lpips_distance
from neuralbody.metrics import psnr

__all__ = [
    "PROTOCOLS",
    "SSIM_GAUSSIAN",
    "SSIM_NEURAL_BODY",
    "GeometryMetrics",
    "ImageProtocol",
    "LpipsMetric",
    "SsimWindow",
    "SurfaceSamples",
    "box_mask_metrics",
    "chamfer_l2",
    "get_protocol",
    "load_lpips",
    "lpips_distance",
    "mask_bounding_rect",
    "mesh_metrics",
    "normal_consistency",
    "point_to_surface",
    "psnr",
    "sample_surface",
    "ssim",
    "volumetric_iou",
]
