"""Normal-guided surface refinement: move a coarse mesh so that its geometry carries target normals.

gDNA's detail network gives a normal at each canonical point, which the coarse surface wears
as a normal map: the geometry stays the coarse network's. Here the normals are integrated into
geometry by one sparse linear least-squares solve, after Nehab et al., *Efficiently combining
positions and normals for precise 3D geometry* (SIGGRAPH 2005): every edge perpendicular to the
target normals, plus a position term.

Given the coarse mesh (vertices ``v_i``, faces) and unit target normals ``n_i`` at its vertices,
every mesh edge ``(i, j)`` of the refined mesh ``v'`` should be perpendicular to the mean target
normal of its two ends, ``nbar_ij = (n_i + n_j) / 2``::

    r_ij(v') = (v'_j - v'_i) . nbar_ij

(Nehab asks ``(v'_j - v'_i) . n_k = 0`` at each end ``k`` separately. On a curved surface a chord is
never perpendicular to the normal at one end, ``(v_j - v_i) . n_i ~ |e|^2 kappa / 2``, and those
residuals shrink every convex surface: millimetres on an arm at this module's settings. Against
the mean normal of its ends a chord of a sphere is exactly perpendicular, ``(v_j - v_i) . (v_i + v_j)
= |v_j|^2 - |v_i|^2 = 0`` about its centre, and on any smooth surface the error is of third order in
``|e|``: the trapezoid rule of integrating the normals along the edge.) The refined vertices
minimise::

    E(v') = sum_(i,j) r_ij(v')^2  +  (h / l)^2 sum_i |v'_i - v_i|^2

with ``h`` the mesh's mean edge length and ``l`` the screening length (metres). Two motions
(:class:`RefineOptions`):

* ``"free"`` (Nehab's): each vertex moves in 3-D, ``3V`` unknowns; the normal equations
  ``(A^T A + w I) x = w v``, ``w = (h/l)^2``, ``A`` the ``E x 3V`` matrix of the residuals;
* ``"normal"``: each vertex moves only along the coarse surface's own unit area-weighted vertex
  normal ``m_i`` (:func:`neuralbody.geometry.normals.vertex_normals`), ``v'_i = v_i + d_i m_i``, one
  scalar a vertex (a displacement map), ``r_ij = e . nbar + d_j (m_j . nbar) - d_i (m_i . nbar)``; normal
  equations ``(A^T A + w I) d = -A^T b``, ``A`` ``E x V``.

In the continuum the first term is ``~ h^2 |grad d - g|^2`` per vertex, ``g`` the slope the normals
ask for, so the minimiser solves the screened Poisson equation ``laplace d - c d / l^2 = div g`` (``c``
of order one, set by the mesh's valence): the normals are integrated over about ``l`` before the
position term pulls the surface back. ``l`` does not depend on the mesh resolution or the units;
``l -> 0`` leaves the mesh unchanged, ``l -> infinity`` integrates the normals freely (with the
least motion that does). Bumps of the coarse surface that the target normals do not have are
flattened; a surface given normals it already agrees with (a sphere's radial ones) stays where
it is, exactly.

A target normal more than 90 degrees from the coarse normal ``m_i`` (``m_i . n_i <= 0``: the network
and the surface disagree about which side is out) is replaced by ``m_i``.

Both systems are symmetric positive definite and solved by a sparse LU
(:func:`scipy.sparse.linalg.spsolve`): about a second for 20 000 vertices on one thread ("free").
:func:`refine_along_normals_reference` builds the same energy row by row as a dense
least-squares problem (the test oracle); :func:`refine_normal_mesh` applies the refinement to a
:class:`~neuralbody.gdna.meshing.NormalMesh` (a generated or fitted person's canonical surface with
the detail network's normals). A posed person is refined in canonical space and then posed
(:func:`neuralbody.gdna.meshing.pose_mesh`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from neuralbody.gdna.meshing import NormalMesh
from neuralbody.geometry.normals import vertex_normals


MOTIONS = ("free", "normal")


@dataclasses.dataclass(frozen=True)
class RefineOptions:
    """How far the normals reach and how the vertices may move.

    Attributes:
        screening_length: ``l`` of the module docstring, metres (> 0).
        motion: "free" (3-D, Nehab's) or "normal" (along the coarse vertex normal only).
    """

    screening_length: float = 0.05
    motion: str = "free"

    def __post_init__(self) -> None:
        if not self.screening_length > 0:
            raise ValueError(f"RefineOptions: screening_length must be positive metres, got {self.screening_length}")
        if self.motion not in MOTIONS:
            raise ValueError(f"RefineOptions: motion must be one of {MOTIONS}, got {self.motion!r}")


@dataclasses.dataclass
class RefinedSurface:
    """A refined mesh.

    Attributes:
        vertices: (V, 3) refined vertices ``v'``, metres (the faces are the coarse mesh's).
        displacement: (V, 3) ``v' - v``, metres.
        coarse_normals: (V, 3) the coarse mesh's unit vertex normals ``m``.
        kept: (V,) bool, whether the vertex's target normal was used (False: replaced by ``m``).
    """

    vertices: np.ndarray
    displacement: np.ndarray
    coarse_normals: np.ndarray
    kept: np.ndarray


def _check(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not len(vertices):
        raise ValueError(f"refine_along_normals: vertices must be non-empty (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not len(faces):
        raise ValueError(f"refine_along_normals: faces must be non-empty (F, 3), got {faces.shape}")
    if normals.shape != vertices.shape:
        raise ValueError(f"refine_along_normals: target normals must be (V, 3) like the vertices {vertices.shape}, "
                         f"got {normals.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"refine_along_normals: face indices must lie in [0, {len(vertices)}), got "
                         f"[{faces.min()}, {faces.max()}]")


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) the unique undirected edges ``(i, j)``, ``i < j``, of faces (F, 3)."""
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    return np.unique(np.sort(pairs, axis=1), axis=0)


