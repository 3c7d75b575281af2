"""Pinhole cameras with OpenCV distortion: projection, undistortion, rays, ray-box clipping.

Conventions used everywhere in neuralbody:

* World units are metres. ``T`` is in metres here (ZJU-MoCap stores millimetres on disk;
  the reader divides by 1000).
* Extrinsics are world-to-camera: ``x_cam = R @ x_world + T``.
* Camera axes follow OpenCV: x right, y down, z forward (points in front have z > 0).
* Pixel coordinates: ``u`` along the image width, ``v`` along the height; the centre of the
  top-left pixel is ``(0, 0)``.
* Distortion ``D`` is OpenCV's ``(k1, k2, p1, p2, k3)``.

The projection itself (world -> distorted pixels) is :mod:`neuralbody.data.projection`, in torch;
the NumPy functions here call it in float64.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.data import projection


@dataclasses.dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes:
        K: (3, 3) intrinsics in pixels.
        R: (3, 3) world-to-camera rotation.
        T: (3,) world-to-camera translation, metres.
        D: (5,) OpenCV distortion coefficients ``k1, k2, p1, p2, k3`` (zeros: none).
        width: image width in pixels.
        height: image height in pixels.
        name: camera name (the image sub-folder in ZJU-MoCap layout).
        colour_gain: (3,) RGB gain of this camera's colour response relative to the rig's
            reference (``neuralbody calibrate-colour``; :mod:`neuralbody.fitting.colour_calibration`):
            training divides its images by it, renders for it are multiplied by it. None: ones.

    Inputs are validated and normalised on construction: ``T`` may be (3, 1), ``D`` may be
    (5, 1), (1, 5) or have 4 entries (``k3 = 0``); non-finite values, a non-rotation ``R``
    or more than 5 non-zero distortion terms raise ``ValueError``. Cameras compare by
    identity (``eq=False``: arrays have no single truth value).
    """

    K: np.ndarray
    R: np.ndarray
    T: np.ndarray
    D: np.ndarray
    width: int
    height: int
    name: str = ""
    colour_gain: np.ndarray | None = None

    def __post_init__(self) -> None:
        gain = np.ones(3) if self.colour_gain is None else np.asarray(self.colour_gain, dtype=np.float64).reshape(-1)
        if gain.shape != (3,) or not np.all(np.isfinite(gain)) or np.any(gain <= 0):
            raise ValueError(f"Camera {self.name!r}: colour_gain must be 3 positive finite numbers (R, G, B), "
                             f"got {np.asarray(self.colour_gain).tolist()}")  # fmt: skip
        object.__setattr__(self, "colour_gain", gain)
        for field, shape in (("K", (3, 3)), ("R", (3, 3)), ("T", (3,)), ("D", (5,))):
            value = np.asarray(getattr(self, field), dtype=np.float64)
            if field == "T":
                value = value.reshape(-1)
            if field == "D":
                value = value.reshape(-1)
                if value.size not in (4, 5) and not (value.size > 5 and np.all(value[5:] == 0)):
                    raise ValueError(
                        f"Camera {self.name!r}: D must hold OpenCV's 5 coefficients (k1, k2, p1, p2, k3), "
                        f"got {value.size} values"
                    )
                if value.size < 5:
                    value = np.concatenate([value, np.zeros(5 - value.size)])
                value = value[:5]
            if value.shape != shape:
                raise ValueError(f"Camera {self.name!r}: {field} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"Camera {self.name!r}: {field} contains NaN or inf")
            object.__setattr__(self, field, value)
        if int(self.width) != self.width or int(self.height) != self.height or self.width <= 0 or self.height <= 0:
            raise ValueError(
                f"Camera {self.name!r}: image size must be positive integers, got {self.width}x{self.height}"
            )
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        orthogonality = np.abs(self.R @ self.R.T - np.eye(3)).max()
        if abs(np.linalg.det(self.R) - 1.0) > 1e-3 or orthogonality > 1e-3:
            raise ValueError(
                f"Camera {self.name!r}: R is not a rotation (det={np.linalg.det(self.R):.4f}, "
                f"max |R R^T - I|={orthogonality:.2e})"
            )
        if abs(self.K[2, 2] - 1.0) > 1e-9 or np.any(self.K[2, :2] != 0) or self.K[1, 0] != 0:
            raise ValueError(
                f"Camera {self.name!r}: K must be upper triangular with K[2, 2] = 1, got {self.K.tolist()}"
            )
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise ValueError(
                f"Camera {self.name!r}: focal lengths K[0, 0], K[1, 1] must be positive, got {self.K.tolist()}"
            )

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres: ``-R^T T``."""
        return -self.R.T @ self.T

    @property
    def has_colour_gain(self) -> bool:
        """Whether ``colour_gain`` differs from ones (a colour-calibrated camera)."""
        return bool(np.any(self.colour_gain != 1.0))

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.D != 0))

    def scaled(self, factor: float) -> "Camera":
        """The same camera for an image resized by ``factor`` (e.g. 0.5 for 1024 -> 512).

        Pixel centres map as ``u' = (u + 0.5) * factor - 0.5``, so the principal point moves
        by that half-pixel offset too. The new image size is ``round(width * factor)`` x
        ``round(height * factor)``; distortion (in normalised coordinates) is unchanged.
        """
        if not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"Camera {self.name!r}: scale factor must be positive, got {factor}")
        K = self.K.copy()
        K[:2, :2] *= factor
        K[:2, 2] = (K[:2, 2] + 0.5) * factor - 0.5
        width = int(round(self.width * factor))
        height = int(round(self.height * factor))
        return dataclasses.replace(self, K=K, width=width, height=height)

    def undistorted(self) -> "Camera":
        """The same camera with distortion removed (for images passed through :func:`undistort_image`)."""
        return dataclasses.replace(self, D=np.zeros(5))


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A float64 CPU tensor of an array (shares memory where it can)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _normalized_to_pixels(K: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """:func:`neuralbody.data.projection.normalized_to_pixels` in float64 NumPy. xy: (N, 2) -> (N, 2) pixels."""
    return projection.normalized_to_pixels(_tensor(xy), _tensor(K)).numpy()


def _pixels_to_normalized(K: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_normalized_to_pixels` (K is upper triangular). uv: (N, 2) -> (N, 2)."""
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    x = (uv[:, 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x, y], axis=1)


def _distort_normalized(xy: np.ndarray, D: np.ndarray) -> np.ndarray:
    """:func:`neuralbody.data.projection.distort` (OpenCV's model) in float64 NumPy. xy: (N, 2), D: (5,)."""
    return projection.distort(_tensor(xy), _tensor(D)).numpy()


def _distortion_jacobian(xy: np.ndarray, D: np.ndarray) -> np.ndarray:
    """(N, 2, 2) Jacobian of :func:`_distort_normalized` with respect to ``(x, y)``.

    With ``rad = 1 + k1 r^2 + k2 r^4 + k3 r^6`` and ``rad' = d rad / d r^2``::

        dxd/dx = rad + 2 x^2 rad' + 2 p1 y + 6 p2 x      dxd/dy = 2 x y rad' + 2 p1 x + 2 p2 y
        dyd/dx = 2 x y rad' + 2 p1 x + 2 p2 y            dyd/dy = rad + 2 y^2 rad' + 6 p1 y + 2 p2 x
    """
    k1, k2, p1, p2, k3 = D
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    d_radial = k1 + 2 * k2 * r2 + 3 * k3 * r2**2
    cross = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    jac = np.empty((len(xy), 2, 2))
    jac[:, 0, 0] = radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x
    jac[:, 0, 1] = cross
    jac[:, 1, 0] = cross
    jac[:, 1, 1] = radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x
    return jac


def _undistort_normalized(xy_distorted: np.ndarray, D: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Invert :func:`_distort_normalized`: find ``xy`` with ``distort(xy) = xy_distorted``. (N, 2) -> (N, 2).

    Newton iterations ``xy <- xy - J(xy)^-1 (distort(xy) - xy_distorted)`` from
    ``xy = xy_distorted`` with the analytic Jacobian (:func:`_distortion_jacobian`). A point
    stops once its residual is below 1e-24 (squared, ~1e-12 in normalised units, 1e-9 px at
    f = 1000 px) or a step fails to reduce it; a failing step is halved up to 8 times first,
    so points stay put rather than diverge where the model folds over (far outside the image,
    where no inverse exists). OpenCV's ``undistortPoints`` uses fixed-point iteration, which
    converges slowly or not at all for strong distortion (k1 = 0.3: ~3e-3 px after 20 steps);
    Newton reaches float64 precision in 3-5 steps for realistic coefficients.
    """
    xy = xy_distorted.copy()
    residual = _distort_normalized(xy, D) - xy_distorted
    error = np.einsum("ni,ni->n", residual, residual)
    active = np.flatnonzero(error > 1e-24)
    for _ in range(iterations):
        if len(active) == 0:
            break
        jac = _distortion_jacobian(xy[active], D)
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        r = residual[active]
        step = np.stack(
            [
                (jac[:, 1, 1] * r[:, 0] - jac[:, 0, 1] * r[:, 1]) / det,
                (jac[:, 0, 0] * r[:, 1] - jac[:, 1, 0] * r[:, 0]) / det,
            ],
            axis=1,
        )
        candidate = xy[active] - step
        cand_residual = _distort_normalized(candidate, D) - xy_distorted[active]
        cand_error = np.einsum("ni,ni->n", cand_residual, cand_residual)
        worse = np.flatnonzero(cand_error >= error[active])
        for _ in range(8):  # backtrack the few points whose full step did not help
            if len(worse) == 0:
                break
            step[worse] *= 0.5
            candidate[worse] = xy[active[worse]] - step[worse]
            cand_residual[worse] = _distort_normalized(candidate[worse], D) - xy_distorted[active[worse]]
            cand_error[worse] = np.einsum("ni,ni->n", cand_residual[worse], cand_residual[worse])
            worse = worse[cand_error[worse] >= error[active[worse]]]
        better = cand_error < error[active]
        improved = active[better]
        xy[improved] = candidate[better]
        residual[improved] = cand_residual[better]
        error[improved] = cand_error[better]
        active = improved[error[improved] > 1e-24]
    return xy


def project_points(camera: Camera, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points to pixels, distortion included (:func:`neuralbody.data.projection.project`, float64).

    Args:
        camera: the camera.
        points_world: (N, 3) points in world coordinates, metres.

    Returns:
        uv: (N, 2) pixel coordinates (u right, v down).
        depth: (N,) z in camera coordinates, metres (<= 0 means behind the camera).
    """
    points_world = np.asarray(points_world, dtype=np.float64)
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {points_world.shape}")
    uv, depth = projection.project(
        _tensor(points_world), _tensor(camera.K), _tensor(camera.R), _tensor(camera.T), _tensor(camera.D)
    )
    return uv.numpy(), depth.numpy()


def undistort_points(camera: Camera, uv_distorted: np.ndarray) -> np.ndarray:
    """Pixel coordinates in the distorted image -> pixel coordinates of the ideal pinhole image.

    uv_distorted: (N, 2) pixels. Returns (N, 2) pixels under the same K, without distortion.
    """
    uv_distorted = np.asarray(uv_distorted, dtype=np.float64)
    if uv_distorted.ndim != 2 or uv_distorted.shape[1] != 2:
        raise ValueError(f"uv_distorted must have shape (N, 2), got {uv_distorted.shape}")
    if not camera.has_distortion:
        return uv_distorted.copy()
    xy_d = _pixels_to_normalized(camera.K, uv_distorted)
    xy = _undistort_normalized(xy_d, camera.D)
    return _normalized_to_pixels(camera.K, xy)


def _resample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, order: int) -> np.ndarray:
    """Sample ``image`` (H, W) or (H, W, C) at float pixel positions (rows, cols: (H', W')), 0 outside.

    Works in float64 and converts back: integers are rounded and clipped to their dtype's
    range, booleans thresholded at 0.5.
    """
    from scipy.ndimage import map_coordinates

    if order not in (0, 1, 3):
        raise ValueError(f"order must be 0 (nearest), 1 (bilinear) or 3 (cubic), got {order}")
    source = np.asarray(image)
    planes = source[..., None] if source.ndim == 2 else source
    coords = np.stack([rows, cols])
    channels = [
        map_coordinates(planes[..., c].astype(np.float64), coords, order=order, mode="constant", cval=0.0)
        for c in range(planes.shape[2])
    ]
    out = np.stack(channels, axis=-1)
    if source.ndim == 2:
        out = out[..., 0]
    if source.dtype == bool:
        return out > 0.5
    if np.issubdtype(source.dtype, np.integer):
        info = np.iinfo(source.dtype)
        return np.clip(np.round(out), info.min, info.max).astype(source.dtype)
    return out.astype(source.dtype)


def _check_image(camera: Camera, image: np.ndarray) -> None:
    if image.ndim not in (2, 3) or image.shape[0] != camera.height or image.shape[1] != camera.width:
        raise ValueError(
            f"image must be (H, W) or (H, W, C) with H x W = {camera.height} x {camera.width} "
            f"(camera {camera.name!r}), got shape {image.shape}"
        )


def _pixel_grid(camera: Camera) -> np.ndarray:
    """(H * W, 2) pixel centres ``(u, v)`` in row-major order."""
    v, u = np.meshgrid(np.arange(camera.height), np.arange(camera.width), indexing="ij")
    return np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64)


