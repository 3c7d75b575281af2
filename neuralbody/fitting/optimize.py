"""Per-frame body fitting to multi-view keypoints (and masks), shape shared across the sequence.

For each frame (world coordinates, metres; pixels are distorted image pixels):

1. triangulate the keypoints (:func:`~neuralbody.data.triangulation.triangulate`);
2. initialise ``Rh, Th`` by a weighted Procrustes (Kabsch) alignment of the body's keypoints
   (rest pose on the first frame, the previous frame's pose afterwards) to the triangulated
   ones: ``min_{R, t} sum_k w_k |R p_k + t - q_k|^2``;
3. L-BFGS on ``Rh, Th`` alone (torso keypoints), then, first with a wide robust scale and then
   the real one, on a subset of bones (:data:`DEFAULT_BONES`; fingers, toes, face bones stay at
   zero) together with ``Rh, Th``, minimising

       E = rho_GM(reprojection) / sigma^2 + w_sil silhouette / sigma_sil^2 + w_pose pose_prior
           + w_temporal |theta - theta_prev|^2 + w_shape shape_prior.

Shape (phenotypes) is fitted first, jointly with pose, on a few frames spread over the sequence,
then frozen for the per-frame pass, which warm-starts each frame from the previous one.

4. Whole-sequence refinement (``FitConfig.refine_iterations`` > 0): all frames of a window of
   ``refine_window`` frames at once, from the per-frame fits, with the shape shared by all of them
   (refined in the first window, frozen after) and a smooth-motion term on the vertices,

       E_seq = sum_t E_t + w_accel sum_t mean_n |v_{t+1,n} - 2 v_{t,n} + v_{t-1,n}|^2 / s_accel^2,

   which averages the keypoint noise of neighbouring frames instead of fitting it frame by frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from neuralbody.body.base import BodyModel
from neuralbody.data.cameras import Camera
from neuralbody.fitting import objectives
from neuralbody.fitting.keypoints import KeypointRegressor
from neuralbody.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from neuralbody.data.triangulation import Triangulation, check_keypoints2d, triangulate
from neuralbody.io.progress import progress_bar

log = logging.getLogger(__name__)

DEFAULT_BONES = (
    "spine04", "spine03", "spine02", "neck02", "head",
    "upperleg01.L", "lowerleg01.L", "foot.L", "upperleg01.R", "lowerleg01.R", "foot.R",
    "upperarm01.L", "lowerarm01.L", "upperarm01.R", "lowerarm01.R",
)  # fmt: skip
"""Anny bones optimised by default: one per major joint of spine, neck, head and limbs."""

SMPL_BONES = (
    "spine1", "spine2", "spine3", "neck", "head", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee",
    "right_ankle", "left_shoulder", "left_elbow", "right_shoulder", "right_elbow",
)  # fmt: skip
"""SMPL joints optimised by default (used when ``FitConfig.bones`` is None and the body is SMPL)."""

KNEES = ("lowerleg01.L", "lowerleg01.R", "left_knee", "right_knee")

TORSO_KEYPOINTS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")


@dataclasses.dataclass
class FitConfig:
    """Fitting settings. Weights are relative to the reprojection term (normalised by ``sigma^2``).

    Attributes:
        bones: names of the bones to optimise (the rest stay at zero rotation); None:
            :data:`DEFAULT_BONES` for Anny, :data:`SMPL_BONES` for SMPL.
        sigma_px: Geman-McClure scale of the reprojection term, pixels (None: image size / 50).
        silhouette_weight: weight of the silhouette chamfer (0 disables it; needs masks). Exact masks
            pin the outline to about a pixel, noisy keypoints do not: at 256² with 3 px keypoint noise,
            0.1 -> 3 takes the per-frame joint error from 22 to 10 mm.
        silhouette_vertices: vertices subsampled for the silhouette term (too few leave gaps between
            projected vertices that the outline term fills by inflating the body).
        pose_weight: per-bone weight of ``|theta|^2``.
        angle_limit: soft cap on each bone's rotation angle, radians.
        temporal_weight: weight pulling pose and ``Rh`` towards the previous frame's fit.
        shape_weight: weight of the shape prior (towards the model's mean shape).
        fit_shape: fit shape on ``shape_frames`` frames first (else the mean shape).
        shape_frames: number of frames (spread over the sequence) for the shape stage.
        global_iterations, pose_iterations: L-BFGS iterations of the two stages.
        shape_iterations: L-BFGS iterations of the joint shape + pose stage.
        coarse_iterations, coarse_sigma_factor: a first pose stage with the robust scale
            multiplied by the factor (nearly least squares: large initial errors still pull),
            before the pose stage at the real scale.
        refine_iterations: L-BFGS iterations of the whole-sequence refinement (0: none).
        refine_window: frames optimised together by the refinement (longer sequences go window
            by window, each window's motion term continuing from the previous window's last two frames).
        acceleration_weight, acceleration_scale_m: weight and scale (metres per frame^2) of the
            refinement's smooth-motion term on the silhouette vertices.
        min_views: views with at least ``min_keypoints`` confident keypoints needed per frame.
        min_keypoints: see ``min_views``; also the triangulated keypoints needed.
    """

    bones: tuple[str, ...] | None = None
    sigma_px: float | None = None
    silhouette_weight: float = 3.0
    silhouette_vertices: int = 1500
    pose_weight: float = 1e-3
    angle_limit: float = 2.0
    temporal_weight: float = 1e-3
    shape_weight: float = 1e-2
    fit_shape: bool = True
    shape_frames: int = 3
    global_iterations: int = 20
    shape_iterations: int = 150
    coarse_iterations: int = 30
    coarse_sigma_factor: float = 10.0
    pose_iterations: int = 30
    refine_iterations: int = 40
    refine_window: int = 30
    acceleration_weight: float = 0.02
    acceleration_scale_m: float = 0.005
    min_views: int = 2
    min_keypoints: int = 6


@dataclasses.dataclass
class FrameFit:
    """A fitted frame (numpy, float32). poses (P,) radians; Rh (3,); Th (3,) metres; shapes (S,);
    vertices (V, 3) world metres; keypoints (K, 3) model keypoints, world metres; reprojection_px
    (C, K) pixel error per observed keypoint (NaN where unobserved); triangulation; seconds."""

    frame: int
    poses: np.ndarray
    Rh: np.ndarray
    Th: np.ndarray
    shapes: np.ndarray
    vertices: np.ndarray
    keypoints: np.ndarray
    reprojection_px: np.ndarray
    triangulation: Triangulation
    seconds: float

    def params(self) -> dict[str, np.ndarray]:
        """ZJU-MoCap style params dict: (1, n) float32 rows."""
        return {k: getattr(self, k).reshape(1, -1).astype(np.float32) for k in ("poses", "Rh", "Th", "shapes")}


@dataclasses.dataclass
class SequenceFit:
    """fits: frame -> FrameFit; skipped: frame -> reason; shapes: (S,) the shared shape."""

    fits: dict[int, FrameFit]
    skipped: dict[int, str]
    shapes: np.ndarray


def kabsch(source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted rigid alignment: ``R (3, 3), t (3,)`` minimising ``sum_k w_k |R source_k + t - target_k|^2``.

    source, target: (K, 3) metres; weights: (K,) non-negative (at least 3 non-collinear points with w > 0).
    ``R = V diag(1, 1, det(V U^T)) U^T`` from the SVD ``U S V^T`` of the weighted covariance (no reflections).
    """
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3 or weights.shape != source.shape[:1]:
        raise ValueError(
            f"kabsch: source (K, 3), target (K, 3), weights (K,) expected; got {tuple(source.shape)}, "
            f"{tuple(target.shape)}, {tuple(weights.shape)}"
        )
    w = weights / weights.sum().clamp_min(1e-12)
    mean_s, mean_t = (w[:, None] * source).sum(0), (w[:, None] * target).sum(0)
    covariance = ((source - mean_s) * w[:, None]).T @ (target - mean_t)
    U, _, Vh = torch.linalg.svd(covariance)
    sign = torch.sign(torch.det(Vh.T @ U.T))
    D = torch.diag(torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign]))
    R = Vh.T @ D @ U.T
    return R, mean_t - R @ mean_s


