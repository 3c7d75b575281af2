"""neuralbody.io: the lowest layer of file handling (atomic writes; safe loading of untrusted files)
and of terminal output (:mod:`neuralbody.io.progress`: the progress bars and the switch that hides them)."""

from neuralbody.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, remove_stale_temporaries

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "remove_stale_temporaries"]