def undistort_image(camera: Camera, image: np.ndarray, order: int = 1) -> np.ndarray:
    """Resample a distorted image onto the ideal pinhole image of the same K and size.

    Each ideal pixel ``u`` looks up the distorted image at ``K distort(K^-1 u)``.

    Args:
        camera: the camera the image was taken with (its D is used).
        image: (H, W) or (H, W, C) array of any dtype (bool and integers are kept).
        order: 0 nearest (use it for masks), 1 bilinear, 3 cubic.

    Returns:
        An array like ``image`` seen by ``camera.undistorted()``; 0 where the source falls
        outside the image.
    """
    image = np.asarray(image)
    _check_image(camera, image)
    if not camera.has_distortion:
        return image.copy()
    xy = _pixels_to_normalized(camera.K, _pixel_grid(camera))
    uv_src = _normalized_to_pixels(camera.K, _distort_normalized(xy, camera.D))
    shape = (camera.height, camera.width)
    return _resample(image, uv_src[:, 1].reshape(shape), uv_src[:, 0].reshape(shape), order)


def distort_image(camera: Camera, image: np.ndarray, order: int = 1) -> np.ndarray:
    """The inverse of :func:`undistort_image`: what ``camera`` (with its D) sees, given the ideal image.

    Each distorted pixel looks up the ideal image at :func:`undistort_points` of itself.
    image: (H, W) or (H, W, C) as seen by ``camera.undistorted()``. Returns the same shape.
    """
    image = np.asarray(image)
    _check_image(camera, image)
    if not camera.has_distortion:
        return image.copy()
    uv_src = undistort_points(camera, _pixel_grid(camera))
    shape = (camera.height, camera.width)
    return _resample(image, uv_src[:, 1].reshape(shape), uv_src[:, 0].reshape(shape), order)