def _prepared(vertices, faces, target_normals):
    """Checked float64 arrays: vertices, faces, coarse normals m, used target normals n, kept, edges, mean edge h."""
    v = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    n = np.asarray(target_normals, dtype=np.float64)
    _check(v, faces, n)
    m = vertex_normals(torch.from_numpy(v), torch.from_numpy(faces)).numpy()
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    kept = (m * n).sum(axis=1) > 0.0
    n = np.where(kept[:, None], n, m)
    edges = mesh_edges(faces)
    h = float(np.linalg.norm(v[edges[:, 1]] - v[edges[:, 0]], axis=1).mean())
    return v, faces, m, n, kept, edges, h


def refine_along_normals(vertices: np.ndarray, faces: np.ndarray, target_normals: np.ndarray,
                         options: RefineOptions = RefineOptions()) -> RefinedSurface:
    """The mesh whose geometry carries the target normals (module docstring), by a sparse solve.

    Args:
        vertices: (V, 3) coarse vertices, metres.
        faces: (F, 3) int vertex indices, counter-clockwise seen from outside (the coarse normals point out).
        target_normals: (V, 3) target normals at the vertices, pointing out (normalised here).
        options: the screening length.
    """
    v, faces, m, n, kept, edges, h = _prepared(vertices, faces, target_normals)
    i, j = edges[:, 0], edges[:, 1]
    mean = 0.5 * (n[i] + n[j])
    weight = (h / options.screening_length) ** 2
    if options.motion == "free":
        rows = np.tile(np.arange(len(edges)), 6)
        cols = np.concatenate([3 * j + c for c in range(3)] + [3 * i + c for c in range(3)])
        values = np.concatenate([mean[:, c] for c in range(3)] + [-mean[:, c] for c in range(3)])
        a = scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(edges), 3 * len(v)))
        rhs = weight * v.ravel()
    else:
        rows = np.tile(np.arange(len(edges)), 2)
        values = np.concatenate([(m[j] * mean).sum(axis=1), -(m[i] * mean).sum(axis=1)])
        a = scipy.sparse.csr_matrix((values, (rows, np.concatenate([j, i]))), shape=(len(edges), len(v)))
        rhs = -(a.T @ ((v[j] - v[i]) * mean).sum(axis=1))
    system = (a.T @ a + weight * scipy.sparse.identity(a.shape[1], format="csr")).tocsc()
    x = np.asarray(scipy.sparse.linalg.spsolve(system, rhs), dtype=np.float64)
    refined = x.reshape(-1, 3) if options.motion == "free" else v + x[:, None] * m
    return RefinedSurface(refined, refined - v, m, kept)


def refine_along_normals_reference(vertices: np.ndarray, faces: np.ndarray, target_normals: np.ndarray,
                                   options: RefineOptions = RefineOptions()) -> RefinedSurface:
    """:func:`refine_along_normals` as a dense least-squares problem written residual by residual (test oracle)."""
    v, faces, m, n, kept, edges, h = _prepared(vertices, faces, target_normals)
    free = options.motion == "free"
    width = 3 if free else 1
    rows, rhs = [], []
    for i, j in edges:
        mean = 0.5 * (n[i] + n[j])
        row = np.zeros((len(v), width))
        row[j] += mean if free else m[j] @ mean
        row[i] -= mean if free else m[i] @ mean
        rows.append(row.ravel())
        rhs.append(0.0 if free else -((v[j] - v[i]) @ mean))
    weight = h / options.screening_length
    for i in range(len(v)):
        for c in range(width):
            row = np.zeros((len(v), width))
            row[i, c] = weight
            rows.append(row.ravel())
            rhs.append(weight * v[i, c] if free else 0.0)
    x = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    refined = x.reshape(-1, 3) if free else v + x[:, None] * m
    return RefinedSurface(refined, refined - v, m, kept)


def refine_normal_mesh(mesh: NormalMesh, options: RefineOptions = RefineOptions()) -> NormalMesh:
    """A canonical mesh whose geometry carries the normals it wears (:func:`refine_along_normals`).

    The faces, the worn normals (the detail network's, evaluated at the coarse vertices) and the colours stay;
    only the vertices move.
    """
    refined = refine_along_normals(mesh.vertices, mesh.faces, mesh.normals, options)
    return NormalMesh(refined.vertices, mesh.faces, mesh.normals, mesh.colours)