class _Problem:
    """Maps the optimised bone subset to the body's full pose vector."""

    def __init__(self, body: BodyModel, bone_ids: list[int]):
        self.body, self.bone_ids = body, bone_ids

    def full_poses(self, subset: torch.Tensor) -> torch.Tensor:
        """(B, P) pose vector with the (B, n, 3) ``subset`` scattered into the optimised bones."""
        full = torch.zeros(subset.shape[0], self.body.num_joints, 3, dtype=subset.dtype, device=subset.device)
        full = full.index_copy(1, torch.as_tensor(self.bone_ids, device=subset.device), subset)
        return full.reshape(subset.shape[0], -1)


def _lbfgs(parameters: list[torch.Tensor], closure: Callable[[], torch.Tensor], iterations: int) -> None:
    optimizer = torch.optim.LBFGS(
        parameters,
        lr=1.0,
        max_iter=iterations,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )

    def step():
        optimizer.zero_grad()
        loss = closure()
        loss.backward()
        return loss

    optimizer.step(step)


def _translation(Tc: torch.Tensor, Rh: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Th (B, 3) metres from the pelvis-centred Tc (B, 3), Rh (B, 3) radians and the rest pelvis c (3,)."""
    return Tc + centre - axis_angle_to_matrix(Rh) @ centre


class SequenceFitter:
    """Fits a sequence frame by frame (holds the body, the regressor, the cameras and the config)."""

    def __init__(
        self, body: BodyModel, regressor: KeypointRegressor, cameras: list[Camera], config: FitConfig | None = None
    ):
        self.body, self.cameras, self.config = body, cameras, config or FitConfig()
        if self.config.bones is None:
            bones = DEFAULT_BONES if body.name == "anny" else SMPL_BONES
            self.config = dataclasses.replace(self.config, bones=bones)
        self.shape_bounds = (0.0, 1.0) if body.name == "anny" else (-float("inf"), float("inf"))
        device = next(iter(body.buffers())).device
        self.device = device
        self.regressor = regressor.to(device=device)
        self.camera_tensors = objectives.CameraTensors.from_cameras(cameras, device=device)
        names = list(getattr(body, "joint_names", []))
        missing = [b for b in self.config.bones if b not in names]
        if missing:
            raise ValueError(f"FitConfig.bones: body model {body.name!r} has no bones {missing}")
        self.bone_ids = [names.index(b) for b in self.config.bones]
        self.problem = _Problem(body, self.bone_ids)
        self.knee_ids = [i for i, b in enumerate(self.config.bones) if b in KNEES]
        self.sigma = self.config.sigma_px or max(max(c.width, c.height) for c in cameras) / 50.0
        self.sigma_silhouette = self.sigma
        generator = torch.Generator().manual_seed(0)
        count = min(self.config.silhouette_vertices, body.num_vertices)
        self.silhouette_ids = torch.randperm(body.num_vertices, generator=generator)[:count].to(device)
        torso = [regressor.names.index(n) for n in TORSO_KEYPOINTS if n in regressor.names]
        self.init_weights = torch.full((regressor.num_keypoints,), 0.05, device=device)
        self.init_weights[torso] = 1.0

    # --- one batch of frames -------------------------------------------------------------------
    def energy(self, subset, Rh, Th, shapes, observed, silhouettes, previous, sigma_factor: float = 1.0):
        """(B,) total energy; observed: (B, C, K, 3); silhouettes: list of SilhouetteTarget | None."""
        return self.energy_and_vertices(subset, Rh, Th, shapes, observed, silhouettes, previous, sigma_factor)[0]

    def energy_and_vertices(self, subset, Rh, Th, shapes, observed, silhouettes, previous, sigma_factor: float = 1.0):
        """(B,) total energy (see :meth:`energy`) and the (B, V, 3) posed vertices, metres."""
        cfg, batch = self.config, subset.shape[0]
        output = self.body(self.problem.full_poses(subset), shapes.expand(batch, -1), Rh, Th)
        uv, _ = self.camera_tensors.project(self.regressor(output.vertices))
        sigma = self.sigma * sigma_factor
        energy = objectives.robust_reprojection(uv, observed, sigma_px=sigma) / sigma**2
        if cfg.silhouette_weight > 0 and silhouettes is not None:
            uv_vertices, _ = self.camera_tensors.project(output.vertices[:, self.silhouette_ids])
            terms = [
                objectives.silhouette_loss(uv_vertices[b : b + 1], target, sigma_px=self.sigma_silhouette)[0]
                if target is not None else uv_vertices.new_zeros(())
                for b, target in enumerate(silhouettes)
            ]  # fmt: skip
            energy = energy + cfg.silhouette_weight * torch.stack(terms) / self.sigma_silhouette**2
        weights = torch.full((len(self.bone_ids),), cfg.pose_weight, dtype=subset.dtype, device=subset.device)
        limits = torch.full_like(weights, cfg.angle_limit)
        energy = energy + objectives.pose_prior(subset, weights=weights, limits=limits, knee_ids=self.knee_ids)
        if previous is not None:
            energy = energy + cfg.temporal_weight * objectives.temporal_loss(subset, previous)
        return energy, output.vertices

    def initial_global(self, subset: torch.Tensor, shapes: torch.Tensor, triangulation: Triangulation, Rh=None):
        """Rh (3,), Th (3,) from Kabsch of the body's keypoints (pose ``subset`` (n, 3)) to the triangulated ones.

        With ``Rh`` (3,) given (e.g. Neural Body Fitting's guess) the rotation is held and only
        ``Th = mean_w(target) - R(Rh) mean_w(source)`` is solved (same weights)."""
        with torch.no_grad():
            output = self.body(self.problem.full_poses(subset[None]), shapes)
            source = self.regressor(output.vertices)[0].double()
        valid = torch.as_tensor(triangulation.valid, device=self.device)
        target = torch.as_tensor(np.nan_to_num(triangulation.points), device=self.device, dtype=torch.float64)
        weights = self.init_weights.double() * valid
        if Rh is not None:
            R = axis_angle_to_matrix(torch.as_tensor(Rh, dtype=torch.float64, device=self.device))
            w = (weights / weights.sum().clamp_min(1e-12))[:, None]
            return R.new_tensor(Rh).float(), ((w * target).sum(0) - R @ (w * source).sum(0)).float()
        R, t = kabsch(source, target, weights)
        return matrix_to_axis_angle(R[None])[0].float(), t.float()

    def _start(self, frame, subset, shapes, triangulation, initial_guess):
        """(subset (n, 3), Rh, Th) to start ``frame`` from: ``initial_guess(frame)`` if it gives one, else ``subset``."""
        guess = initial_guess(frame) if initial_guess is not None else None
        if guess is None:
            return (subset, *self.initial_global(subset, shapes, triangulation))
        subset = torch.as_tensor(guess[0], dtype=torch.float32, device=self.device)
        return (subset, *self.initial_global(subset, shapes, triangulation, Rh=guess[1]))

    def _pelvis_centred(self, Rh, Th, shapes):
        """Translation about the rest root (pelvis) instead of the floor: ``Th = Tc + c - R(Rh) c``.

        Rh (B, 3) radians, Th (B, 3) metres, shapes (1, S) -> c (3,) and Tc (B, 3), metres, no gradient.
        """
        with torch.no_grad():
            centre = self.body(torch.zeros(1, self.body.pose_dim, device=self.device), shapes).rest_joints[0, 0]
            return centre, Th - centre + axis_angle_to_matrix(Rh) @ centre

    def _shape_energy(self, shapes):
        """Weighted shape prior (towards the mean shape, inside the bounds) of shapes (1, S)."""
        mean_shape = self.body.default_shapes(1).to(shapes)
        return self.config.shape_weight * objectives.shape_prior(
            shapes, mean=mean_shape, low=self.shape_bounds[0], high=self.shape_bounds[1]
        ).sum()

    def optimise(self, subset, Rh, Th, shapes, observed, silhouettes, previous, *, fit_shape: bool, iterations=None):
        """Global stage then pose stage on a batch; returns the optimised (subset, Rh, Th, shapes)."""
        cfg = self.config
        centre, Tc = self._pelvis_centred(Rh, Th, shapes)
        subset, Rh, Tc = (x.detach().clone().requires_grad_(True) for x in (subset, Rh, Tc))
        shapes = shapes.detach().clone().requires_grad_(fit_shape)

        def translation():
            return _translation(Tc, Rh, centre)

        factor = cfg.coarse_sigma_factor
        # the global stage trusts the torso: limbs may still be far from their pose
        torso_observed = torch.cat([observed[..., :2], observed[..., 2:] * self.init_weights[:, None].to(observed)], -1)

        def closure_global():
            return self.energy(
                subset.detach(), Rh, translation(), shapes.detach(), torso_observed, silhouettes, previous, factor
            ).sum()

        _lbfgs([Rh, Tc], closure_global, cfg.global_iterations)
        variables = [subset, Rh, Tc] + ([shapes] if fit_shape else [])
        for factor, count in ((cfg.coarse_sigma_factor, cfg.coarse_iterations), (1.0, iterations or cfg.pose_iterations)):

            def closure_pose():
                energy = self.energy(subset, Rh, translation(), shapes, observed, silhouettes, previous, factor).sum()
                return energy + self._shape_energy(shapes) if fit_shape else energy

            _lbfgs(variables, closure_pose, count)
        with torch.no_grad():
            Th = translation()
        return subset.detach(), Rh.detach(), Th.detach(), shapes.detach()

    def refine(self, frames, subset, Rh, Th, shapes, observed, silhouettes, *, fit_shape: bool, context=None):
        """Whole-sequence refinement of one window of frames (step 4 of the module docstring).

        Args:
            frames: T frame indices in increasing order (gaps: no motion term across them).
            subset: (T, n, 3) bone axis-angles, radians; Rh (T, 3) radians; Th (T, 3) metres: the start.
            shapes: (1, S) the shared shape (refined too when ``fit_shape``).
            observed: (T, C, K, 3) keypoints; silhouettes: T SilhouetteTarget | None.
            context: None, or (frame indices, (F, N, 3) silhouette vertices) of up to two frames just
                before the window, held fixed: the motion term continues across windows.
        Returns:
            the refined (subset, Rh, Th, shapes), detached.
        """
        cfg = self.config
        centre, Tc = self._pelvis_centred(Rh, Th, shapes)
        subset, Rh, Tc = (x.detach().clone().requires_grad_(True) for x in (subset, Rh, Tc))
        shapes = shapes.detach().clone().requires_grad_(fit_shape)
        times = list(frames) if context is None else list(context[0]) + list(frames)
        fixed = None if context is None else context[1].to(self.device)
        consecutive = torch.as_tensor(
            [times[i + 2] - times[i + 1] == 1 and times[i + 1] - times[i] == 1 for i in range(len(times) - 2)],
            device=self.device,
        )  # fmt: skip

        def translation():
            return _translation(Tc, Rh, centre)

        def closure():
            energy, vertices = self.energy_and_vertices(subset, Rh, translation(), shapes, observed, silhouettes, None)
            total = energy.sum()
            points = vertices[:, self.silhouette_ids]
            if fixed is not None:
                points = torch.cat([fixed, points])
            if len(points) >= 3 and cfg.acceleration_weight > 0:
                total = total + cfg.acceleration_weight * objectives.acceleration_loss(
                    points, scale_m=cfg.acceleration_scale_m, consecutive=consecutive
                ).sum()
            return total + self._shape_energy(shapes) if fit_shape else total

        _lbfgs([subset, Rh, Tc] + ([shapes] if fit_shape else []), closure, cfg.refine_iterations)
        with torch.no_grad():
            Th = translation()
        return subset.detach(), Rh.detach(), Th.detach(), shapes.detach()

    def _refine_sequence(self, fits, subsets, prepared, silhouette_of, shapes):
        """Refine the per-frame ``fits`` (frame -> FrameFit; ``subsets`` frame -> (n, 3)) window by window.

        Returns the new (fits, shapes); a window whose refinement diverges keeps its per-frame fits."""
        cfg = self.config
        order = sorted(fits)
        context = None
        for number, start in enumerate(range(0, len(order), cfg.refine_window)):
            window = order[start : start + cfg.refine_window]
            started = time.perf_counter()
            as_tensor = lambda xs: torch.as_tensor(np.stack(xs), dtype=torch.float32, device=self.device)  # noqa: E731
            observed = as_tensor([prepared[f][0] for f in window])
            fit_shape = cfg.fit_shape and number == 0
            try:
                subset, Rh, Th, new_shapes = self.refine(
                    window, torch.stack([subsets[f] for f in window]), as_tensor([fits[f].Rh for f in window]),
                    as_tensor([fits[f].Th for f in window]), shapes, observed, [silhouette_of(f) for f in window],
                    fit_shape=fit_shape, context=context,
                )  # fmt: skip
            except ValueError as error:
                log.warning("frames %d-%d: the sequence refinement failed (%s); per-frame fits kept", window[0],
                            window[-1], error)  # fmt: skip
                continue
            if not all(torch.isfinite(x).all() for x in (subset, Rh, Th, new_shapes)):
                log.warning("frames %d-%d: the sequence refinement diverged; per-frame fits kept",
                            window[0], window[-1])  # fmt: skip
                continue
            if fit_shape:
                shapes = new_shapes.clamp(*self.shape_bounds)
                log.info("refined shape: %s", np.round(shapes[0].cpu().numpy(), 3).tolist())
            share = (time.perf_counter() - started) / len(window)
            for i, frame in enumerate(window):
                begun = time.perf_counter() - fits[frame].seconds - share
                fits[frame] = self.finish(
                    frame, subset[i], Rh[i], Th[i], shapes, observed[i], prepared[frame][1], begun
                )  # fmt: skip
                subsets[frame] = subset[i]
            tail = window[-2:]
            ids = self.silhouette_ids
            context = (tail, torch.as_tensor(np.stack([fits[f].vertices for f in tail]), device=self.device)[:, ids])
        return fits, shapes

    # --- a frame's data ----------------------------------------------------------------------------
    def prepare(self, keypoints2d: np.ndarray) -> tuple[np.ndarray, Triangulation]:
        """Validate a frame's (C, K, 3) keypoints and triangulate; raises ValueError saying what is unusable."""
        cfg = self.config
        if np.asarray(keypoints2d).shape[1:] != (self.regressor.num_keypoints, 3):
            raise ValueError(
                f"keypoints must be (views, {self.regressor.num_keypoints}, 3), got {np.asarray(keypoints2d).shape}"
            )
        clean = check_keypoints2d(keypoints2d, len(self.cameras))
        per_view = (clean[..., 2] > 0).sum(1)
        empty = [self.cameras[c].name or str(c) for c in np.flatnonzero(per_view < cfg.min_keypoints)]
        if (per_view >= cfg.min_keypoints).sum() < cfg.min_views:
            raise ValueError(
                f"only {(per_view >= cfg.min_keypoints).sum()} views with >= {cfg.min_keypoints} usable keypoints "
                f"(need {cfg.min_views}); no person / unusable keypoints in views {empty}"
            )
        if empty:
            log.warning("views %s have fewer than %d usable keypoints; they count for little", empty, cfg.min_keypoints)
        triangulation = triangulate(self.cameras, clean, sigma_px=self.sigma)
        torso = [self.regressor.names.index(n) for n in TORSO_KEYPOINTS if n in self.regressor.names]
        if triangulation.valid.sum() < cfg.min_keypoints or triangulation.valid[torso].sum() < 3:
            raise ValueError(
                f"only {int(triangulation.valid.sum())} keypoints triangulated "
                f"({int(triangulation.valid[torso].sum())} of the 4 torso ones); need {cfg.min_keypoints} and 3"
            )
        return clean, triangulation

    def finish(self, frame, subset, Rh, Th, shapes, observed, triangulation, started) -> FrameFit:
        with torch.no_grad():
            poses = self.problem.full_poses(subset[None])
            output = self.body(poses, shapes, Rh[None], Th[None])
            keypoints = self.regressor(output.vertices)
            uv, _ = self.camera_tensors.project(keypoints)
        error = (uv[0] - observed[..., :2]).norm(dim=-1).cpu().numpy()
        error[observed[..., 2].cpu().numpy() <= 0] = np.nan
        as_np = lambda x: x.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        return FrameFit(
            frame=frame, poses=as_np(poses[0]), Rh=as_np(Rh), Th=as_np(Th), shapes=as_np(shapes[0]),
            vertices=as_np(output.vertices[0]), keypoints=as_np(keypoints[0]), reprojection_px=error,
            triangulation=triangulation, seconds=time.perf_counter() - started,
        )  # fmt: skip

    # --- the sequence ------------------------------------------------------------------------------
    def fit_sequence(
        self,
        frames: list[int],
        load_keypoints: Callable[[int], np.ndarray],
        load_masks: Callable[[int], list[np.ndarray]] | None = None,
        *,
        progress: bool = True,
        initial_guess: Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None = None,
    ) -> SequenceFit:
        """Fit ``frames`` in order. ``load_keypoints(frame)`` -> (C, K, 3); ``load_masks(frame)`` -> C (H, W) bool.

        A frame whose data cannot be loaded or is unusable is skipped with its reason (logged and
        returned in ``skipped``); the fit continues with the next frame. ``initial_guess(frame)`` ->
        (bone axis-angles (n, 3), Rh (3,)) or None, e.g. Neural Body Fitting's
        (:mod:`~neuralbody.fitting.nbf_init`), replaces the previous frame / rest pose as the start of
        the per-frame pass (not of the shape stage); if that start diverges, the default one is tried.
        """
        cfg = self.config
        prepared, skipped = {}, {}
        for frame in frames:
            try:
                prepared[frame] = self.prepare(load_keypoints(frame))
            except (OSError, ValueError) as error:
                skipped[frame] = str(error)
                log.warning("frame %d skipped: %s", frame, error)
        silhouette_of = self._silhouette_loader(load_masks)
        shapes = self.body.default_shapes(1).to(self.device)
        zero_subset = torch.zeros(len(self.bone_ids), 3, device=self.device)
        if cfg.fit_shape and prepared:
            usable = sorted(prepared)
            picks = sorted({usable[int(i)] for i in np.linspace(0, len(usable) - 1, min(cfg.shape_frames, len(usable)))})
            log.info("fitting shape on frames %s", picks)
            inits = [self.initial_global(zero_subset, shapes, prepared[f][1]) for f in picks]
            observed = torch.as_tensor(np.stack([prepared[f][0] for f in picks]), dtype=torch.float32, device=self.device)
            shape_subsets, _, _, shapes = self.optimise(
                zero_subset.expand(len(picks), -1, -1), torch.stack([i[0] for i in inits]),
                torch.stack([i[1] for i in inits]), shapes, observed, [silhouette_of(f) for f in picks], None,
                fit_shape=True, iterations=cfg.shape_iterations,
            )  # fmt: skip
            warm = dict(zip(picks, shape_subsets))
            shapes = shapes.clamp(*self.shape_bounds)
            log.info("shape: %s", np.round(shapes[0].cpu().numpy(), 3).tolist())
        else:
            warm = {}
        fits, subsets, previous = {}, {}, None
        for frame in progress_bar(sorted(prepared), enabled=progress, desc="fitting"):
            started = time.perf_counter()
            observed_np, triangulation = prepared[frame]
            start_subset = previous if previous is not None else warm.get(frame, zero_subset)
            observed = torch.as_tensor(observed_np, dtype=torch.float32, device=self.device)[None]
            guesses = (initial_guess, None) if initial_guess is not None else (None,)
            for guess in guesses:  # a start from the guess that diverges falls back to the default start
                try:
                    start, Rh, Th = self._start(frame, start_subset, shapes, triangulation, guess)
                    subset, Rh, Th, _ = self.optimise(
                        start[None], Rh[None], Th[None], shapes, observed, [silhouette_of(frame)],
                        None if previous is None else previous[None], fit_shape=False,
                    )  # fmt: skip
                    break
                except ValueError as error:
                    log.warning("frame %d: the fit from the %s start failed (%s)", frame,
                                "initial-guess" if guess is not None else "default", error)  # fmt: skip
            else:
                skipped[frame] = "the optimisation diverged (NaN)"
                continue
            fits[frame] = self.finish(frame, subset[0], Rh[0], Th[0], shapes, observed[0], triangulation, started)
            previous = subsets[frame] = subset[0]
        if cfg.refine_iterations > 0 and len(fits) > 1:
            log.info("refining %d frames together (shared shape, smooth motion)", len(fits))
            fits, shapes = self._refine_sequence(fits, subsets, prepared, silhouette_of, shapes)
        return SequenceFit(fits, skipped, shapes[0].cpu().numpy().astype(np.float32))

    def _silhouette_loader(self, load_masks):
        if load_masks is None or self.config.silhouette_weight <= 0:
            return lambda frame: None

        def load(frame):
            try:
                return objectives.SilhouetteTarget.from_masks(load_masks(frame), device=self.device)
            except (OSError, ValueError) as error:
                log.warning("frame %d: no silhouette term (%s)", frame, error)
                return None

        return load