def pixel_rays(camera: Camera, uv: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World-space rays through pixel centres, distortion accounted for.

    Args:
        camera: the camera.
        uv: (N, 2) pixel coordinates in the (distorted) image; default every pixel in
            row-major order (N = H * W).

    Returns:
        rays_o: (N, 3) ray origins (the camera centre), metres.
        rays_d: (N, 3) unit ray directions in world coordinates.
    """
    if uv is None:
        uv = _pixel_grid(camera)
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"uv must have shape (N, 2), got {uv.shape}")
    xy = _pixels_to_normalized(camera.K, uv)
    if camera.has_distortion:
        xy = _undistort_normalized(xy, camera.D)
    # R^T (x, y, 1): the rows of R weighted by the camera-frame direction, element-wise for speed
    rays_d = xy[:, 0:1] * camera.R[0] + xy[:, 1:2] * camera.R[1] + camera.R[2]
    rays_d /= np.sqrt(np.einsum("ni,ni->n", rays_d, rays_d))[:, None]
    rays_o = np.broadcast_to(camera.center, rays_d.shape).copy()
    return rays_o, rays_d


def ray_box_intersection(
    rays_o: torch.Tensor, rays_d: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slab test of rays against an axis-aligned box.

    For each axis, ``t = (box - o) / d``; the ray is inside the box for
    ``t in [max_axis(min(t0, t1)), min_axis(max(t0, t1))]``, clipped to ``t >= 0``.

    Args:
        rays_o: (N, 3) origins, metres.
        rays_d: (N, 3) directions (need not be unit; t is in units of |d|).
        box_min: (3,) box corner, metres.
        box_max: (3,) box corner, metres.

    Returns:
        near: (N,) entry distance (0 when the origin is inside).
        far: (N,) exit distance.
        hit: (N,) bool, True where the ray passes through the box (far > near).
    """
    if rays_o.shape != rays_d.shape or rays_o.ndim != 2 or rays_o.shape[1] != 3:
        raise ValueError(f"rays_o and rays_d must both be (N, 3), got {tuple(rays_o.shape)} and {tuple(rays_d.shape)}")
    box_min = torch.as_tensor(box_min, dtype=rays_o.dtype, device=rays_o.device)
    box_max = torch.as_tensor(box_max, dtype=rays_o.dtype, device=rays_o.device)
    if box_min.numel() != 3 or box_max.numel() != 3:
        raise ValueError(
            f"box_min and box_max must hold 3 values, got {tuple(box_min.shape)} and {tuple(box_max.shape)}"
        )
    box_min, box_max = box_min.reshape(3), box_max.reshape(3)
    eps = torch.finfo(rays_d.dtype).tiny
    safe_d = torch.where(rays_d.abs() < 1e-12, torch.full_like(rays_d, 1e-12).copysign(rays_d + eps), rays_d)
    t0 = (box_min - rays_o) / safe_d
    t1 = (box_max - rays_o) / safe_d
    near = torch.minimum(t0, t1).amax(dim=1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(dim=1)
    hit = far > near
    return near, far, hit


def box_corners(box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    """(8, 3) corners of an axis-aligned box."""
    box_min, box_max = np.asarray(box_min, dtype=np.float64), np.asarray(box_max, dtype=np.float64)
    idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    return np.where(idx == 0, box_min, box_max)


def project_box_mask(camera: Camera, box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    """Pixels covered by the projection of a 3D box: the convex hull of its 8 projected corners.

    This is the region Neural Body's evaluation protocol scores. Returns (H, W) bool.
    """
    from scipy.spatial import ConvexHull, QhullError
    from skimage.draw import polygon

    uv, depth = project_points(camera, box_corners(box_min, box_max))
    mask = np.zeros((camera.height, camera.width), dtype=bool)
    if np.any(depth <= 0):
        raise ValueError(f"camera {camera.name!r}: the box is (partly) behind the camera; cannot project it")
    try:
        hull = ConvexHull(uv)
    except QhullError:
        return mask
    pts = uv[hull.vertices]
    rr, cc = polygon(pts[:, 1], pts[:, 0], shape=mask.shape)
    mask[rr, cc] = True
    return mask
