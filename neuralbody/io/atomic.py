"""Atomic file writes: a reader sees the old file or the new one, never a part of either.

Every write goes to a temporary file beside the target (same folder, so same file system),
is flushed and fsynced, and is then moved over the target with ``os.replace`` (atomic on
POSIX and Windows). A writer killed before the rename leaves the target untouched and a
temporary named ``<target name>.<random>.tmp`` (``<target stem>.<random>.tmp<suffix>`` where
the writer needs the suffix), which :func:`remove_stale_temporaries` clears later.

:func:`atomic_path` is the one mechanism; the other functions are conveniences over it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it replaces ``path`` atomically.

    Args:
        path: the target file. Its folder is created if missing.
        keep_suffix: end the temporary name with the target's suffix (for writers that pick
            the format from it, e.g. ``np.savez`` or PIL's ``save``).

    On an exception the temporary file is removed and the target is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = TMP_MARK + (path.suffix if keep_suffix else "")
    stem = path.stem if keep_suffix else path.name
    handle, name = tempfile.mkstemp(prefix=stem + ".", suffix=suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as file:  # the writer may have closed its own handle: sync what it wrote
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: str | os.PathLike, target_name: str | None = None) -> list[Path]:
    """Delete temporaries that killed atomic writes left in ``folder`` (not recursive).

    Args:
        folder: where the targets live.
        target_name: only the temporaries of this target file name (else all of them).

    Returns:
        The removed paths. Call it only when no other process writes to ``folder``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for candidate in folder.iterdir():
        name = candidate.name
        if TMP_MARK not in name or not candidate.is_file():
            continue
        if target_name is not None:
            stem = Path(target_name).stem
            if not (name.startswith(target_name + ".") or name.startswith(stem + ".")):
                continue
        head, _, tail = name.rpartition(TMP_MARK)
        if "." not in head or (tail and not tail.startswith(".")):  # <name>.<random>.tmp[.suffix] only
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed
