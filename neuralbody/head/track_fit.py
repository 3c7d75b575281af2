"""Fitting Anny's head to 2D face landmarks over a video: head pose, jaw, 52 facial actions, focal length.

Per frame t the head (identity fixed: Anny's rest mesh) takes facial actions psi_t (52) in
[0, 1] and a jaw opening a_t in [0, ``max_jaw``] radians (a rotation of the rig's jaw bone
about its x axis, as the synthetic videos open it; neck and head bones stay at rest) and is
seen by a pinhole camera ``x_cam = R(r_t) X + T_t`` (world-to-camera, OpenCV axes, metres,
``r_t`` axis-angle) with one focal length f for the whole video and the principal point at
the image centre ``(W/2, H/2)``. The rigid head motion is carried by the camera: the world
is Anny's rest frame, as in the synthetic captures, where the camera moves around the head.
Landmark l of frame t is predicted at

    p_tl = pi_f(R_t P_l(psi_t, a_t) + T_t),   P_l = sum_k b_lk LBS(x_0 + sum_j psi_tj D_j)[v_lk]

(:mod:`neuralbody.head.landmark_map`: a surface point of the mesh). The fit minimises, with
``s = S / 100`` (S the median RMS spread of a frame's landmarks in pixels, so residuals are in
"pixels of a 100-pixel face")

    E = (1/sum_t m_t) sum_t m_t sum_l w_l |p_tl - q_tl|^2 / (s^2 sum_l w_l)
        + (1/N) sum_t (l1 sum_j psi_tj + l2 sum_j psi_tj^2 + jaw a_t^2)
        + smooth (1/(N-2)) sum_t sum_k |Delta^2 x_k,t / sigma_k|^2

(m_t: 1 where the face was found; w_l: the landmark's weight; the smoothness is over the
second differences of every per-frame quantity x_k (rotation, the camera's image position
and log scale, psi, a) over its scale sigma_k (:data:`SMOOTH_SCALES`), so steady motion costs
nothing and frames without a face are bridged) by Adam with the bounds projected after
every step and the learning rate decayed tenfold (cosine), in two stages: the camera alone
(psi = 0, a = 0), then everything. With no focal length given, log f starts from
``initial_fov`` and is optimised in both stages; f is shared by all frames. The camera's
parametrisation is :class:`_Problem`'s.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from neuralbody.data.projection import project
from neuralbody.geometry.rotations import axis_angle_to_matrix, look_at_rotation, matrix_to_axis_angle
from neuralbody.head.landmark_map import LandmarkMap, landmark_vertices
from neuralbody.head.rig import BONES, NUM_ACTIONS, HeadRig, bone_transforms, expressed_vertices
from neuralbody.io.progress import progress_bar

JAW = BONES.index("jaw")  # the last bone, so a pose is (N, JAW, 3) zeros and the jaw row


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """Weights and schedule of the fit (the module docstring's E).

    Attributes:
        rigid_steps, steps: Adam steps of the rigid and the joint stage.
        lr: Adam's learning rate (radians, metres, log-focal and psi alike).
        l1, l2: expression sparsity and size; jaw: jaw-opening size (per radian^2).
        smooth: temporal smoothness (0: independent images).
        max_jaw: largest jaw opening, radians.
        initial_fov: the horizontal field of view (degrees) the focal length starts from when unknown.
    """

    rigid_steps: int = 200
    steps: int = 400
    lr: float = 0.05
    l1: float = 0.02
    l2: float = 0.05
    jaw: float = 1.0
    smooth: float = 1.0
    max_jaw: float = 0.5
    initial_fov: float = 40.0

    def __post_init__(self) -> None:
        if self.rigid_steps < 1 or self.steps < 0 or self.lr <= 0 or self.max_jaw <= 0:
            raise ValueError(f"FitSettings: rigid_steps >= 1, steps >= 0, lr > 0 and max_jaw > 0 needed, got {self}")
        if min(self.l1, self.l2, self.jaw, self.smooth) < 0:
            raise ValueError(f"FitSettings: the regularisation weights must be >= 0, got {self}")
        if not 1.0 < self.initial_fov < 170.0:
            raise ValueError(f"FitSettings: initial_fov must be a field of view in (1, 170) degrees, got {self.initial_fov}")


@dataclasses.dataclass
class TrackedHead:
    """The fit of a video.

    Attributes:
        rotation: (N, 3) axis-angle of R_t (world-to-camera), radians.
        translation: (N, 3) T_t, metres.
        jaw: (N,) jaw opening, radians.
        expression: (N, 52) facial actions in [0, 1].
        focal: the focal length, pixels.
        residual_px: (N,) weighted RMS landmark error of each frame, pixels (NaN where no face).
    """

    rotation: torch.Tensor
    translation: torch.Tensor
    jaw: torch.Tensor
    expression: torch.Tensor
    focal: float
    residual_px: torch.Tensor

    def pose(self) -> torch.Tensor:
        """(N, 4, 3) the rig's axis-angle pose: the jaw opening about x, the other bones at rest."""
        pose = torch.zeros(self.jaw.shape[0], len(BONES), 3, dtype=self.jaw.dtype)
        pose[:, JAW, 0] = self.jaw
        return pose


class LandmarkHead:
    """The rig restricted to the vertices that make the landmarks (state: those tensors, float64).

    Args:
        rig: the face model. landmarks: the map of the landmarks on its mesh (L points).
    """

    def __init__(self, rig: HeadRig, landmarks: LandmarkMap):
        index, self.barycentrics = landmark_vertices(rig.faces, landmarks)
        self.barycentrics = self.barycentrics.double()
        self.weights = landmarks.weights.double()
        flat = index.reshape(-1)
        self.rig = HeadRig(rest_vertices=rig.rest_vertices[flat].double(), faces=torch.zeros(0, 3, dtype=torch.long),
                           expression_basis=rig.expression_basis[:, flat].double(), weights=rig.weights[flat].double(),
                           rest_joints=rig.rest_joints.double(), action_labels=rig.action_labels,
                           eye_centres=rig.eye_centres.double())
        self.count = index.shape[0]

    def points(self, expression: torch.Tensor, jaw: torch.Tensor) -> torch.Tensor:
        """(N, L, 3) landmark points in the rest frame for expressions (N, 52) and jaw openings (N,), metres.

        With the base, neck and head bones at rest their transforms are the identity, so linear
        blend skinning reduces to the jaw's share: ``x' = x + w_jaw (R_x(a) - I)(x - j_jaw)``
        (:func:`neuralbody.head.rig.pose_head` gives the same, the test oracle).
        """
        if expression.ndim != 2 or jaw.shape != expression.shape[:1]:
            raise ValueError(f"LandmarkHead.points: expression (N, 52) and jaw (N,) needed, got "
                             f"{tuple(expression.shape)}, {tuple(jaw.shape)}")
        vertices = expressed_vertices(self.rig, expression)
        zero = torch.zeros_like(jaw)
        cos, sin = jaw.cos() - 1.0, jaw.sin()
        rotation = torch.stack([torch.stack([zero, zero, zero], 1), torch.stack([zero, cos, -sin], 1),
                                torch.stack([zero, sin, cos], 1)], 1)  # R_x(a) - I, (N, 3, 3)
        local = vertices - self.rig.rest_joints[JAW]
        vertices = vertices + self.rig.weights[:, JAW, None] * (local @ rotation.transpose(1, 2))
        return (vertices.reshape(-1, self.count, 3, 3) * self.barycentrics[..., None]).sum(dim=2)


def _intrinsics(focal: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(3, 3) pinhole intrinsics, principal point at the image centre; focal a 0-d tensor, pixels."""
    zero, one = torch.zeros_like(focal), torch.ones_like(focal)
    return torch.stack([torch.stack([focal, zero, zero + width / 2.0]), torch.stack([zero, focal, zero + height / 2.0]),
                        torch.stack([zero, zero, one])])


def _spread(points: torch.Tensor) -> torch.Tensor:
    """(N,) RMS distance of (N, L, 2) points from their mean."""
    return (points - points.mean(1, keepdim=True)).square().sum(2).mean(1).sqrt()


class _Problem:
    """The energy E of the module docstring for one video (state: the data and weights).

    The camera is parametrised so that the focal length and the depth do not fight: per frame
    the image position ``c_t = c0_t + S delta_t`` (pixels) of the anchor (the neutral landmarks'
    centroid X_a) and ``sigma_t = log(f / z_t)`` (pixels per metre at the anchor's depth z_t);
    then ``T_t = z_t ((c_t - (W/2, H/2)) / f, 1) - R_t X_a``. Changing f at fixed (c, sigma) only
    changes the perspective, not the face's place or size.
    """

    def __init__(self, head: LandmarkHead, observed: torch.Tensor, found: torch.Tensor, width: int, height: int,
                 settings: FitSettings):
        self.head, self.observed, self.width, self.height, self.settings = head, observed, width, height, settings
        self.found = found.double()
        self.spread = float(_spread(observed[found]).median())
        self.scale = self.spread / 100.0
        self.weights = head.weights / head.weights.sum()
        self.anchor = head.points(torch.zeros(1, NUM_ACTIONS, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))[0]
        self.centre0 = observed.mean(1)

    def initial_params(self, focal: float) -> dict[str, torch.Tensor]:
        """Frontal rotation, the anchor at the landmarks' centroid, the size matching their spread."""
        frames = self.observed.shape[0]
        rest = self.anchor
        centre = rest.mean(0)
        rotation = torch.from_numpy(look_at_rotation(centre.numpy() - np.array([0.0, 1.0, 0.0]), centre.numpy()))
        spread3 = ((rest - centre) @ rotation.T)[:, :2].square().sum(1).mean().sqrt()
        params = {"rotation": matrix_to_axis_angle(rotation).expand(frames, 3).clone(),
                  "delta": torch.zeros(frames, 2, dtype=torch.float64),
                  "log_scale": (_spread(self.observed) / spread3).log(),
                  "expression": torch.zeros(frames, NUM_ACTIONS, dtype=torch.float64),
                  "jaw": torch.zeros(frames, dtype=torch.float64),
                  "log_focal": torch.tensor(math.log(focal), dtype=torch.float64)}
        return {k: v.clone().requires_grad_(True) for k, v in params.items()}

    def camera(self, params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K (3, 3), R (N, 3, 3), T (N, 3) of the parameters (world-to-camera, metres)."""
        focal = params["log_focal"].exp()
        R = axis_angle_to_matrix(params["rotation"])
        depth = focal / params["log_scale"].exp()
        centre = self.centre0 + self.spread * params["delta"]
        principal = torch.tensor([self.width / 2.0, self.height / 2.0], dtype=centre.dtype)
        anchor_cam = torch.cat([(centre - principal) / focal, torch.ones_like(depth)[:, None]], 1) * depth[:, None]
        return _intrinsics(focal, self.width, self.height), R, anchor_cam - R @ self.anchor.mean(0)

    def residuals(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, L, 2) projected minus observed landmarks, pixels."""
        points = self.head.points(params["expression"], params["jaw"])
        K, R, T = self.camera(params)
        uv, _ = project(points, K.expand(points.shape[0], 3, 3), R, T, torch.zeros(points.shape[0], 5, dtype=points.dtype))
        return uv - self.observed

    def energy(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        s = self.settings
        data = (self.residuals(params).square().sum(2) * self.weights).sum(1) / self.scale**2
        energy = (data * self.found).sum() / self.found.sum().clamp_min(1.0)
        psi, jaw = params["expression"], params["jaw"]
        energy = energy + (s.l1 * psi.sum(1) + s.l2 * psi.square().sum(1) + s.jaw * jaw.square()).mean()
        if s.smooth > 0 and psi.shape[0] > 2:
            energy = energy + s.smooth * _roughness(params).mean()
        return energy


SMOOTH_SCALES = {"rotation": 0.02, "delta": 0.01, "log_scale": 0.01, "expression": 0.1, "jaw": 0.02}


def _roughness(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N - 2,) squared second differences of the per-frame parameters over :data:`SMOOTH_SCALES`."""
    total = 0.0
    for name, scale in SMOOTH_SCALES.items():
        value = params[name].reshape(params[name].shape[0], -1)
        total = total + (value.diff(n=2, dim=0) / scale).square().sum(1)
    return total


def _adam(problem: _Problem, params: dict[str, torch.Tensor], free: list[str], steps: int, bar) -> float:
    """Adam on the ``free`` parameters (learning rate decayed tenfold, cosine) with the bounds projected."""
    optimiser = torch.optim.Adam([params[k] for k in free], lr=problem.settings.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda i: 0.1 + 0.45 * (1 + math.cos(math.pi * i / steps)))
    for _ in range(steps):
        optimiser.zero_grad()
        energy = problem.energy(params)
        energy.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            params["expression"].clamp_(0.0, 1.0)
            params["jaw"].clamp_(0.0, problem.settings.max_jaw)
        if bar is not None:
            bar.update(1)
    with torch.no_grad():
        return float(problem.energy(params))


def _check_inputs(observed: torch.Tensor, found: torch.Tensor, head: LandmarkHead, width: int, height: int) -> None:
    if observed.ndim != 3 or observed.shape[1:] != (head.count, 2) or found.shape != observed.shape[:1]:
        raise ValueError(f"fit_landmarks: observed must be (N, {head.count}, 2) and found (N,), got "
                         f"{tuple(observed.shape)}, {tuple(found.shape)}")
    if min(width, height) < 8:
        raise ValueError(f"fit_landmarks: the image must be at least 8 x 8 pixels, got {width} x {height}")
    if not bool(found.any()):
        raise ValueError("fit_landmarks: no frame has a face")


def _fill_missing(observed: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
    """Frames without a face take the nearest found frame's landmarks (their data weight is 0)."""
    index = torch.nonzero(found).squeeze(1)
    nearest = (torch.arange(observed.shape[0])[:, None] - index[None]).abs().argmin(1)
    return observed[index[nearest]]


def fit_landmarks(head: LandmarkHead, observed: torch.Tensor, found: torch.Tensor, width: int, height: int, *,
                  focal: float | None = None, settings: FitSettings = FitSettings(),
                  progress: bool = True) -> TrackedHead:
    """Fit the head to landmarks (the module docstring).

    Args:
        head: the rig at the landmarks.
        observed: (N, L, 2) landmarks per frame, pixels (ignored where ``found`` is False).
        found: (N,) bool, frames with a face.
        width, height: image size, pixels (the principal point is its centre).
        focal: the focal length in pixels if known (kept fixed), else estimated from
            ``settings.initial_fov``.
    """
    observed = torch.as_tensor(observed, dtype=torch.float64)
    found = torch.as_tensor(found, dtype=torch.bool)
    _check_inputs(observed, found, head, width, height)
    if focal is not None and not focal > 0:
        raise ValueError(f"fit_landmarks: focal must be > 0 pixels, got {focal}")
    problem = _Problem(head, _fill_missing(observed, found), found, width, height, settings)
    start = focal if focal is not None else width / 2.0 / math.tan(math.radians(settings.initial_fov) / 2.0)
    params = problem.initial_params(start)
    camera = ["rotation", "delta", "log_scale"] + (["log_focal"] if focal is None else [])
    bar = progress_bar(total=settings.rigid_steps + settings.steps, desc="track-head fit", unit="step", enabled=progress)
    _adam(problem, params, camera, settings.rigid_steps, bar)
    if settings.steps > 0:
        _adam(problem, params, camera + ["expression", "jaw"], settings.steps, bar)
    bar.close()
    with torch.no_grad():
        error = (problem.residuals(params).square().sum(2) * problem.weights).sum(1).sqrt()
        K, R, T = problem.camera(params)
    return TrackedHead(rotation=matrix_to_axis_angle(R), translation=T, jaw=params["jaw"].detach(),
                       expression=params["expression"].detach(), focal=float(K[0, 0]),
                       residual_px=torch.where(found, error, torch.full_like(error, float("nan"))))


def head_bone_transforms(rest_joints: torch.Tensor, tracked: TrackedHead) -> torch.Tensor:
    """(N, 4, 4, 4) canonical -> world bone transforms of the tracked frames (rest_joints (4, 3), metres)."""
    return bone_transforms(rest_joints.double(), tracked.pose())
