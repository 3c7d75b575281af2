"""A ring of cameras around the person, and the train / held-out camera split.

World frame: z up, metres. Camera ``i`` of ``V`` sits at azimuth ``phi_i = 2 pi i / V`` on a
circle of radius ``r`` around the target's vertical axis, at height ``h``, and looks at the
target: its OpenCV world-to-camera rotation is
:func:`neuralbody.geometry.rotations.look_at_rotation` with up = +z (rows right, down,
forward) and ``T = -R c``. The focal length is the largest one for which the
points that must be seen (every vertex of every frame) project inside the image with a
relative ``margin`` on each side, shared by all cameras. With distortion on, each camera
gets small seeded OpenCV coefficients ``(k1, k2, p1, p2, k3)``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from neuralbody.data.cameras import Camera
from neuralbody.geometry.rotations import look_at_rotation


@dataclasses.dataclass(frozen=True)
class RigConfig:
    """Ring geometry. Lengths in metres.

    Attributes:
        num_views: number of cameras V.
        resolution: square image side in pixels.
        radius: ring radius around the target's vertical axis.
        height: camera height above the floor (z).
        margin: fraction of the half-image left free around the projected points.
        distortion: give each camera small lens distortion.
        seed: seeds the distortion coefficients.
    """

    num_views: int = 8
    resolution: int = 256
    radius: float = 3.0
    height: float = 1.2
    margin: float = 0.12
    distortion: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_views < 1:
            raise ValueError(f"RigConfig: num_views must be >= 1, got {self.num_views}")
        if self.resolution < 8:
            raise ValueError(f"RigConfig: resolution must be >= 8 pixels, got {self.resolution}")
        if not 0.0 <= self.margin < 0.9:
            raise ValueError(f"RigConfig: margin must be in [0, 0.9), got {self.margin}")


def camera_name(index: int) -> str:
    return f"Camera_{index:02d}"


def random_distortion(rng: np.random.Generator) -> np.ndarray:
    """(5,) small, realistic OpenCV coefficients: mild barrel or pincushion, tiny decentering."""
    k1 = rng.uniform(-0.12, 0.06)
    k2 = rng.uniform(-0.04, 0.04)
    p1, p2 = rng.uniform(-1.5e-3, 1.5e-3, size=2)
    k3 = rng.uniform(-0.01, 0.01)
    return np.array([k1, k2, p1, p2, k3])


def ring_cameras(config: RigConfig, points_world: np.ndarray) -> list[Camera]:
    """Cameras on a ring, all looking at the centre of ``points_world`` and seeing all of it.

    Args:
        config: ring geometry.
        points_world: (N, 3) points that must be inside every image (e.g. all vertices of all
            frames), world, metres, z up.

    Returns:
        V cameras named ``Camera_00`` ... with a shared focal length.
    """
    points_world = np.asarray(points_world, dtype=np.float64)
    if points_world.ndim != 2 or points_world.shape[1] != 3 or len(points_world) == 0:
        raise ValueError(f"ring_cameras: points_world must be (N, 3) with N > 0, got {points_world.shape}")
    lo, hi = points_world.min(axis=0), points_world.max(axis=0)
    target = (lo + hi) / 2.0
    res = config.resolution
    principal = (res - 1) / 2.0
    poses = []
    max_tan = 1e-6
    for i in range(config.num_views):
        phi = 2.0 * math.pi * i / config.num_views
        center = np.array(
            [target[0] + config.radius * math.cos(phi), target[1] + config.radius * math.sin(phi), config.height]
        )
        R = look_at_rotation(center, target)
        T = -R @ center
        cam_points = points_world @ R.T + T
        if np.any(cam_points[:, 2] <= 0.1):
            raise ValueError(
                f"ring_cameras: points come within 0.1 m of camera {i}'s image plane; "
                f"raise RigConfig.radius (now {config.radius} m)"
            )
        max_tan = max(max_tan, float(np.abs(cam_points[:, :2] / cam_points[:, 2:]).max()))
        poses.append((R, T))
    focal = (1.0 - config.margin) * (res / 2.0) / max_tan
    K = np.array([[focal, 0.0, principal], [0.0, focal, principal], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng([config.seed, 7919])
    cameras = []
    for i, (R, T) in enumerate(poses):
        D = random_distortion(rng) if config.distortion else np.zeros(5)
        cameras.append(Camera(K=K.copy(), R=R, T=T, D=D, width=res, height=res, name=camera_name(i)))
    return cameras


def split_cameras(num_views: int, num_train: int = 4) -> tuple[list[int], list[int]]:
    """Training cameras spread evenly (``round(k V / n)``, as ZJU's 0, 6, 12, 18 of 23) and the rest held out."""
    if num_views < 1:
        raise ValueError(f"split_cameras: num_views must be >= 1, got {num_views}")
    num_train = min(num_train, num_views)
    train = sorted({int(round(k * num_views / num_train)) % num_views for k in range(num_train)})
    test = [i for i in range(num_views) if i not in train]
    return train, test
