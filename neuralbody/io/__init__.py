"""neuralbody.io: the lowest layer of file handling (atomic writes; safe loading of untrusted files; input
errors) and of terminal output (:mod:`neuralbody.io.progress`: the progress bars and the switch that hides them)."""

from neuralbody.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, remove_stale_temporaries
from neuralbody.io.errors import InputError, Problem, one_line
from neuralbody.io.paths import contained_relpath, require_file_path, require_folder_path
from neuralbody.io.safe_load import load_npy, load_npy_object, load_torch

__all__ = [
    "InputError",
    "Problem",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "contained_relpath",
    "load_npy",
    "load_npy_object",
    "load_torch",
    "one_line",
    "remove_stale_temporaries",
    "require_file_path",
    "require_folder_path",
]
