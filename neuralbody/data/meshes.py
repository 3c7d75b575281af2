"""Triangle meshes stored as ``.npz`` (``vertices`` (V, 3) floats, ``faces`` (F, 3) ints): read, checked.

Ground-truth meshes of synthetic captures (``gt_meshes/<n>.npz``) and any folder of posed
meshes use this format; no pickles are loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from neuralbody.io.errors import InputError, one_line

MESH_FIX = "write it with np.savez(path, vertices=(V, 3) floats in metres, faces=(F, 3) vertex indices)"


def read_mesh_npz(path: str | Path, *, fix: str = MESH_FIX) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64 metres, faces (F, 3) int64) of a mesh ``.npz``, checked.

    Args:
        path: the file.
        fix: what the user should do when it is missing or damaged (ends the one-line error).

    Raises:
        InputError: naming the file, when it is missing, unreadable, of other shapes or types,
            holds NaN / inf vertices or face indices outside the vertices.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            vertices, faces = np.asarray(archive["vertices"]), np.asarray(archive["faces"])
    except FileNotFoundError:
        raise InputError(path, "not found", fix) from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"not a readable mesh ({one_line(error)})", fix) from None
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError(path, f"vertices {vertices.shape} and faces {faces.shape} must be (V, 3) and (F > 0, 3)", fix)
    if vertices.dtype.kind != "f" or faces.dtype.kind not in "iu":
        raise InputError(path, f"vertices must be floats and faces integers, got {vertices.dtype}, {faces.dtype}", fix)
    if not np.isfinite(vertices).all():
        raise InputError(path, "vertices contain NaN or inf", fix)
    if int(faces.min()) < 0 or int(faces.max()) >= len(vertices):
        raise InputError(path, f"face indices span [{int(faces.min())}, {int(faces.max())}], outside the "
                         f"{len(vertices)} vertices", fix)  # fmt: skip
    return vertices.astype(np.float64), faces.astype(np.int64)
