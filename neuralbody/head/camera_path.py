"""Cameras of the head videos: one moving training camera, fixed evaluation cameras.

A camera at azimuth a and elevation e (radians) sits at ``target + d (sin a cos e, -cos a cos e, sin e)``
(the face looks along -y, so a = 0 is frontal) and looks at the target with z up (OpenCV
axes, world-to-camera ``x_cam = R x + T``, metres). The focal length makes a ``field``-metre
wide square at the target fill the image. The training camera's azimuth swings by
``+-sweep`` and its elevation by a third of that, on incommensurate periods, so the head is
seen from many sides through the video; the evaluation cameras stand at fixed angles never
reached on the path's extremes exactly.
"""

from __future__ import annotations

import math

import numpy as np

from neuralbody.data.cameras import Camera
from neuralbody.geometry.rotations import look_at_rotation

HEAD_TARGET = (0.0, -0.04, 0.69)  # metres: about the centre of Anny's head in its rest frame
EVAL_ANGLES = ((0.55, 0.15), (-0.35, -0.1))  # (azimuth, elevation), radians


def orbit_camera(azimuth: float, elevation: float, resolution: int, *, distance: float = 0.7,
                 field: float = 0.34, name: str = "") -> Camera:
    """One camera on the sphere around :data:`HEAD_TARGET` (see the module docstring)."""
    if resolution < 8 or distance <= 0 or field <= 0:
        raise ValueError(f"orbit_camera: resolution >= 8, distance and field > 0 needed, got {resolution}, "
                         f"{distance}, {field}")
    target = np.asarray(HEAD_TARGET)
    offset = np.array([math.sin(azimuth) * math.cos(elevation), -math.cos(azimuth) * math.cos(elevation),
                       math.sin(elevation)])
    center = target + distance * offset
    rotation = look_at_rotation(center, target)
    focal = resolution * distance / field
    K = np.array([[focal, 0.0, resolution / 2.0], [0.0, focal, resolution / 2.0], [0.0, 0.0, 1.0]])
    return Camera(K=K, R=rotation, T=-rotation @ center, D=np.zeros(5), width=resolution, height=resolution, name=name)


def moving_camera(frame: int, resolution: int, *, sweep: float = 0.7, period: float = 40.0) -> Camera:
    """The training camera at a frame (any integer: held-out frames continue the path)."""
    azimuth = sweep * math.sin(2.0 * math.pi * frame / period)
    elevation = sweep / 3.0 * math.sin(2.0 * math.pi * frame / (period * 0.618) + 0.5)
    return orbit_camera(azimuth, elevation, resolution, name="cam00")


def evaluation_cameras(resolution: int) -> list[Camera]:
    """The fixed evaluation cameras ``cam01``, ``cam02``, ... (never used for training)."""
    return [orbit_camera(a, e, resolution, name=f"cam{i + 1:02d}") for i, (a, e) in enumerate(EVAL_ANGLES)]
