"""Training-camera coverage of held-out pixels: which body points no training camera saw.

A held-out camera can see parts of the body that no training camera saw in that frame (the
far side of a nearly static person, seen from 67 degrees away from the nearest training camera); the
model cannot know their colour. This module labels each evaluated held-out pixel and splits
the image error accordingly.

Per held-out pixel (a ray through the pixel centre, lens distortion included):

1. Cast the ray against the frame's fitted body mesh (Warp, :func:`neuralbody.geometry.raycast.cast_rays`).
   No hit: the pixel is **off-body** (background in the box, or body parts the fitted mesh
   misses: hair, loose clothes, fit error).
2. For the hit point ``p`` (normal ``n`` of the hit face) and each training camera with centre
   ``c``, ``p`` is **seen** by that camera when all of:

   * *in front and inside the image*: ``p`` projects (distortion included) with depth > 0 to
     ``-0.5 <= u <= W - 0.5``, ``-0.5 <= v <= H - 0.5`` (pixel centres at integers);
   * *facing*: the training camera is on the same side of the surface as the held-out camera,
     ``sign(n . (c_h - p)) * n . (c - p) / |c - p| > min_cos`` (``c_h``: held-out centre; the
     sign makes this independent of the face winding);
   * *not occluded*: the ray from ``c`` towards ``p`` hits the mesh no earlier than
     ``|p - c| - tolerance`` (default 1.5 cm), i.e. its first hit is ``p`` itself.

3. The pixel is **covered** when at least one training camera sees ``p``, else **uncovered**.

Coverage is per frame: the training cameras' views of *that* frame's mesh. For the
``novel_view`` split these are training frames; for ``novel_pose`` frames it says what the
training cameras would have seen of that pose.

:func:`coverage_errors` sums the squared error per label; :func:`summarize_coverage` turns the
sums of several images into shares of the box pixels and PSNR per label (the mean of per-image
PSNR, as the box PSNR is reported, and the pooled PSNR of all pixels of all images).
Off-body pixels are their own row (they are mostly black background, where the model can
be right without any body colour); ``on_body`` (covered + uncovered) and
``covered_or_off_body`` (everything a training camera could inform) are given too.

Frames: world coordinates in metres, OpenCV cameras (``x_cam = R x_world + T``), images
(H, W, 3) in [0, 1]. Everything runs on the CPU (or the rays' device) without I/O.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import torch

from neuralbody.data.cameras import Camera, pixel_rays, project_points
from neuralbody.geometry.raycast import cast_rays
from neuralbody.metrics import psnr_from_mse

log = logging.getLogger(__name__)

OUTSIDE, OFF_BODY, COVERED, UNCOVERED = -1, 0, 1, 2
LABELS = {OFF_BODY: "off_body", COVERED: "covered", UNCOVERED: "uncovered"}
DEFAULT_TOLERANCE = 0.015  # metres: how much earlier than p a training ray may hit and still "see" p
DEFAULT_MIN_COS = 0.0  # facing: cosine between the surface normal and the direction to the camera


@dataclasses.dataclass
class RayCoverage:
    """Coverage of N held-out rays by C training cameras (CPU tensors).

    Attributes:
        hit: (N,) bool, the held-out ray meets the body mesh.
        points: (N, 3) first hit points, world, metres (zeros where no hit).
        seen_by: (N, C) bool, training camera j sees the hit point (False where no hit).
        covered: (N,) bool, ``hit`` and seen by at least one training camera.
    """

    hit: torch.Tensor
    points: torch.Tensor
    seen_by: torch.Tensor
    covered: torch.Tensor

    @property
    def labels(self) -> torch.Tensor:
        """(N,) int8: ``OFF_BODY`` (0), ``COVERED`` (1) or ``UNCOVERED`` (2)."""
        labels = torch.full(self.hit.shape, OFF_BODY, dtype=torch.int8)
        labels[self.hit & self.covered] = COVERED
        labels[self.hit & ~self.covered] = UNCOVERED
        return labels


def _as_tensor(value, dtype) -> torch.Tensor:
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    return tensor.detach().cpu().to(dtype)


def ray_coverage(
    vertices,
    faces,
    rays_o,
    rays_d,
    train_cameras: list[Camera],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_cos: float = DEFAULT_MIN_COS,
) -> RayCoverage:
    """Which held-out rays see a body point that at least one training camera saw.

    Args:
        vertices: (V, 3) the frame's posed body mesh vertices, world, metres.
        faces: (F, 3) int triangle indices.
        rays_o: (N, 3) held-out ray origins (the held-out camera centre), world, metres.
        rays_d: (N, 3) held-out ray directions, world (normalised here).
        train_cameras: the C >= 1 training cameras (their image size bounds "inside the image").
        tolerance: metres; a training ray whose first hit is at least ``|p - c| - tolerance``
            away counts as reaching ``p`` (must be > 0).
        min_cos: a training camera must face the surface with cosine above this (in [-1, 1)).

    Returns:
        :class:`RayCoverage` (CPU tensors).

    Raises:
        ValueError: wrong shapes, no training camera, or a bad tolerance / min_cos.
    """
    vertices = _as_tensor(vertices, torch.float64)
    faces = _as_tensor(faces, torch.int64)
    rays_o = _as_tensor(rays_o, torch.float64)
    rays_d = _as_tensor(rays_d, torch.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise ValueError(f"ray_coverage: vertices must be (V, 3) with V > 0, got {tuple(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise ValueError(f"ray_coverage: faces must be a non-empty (F, 3) triangle array, got {tuple(faces.shape)}")
    if rays_o.ndim != 2 or rays_o.shape[1] != 3 or rays_o.shape != rays_d.shape:
        raise ValueError(
            f"ray_coverage: rays_o and rays_d must both be (N, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}"
        )
    if not train_cameras:
        raise ValueError("ray_coverage: at least one training camera is needed")
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"ray_coverage: tolerance must be a positive number of metres, got {tolerance}")
    if not -1.0 <= min_cos < 1.0:
        raise ValueError(f"ray_coverage: min_cos must lie in [-1, 1), got {min_cos}")
    num_rays, num_cams = rays_o.shape[0], len(train_cameras)
    rays_d = rays_d / rays_d.norm(dim=1, keepdim=True).clamp_min(1e-20)
    first = cast_rays(vertices, faces, rays_o, rays_d)
    hit = first.hit.cpu()
    points = torch.where(hit[:, None], rays_o + first.t.double().nan_to_num(posinf=0.0)[:, None] * rays_d, 0.0)
    seen_by = torch.zeros(num_rays, num_cams, dtype=torch.bool)
    index = torch.nonzero(hit).squeeze(1)
    if index.numel():
        p = points[index]
        normals = first.normals.double()[index]
        # orient the normal towards the held-out camera: the side of the surface it sees
        towards = (normals * (rays_o[index] - p)).sum(1) >= 0
        normals = torch.where(towards[:, None], normals, -normals)
        for j, camera in enumerate(train_cameras):
            centre = torch.as_tensor(camera.center, dtype=torch.float64)
            to_cam = centre - p
            distance = to_cam.norm(dim=1)
            facing = (normals * to_cam).sum(1) / distance.clamp_min(1e-12) > min_cos
            uv, depth = project_points(camera, p.numpy())
            inside = (
                (depth > 0)
                & (uv[:, 0] >= -0.5) & (uv[:, 0] <= camera.width - 0.5)
                & (uv[:, 1] >= -0.5) & (uv[:, 1] <= camera.height - 0.5)
            )  # fmt: skip
            origins = centre.expand_as(p).contiguous()
            back = cast_rays(vertices, faces, origins, -to_cam / distance[:, None].clamp_min(1e-12))
            unoccluded = ~back.hit.cpu() | (back.t.cpu().double() >= distance - tolerance)
            seen_by[index, j] = facing & torch.as_tensor(inside) & unoccluded
    covered = hit & seen_by.any(dim=1)
    log.debug("ray_coverage: %d rays, %d hit the body, %d covered", num_rays, int(hit.sum()), int(covered.sum()))
    return RayCoverage(hit=hit, points=points, seen_by=seen_by, covered=covered)


def pixel_coverage(
    vertices,
    faces,
    camera: Camera,
    train_cameras: list[Camera],
    pixel_mask=None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_cos: float = DEFAULT_MIN_COS,
) -> np.ndarray:
    """(H, W) int8 coverage labels of a held-out camera's pixels.

    Args:
        vertices, faces: the frame's body mesh (see :func:`ray_coverage`).
        camera: the held-out camera (H = ``camera.height``, W = ``camera.width``).
        train_cameras: the training cameras.
        pixel_mask: (H, W) bool, the pixels to label (e.g. the box mask); None: all.

    Returns:
        (H, W) int8: ``OUTSIDE`` (-1) outside ``pixel_mask``, else ``OFF_BODY`` (0),
        ``COVERED`` (1) or ``UNCOVERED`` (2).
    """
    shape = (camera.height, camera.width)
    if pixel_mask is None:
        pixel_mask = np.ones(shape, dtype=bool)
    pixel_mask = np.asarray(pixel_mask.cpu() if isinstance(pixel_mask, torch.Tensor) else pixel_mask, dtype=bool)
    if pixel_mask.shape != shape:
        raise ValueError(f"pixel_coverage: pixel_mask must be (H, W) = {shape} for camera {camera.name!r}, got {pixel_mask.shape}")
    rows, cols = np.nonzero(pixel_mask)
    labels = np.full(shape, OUTSIDE, dtype=np.int8)
    if rows.size == 0:
        return labels
    rays_o, rays_d = pixel_rays(camera, np.stack([cols, rows], axis=1).astype(np.float64))
    result = ray_coverage(vertices, faces, rays_o, rays_d, train_cameras, tolerance=tolerance, min_cos=min_cos)
    labels[rows, cols] = result.labels.numpy()
    return labels


def coverage_errors(pred, gt, labels) -> dict[str, tuple[float, int]]:
    """Sum of squared error (over the 3 channels) and pixel count per label of one image.

    Args:
        pred: (H, W, 3) rendered image in [0, 1].
        gt: (H, W, 3) ground truth in [0, 1].
        labels: (H, W) int labels from :func:`pixel_coverage` (``OUTSIDE`` pixels are skipped).

    Returns:
        ``{"off_body" | "covered" | "uncovered" | "box": (sum of squared error, pixels)}``;
        ``box`` is all labelled pixels.
    """
    pred = np.asarray(pred.cpu() if isinstance(pred, torch.Tensor) else pred, dtype=np.float64)
    gt = np.asarray(gt.cpu() if isinstance(gt, torch.Tensor) else gt, dtype=np.float64)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if pred.ndim != 3 or pred.shape[2] != 3 or pred.shape != gt.shape:
        raise ValueError(f"coverage_errors: pred and gt must both be (H, W, 3), got {pred.shape} and {gt.shape}")
    if labels.shape != pred.shape[:2]:
        raise ValueError(f"coverage_errors: labels must be (H, W) = {pred.shape[:2]}, got {labels.shape}")
    squared = np.square(pred - gt).sum(axis=2)
    sums = {name: (float(squared[labels == code].sum()), int((labels == code).sum())) for code, name in LABELS.items()}
    inside = labels != OUTSIDE
    sums["box"] = (float(squared[inside].sum()), int(inside.sum()))
    return sums


def psnr_from_sse(sse: float, pixels: int) -> float | None:
    """PSNR in dB (:func:`neuralbody.metrics.psnr_from_mse`) of ``pixels`` RGB pixels whose squared error over
    the 3 channels sums to ``sse``; None if no pixel."""
    return None if pixels == 0 else psnr_from_mse(sse / (3 * pixels))


def summarize_coverage(per_image: list[dict[str, tuple[float, int]]]) -> dict[str, dict[str, float | None]]:
    """Shares and PSNR per label over several images (each a :func:`coverage_errors` dict).

    Returns:
        ``{label: {"share", "psnr_mean", "psnr_pooled", "pixels", "images"}}`` for ``covered``,
        ``uncovered``, ``off_body``, ``on_body`` (covered + uncovered), ``covered_or_off_body`` and
        ``box``: ``share`` is the label's pixels over all box pixels; ``psnr_mean`` the mean of the
        per-image PSNR over the images where the label has pixels (how the box PSNR is reported);
        ``psnr_pooled`` the PSNR of the pooled squared error; ``images`` how many images had pixels.
    """
    if not per_image:
        raise ValueError("summarize_coverage: no images")
    groups = {
        "covered": ("covered",),
        "uncovered": ("uncovered",),
        "off_body": ("off_body",),
        "on_body": ("covered", "uncovered"),
        "covered_or_off_body": ("covered", "off_body"),
        "box": ("box",),
    }
    total = sum(image["box"][1] for image in per_image)
    summary = {}
    for name, parts in groups.items():
        sse = [sum(image[p][0] for p in parts) for image in per_image]
        pixels = [sum(image[p][1] for p in parts) for image in per_image]
        psnrs = [psnr_from_sse(s, n) for s, n in zip(sse, pixels) if n > 0]
        summary[name] = {
            "share": (sum(pixels) / total) if total else None,
            "psnr_mean": float(np.mean(psnrs)) if psnrs else None,
            "psnr_pooled": psnr_from_sse(sum(sse), sum(pixels)),
            "pixels": int(sum(pixels)),
            "images": len(psnrs),
        }
    return summary


def format_coverage_table(summary: dict[str, dict[str, float | None]], *, title: str = "") -> str:
    """Plain-text table of :func:`summarize_coverage`."""

    def cell(value, fmt):
        if value is None:
            return "-"
        return "inf" if isinstance(value, float) and math.isinf(value) else format(value, fmt)

    header = f"{'pixels in box':<20} {'share':>7} {'PSNR mean':>10} {'PSNR pooled':>12} {'images':>7}"
    lines = ([title] if title else []) + [header, "-" * len(header)]
    for name, row in summary.items():
        share = None if row["share"] is None else 100.0 * row["share"]
        lines.append(
            f"{name:<20} {cell(share, '.1f') + '%':>7} {cell(row['psnr_mean'], '.2f'):>10} "
            f"{cell(row['psnr_pooled'], '.2f'):>12} {row['images']:>7}"
        )
    lines.append(
        "covered: the body point the pixel sees was seen by >= 1 training camera in that frame; off_body: no body-mesh "
        "hit. PSNR mean: per image, averaged (as box PSNR); pooled: all pixels together."
    )
    return "\n".join(lines)


def tint_uncovered(image, labels, *, alpha: float = 0.55) -> np.ndarray:
    """(H, W, 3) ``image`` with uncovered pixels tinted magenta and off-body box pixels tinted blue."""
    image = np.asarray(image.cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32).copy()
    labels = np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3 or labels.shape != image.shape[:2]:
        raise ValueError(f"tint_uncovered: image must be (H, W, 3) and labels (H, W), got {image.shape} and {labels.shape}")
    for code, colour, weight in ((UNCOVERED, (1.0, 0.0, 1.0), alpha), (OFF_BODY, (0.2, 0.4, 1.0), 0.25)):
        select = labels == code
        image[select] = (1 - weight) * image[select] + weight * np.asarray(colour, dtype=np.float32)
    return image
