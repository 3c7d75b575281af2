"""Path rules for untrusted data and for output arguments.

* Paths listed inside a capture's files (image paths in ``annots.npy``, ``mask_dir`` in
  ``neuralbody.json``) must stay inside the capture: relative, and not climbing out with
  ``..``. Checked lexically (what the file says), so a capture may still hold symbolic links
  its owner made, e.g. to image folders on another disk.
* Output arguments are checked before any work: a folder argument must not name an existing
  file, a file argument must not name an existing folder.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from neuralbody.io.errors import InputError


def contained_relpath(relpath: str) -> str | None:
    """``relpath`` normalised (``/`` separators) when it stays inside the folder it is relative to, else None.

    Refused: empty paths, absolute paths (``/x``, ``\\x``, ``C:x``, ``//server/x``) and paths whose
    ``..`` parts climb above the folder (``../x``, ``a/../../x``).
    """
    text = str(relpath).replace("\\", "/")
    if not text or text.startswith("/") or (len(text) >= 2 and text[1] == ":"):
        return None
    normal = posixpath.normpath(text)
    if normal in (".", "..") or normal.startswith("../"):
        return None
    return normal


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (folders cannot be made below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def require_folder_path(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path; InputError when it, or a folder it needs, is an existing file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        fix = "choose a folder path (created when missing)"
        raise InputError(f"{flag} {path}", "is an existing file, not a folder", fix)
    blocker = _file_above(path)
    if blocker is not None:
        raise InputError(f"{flag} {path}", f"{blocker} is a file, not a folder", "choose another path")
    return path


def require_file_path(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path; InputError when it is an existing folder, or a folder it needs is a file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path}", "is an existing folder, not a file", "give a file name")
    blocker = _file_above(path)
    if blocker is not None:
        raise InputError(f"{flag} {path}", f"{blocker} is a file, not a folder", "choose another path")
    return path
