"""neuralbody.io: the lowest layer of file handling (atomic writes; safe loading of untrusted files)."""

from neuralbody.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, remove_stale_temporaries

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "remove_stale_temporaries"]
