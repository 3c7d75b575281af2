"""A body prior for pixel-aligned implicit functions: where a point is relative to the fitted body.

PaMIR (Zheng et al. 2021) conditions PIFu's occupancy on a body model posed in the frame; the
multi-view multi-scale model of seed 002 has no such input. Here each query point ``x`` (world
metres) gets, from the posed body's surface ``B`` (a closed triangle mesh, outward faces), the
signed distance ``d(x)`` (negative inside, :meth:`neuralbody.geometry.queries.WarpMesh.signed_distance`)
squashed at a few length scales ``s_k`` (metres)::

    b_k(x) = tanh(d(x) / s_k)

so the decoder sees both "just off the skin" (small ``s``) and "far from the body" (large ``s``)
as bounded numbers. Training reads the corpus's true body, perturbed (:func:`perturb_body`:
scaled about its centroid by ``1 + U(-scale, scale)`` and shifted by ``N(0, shift^2)`` metres per
axis) so the network does not trust it blindly; reconstruction reads a fitted body. The
perturbed body's distances come from the unperturbed mesh (built once a frame, :class:`BodyMeshes`)
by the similarity's inverse: with ``B' = f (B - c) + c + t``, ``d_B'(x) = f d_B((x - c - t) / f + c)``.
:func:`body_features_reference` is the brute-force oracle of the tests.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from neuralbody.geometry.queries import WarpMesh, closest_points_reference, winding_number_reference

BODY_SHIFT = 0.015  # metres: standard deviation of the training body's shift per axis
BODY_SCALE = 0.03  # relative: the training body's size jitter


@dataclasses.dataclass(frozen=True)
class BodyPrior:
    """What the body-prior features of a frame need besides its posed vertices.

    Attributes:
        faces: (F, 3) int64 triangles of the body model (the corpus's and the fit's: Anny's).
        scales: K length scales of the features, metres (the model's ``body_scales``).
        shift: training perturbation: standard deviation of the body's shift per axis, metres.
        scale: training perturbation: relative size jitter.
    """

    faces: np.ndarray
    scales: tuple[float, ...]
    shift: float = BODY_SHIFT
    scale: float = BODY_SCALE


@dataclasses.dataclass(frozen=True)
class PosedBody:
    """A body posed in one frame, the input of a body-prior model at reconstruction.

    Attributes:
        vertices: (V, 3) world metres (a fit's ``vertices/{frame}.npy``).
        faces: (F, 3) int64 outward triangles of the body model.
    """

    vertices: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"PosedBody: vertices (V, 3) and faces (F, 3) needed, got {self.vertices.shape} and "
                             f"{self.faces.shape}")  # fmt: skip
        if int(self.faces.max(initial=-1)) >= len(self.vertices):
            raise ValueError(f"PosedBody: the faces index {int(self.faces.max()) + 1} vertices, the body has "
                             f"{len(self.vertices)} (another body model's vertices?)")  # fmt: skip


def body_model_faces() -> np.ndarray:
    """(F, 3) int64 faces of Anny, the body model of the corpus and of ``neuralbody fit``'s default."""
    from neuralbody.body import load_body_model

    return load_body_model("anny").faces.cpu().numpy().astype(np.int64)


def _check_scales(scales: tuple[float, ...]) -> None:
    if not scales or min(scales) <= 0:
        raise ValueError(f"body feature scales must be positive metres, got {scales}")


def body_features(mesh: WarpMesh, points: torch.Tensor, scales: tuple[float, ...]) -> torch.Tensor:
    """(N, K) float32 features ``tanh(d / s_k)`` of points (N, 3) world metres against the body ``mesh``.

    Args:
        mesh: the posed body surface (closed, outward faces), world metres.
        points: (N, 3) world metres, any device (the result comes back on it).
        scales: K length scales, metres.
    """
    _check_scales(scales)
    if points.ndim != 2 or points.shape[-1] != 3:
        raise ValueError(f"body_features: points must be (N, 3), got {tuple(points.shape)}")
    return squash(mesh.signed_distance(points.detach()).float(), scales)


def squash(distance: torch.Tensor, scales: tuple[float, ...]) -> torch.Tensor:
    """(N,) signed distances, metres -> (N, K) float32 ``tanh(d / s_k)``."""
    scale = torch.tensor(scales, dtype=torch.float32, device=distance.device)
    return torch.tanh(distance.float()[:, None] / scale)


def body_features_reference(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray,
                            scales: tuple[float, ...]) -> np.ndarray:  # fmt: skip
    """Brute force (every point against every face, float64) of :func:`body_features`; test oracle only.

    vertices (V, 3), faces (F, 3), points (N, 3) metres -> (N, K).
    """
    _check_scales(scales)
    distance = np.asarray(closest_points_reference(vertices, faces, points).distances, dtype=np.float64)
    inside = winding_number_reference(vertices, faces, points) > 0.5
    signed = np.where(inside, -distance, distance)
    return np.tanh(signed[:, None] / np.asarray(scales, dtype=np.float64))


def draw_similarity(rng: np.random.Generator, shift: float, scale: float) -> tuple[float, np.ndarray]:
    """The factor ``f = 1 + U(-scale, scale)`` and the shift ``t ~ N(0, shift^2)`` (3,) metres of a perturbation."""
    factor = 1.0 + rng.uniform(-scale, scale)
    return factor, rng.normal(0.0, shift, 3)


def perturb_body(vertices: np.ndarray, rng: np.random.Generator, *, shift: float = BODY_SHIFT,
                 scale: float = BODY_SCALE) -> np.ndarray:  # fmt: skip
    """(V, 3) metres -> (V, 3): scaled about the centroid by ``1 + U(-scale, scale)``, shifted by ``N(0, shift^2)`` per axis."""
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"perturb_body: vertices must be (V, 3), got {vertices.shape}")
    centroid = vertices.mean(axis=0)
    factor, offset = draw_similarity(rng, shift, scale)
    return (vertices - centroid) * factor + centroid + offset


def frame_body_features(prior: BodyPrior, vertices: np.ndarray, points: np.ndarray,
                        rng: np.random.Generator | None) -> torch.Tensor:  # fmt: skip
    """(N, K) float32 features of points (N, 3) world metres against one frame's posed body
    (vertices (V, 3) metres), perturbed by :func:`perturb_body` when ``rng`` is given (training).

    The obvious path (perturb the vertices, build the mesh, query it): the test oracle of
    :meth:`BodyMeshes.features`, which training uses instead (one mesh a frame, kept)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if rng is not None:
        vertices = perturb_body(vertices, rng, shift=prior.shift, scale=prior.scale)
    mesh = WarpMesh(vertices, prior.faces)
    return body_features(mesh, torch.as_tensor(np.asarray(points, dtype=np.float32)), prior.scales)


class BodyMeshes:
    """The posed bodies of a corpus's frames, each built into a :class:`WarpMesh` once and kept.

    :meth:`features` equals :func:`frame_body_features` (the same draws from ``rng``), computed on
    the kept unperturbed mesh by the similarity's inverse (see the module docstring).
    """

    def __init__(self, prior: BodyPrior) -> None:
        self.prior = prior
        self._meshes: dict[tuple, tuple[WarpMesh, np.ndarray]] = {}

    def features(self, key: tuple, vertices: np.ndarray, points: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        """(N, K) features of points (N, 3) world metres against the frame ``key``'s body (vertices (V, 3) metres,
        used only the first time the key is seen), perturbed when ``rng`` is given."""
        if key not in self._meshes:
            vertices = np.asarray(vertices, dtype=np.float64)
            self._meshes[key] = (WarpMesh(vertices, self.prior.faces), vertices.mean(axis=0))
        mesh, centroid = self._meshes[key]
        points = np.asarray(points, dtype=np.float64)
        factor, offset = 1.0, np.zeros(3)
        if rng is not None:
            factor, offset = draw_similarity(rng, self.prior.shift, self.prior.scale)
        query = (points - centroid - offset) / factor + centroid
        distance = factor * mesh.signed_distance(torch.from_numpy(query))
        return squash(distance, self.prior.scales)
