"""Loading untrusted files without running code: ``.npy`` files holding pickles, and torch files.

ZJU-MoCap stores ``annots.npy`` and ``params/*.npy`` as pickled dicts (``np.save`` of a dict:
numpy's header, then a pickle stream of a 0-d object array), and ``np.load(allow_pickle=True)``
runs whatever callable the pickle names. :func:`load_npy` reads the header with numpy's
public ``np.lib.format`` helpers and unpickles object arrays with :class:`NumpyUnpickler`,
whose ``find_class`` hands out only what numpy needs to rebuild arrays, dtypes and scalars,
plus builtin containers and numbers. Anything else (``os.system``, ``builtins.eval``,
``subprocess.Popen``, ...) is refused before it can be called: the error names the file and
the refused name. Arrays of plain dtypes are read with ``allow_pickle=False``.

:func:`load_torch` reads checkpoints and weights with ``torch.load(weights_only=True)`` (tensors
and plain values only) and turns refusals and damaged files into one-line :class:`InputError`.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import io
import os
import pickle
import re
import struct
import tokenize
import types
import zipfile
from pathlib import Path

import numpy as np

from neuralbody.io.errors import InputError, one_line

NPY_FIX = "re-create it with np.save of plain arrays and dicts, or get the capture from a source you trust"
# What a pickle of numpy data may name: (module, name) -> object. Both numpy 2's ``numpy._core``
# and numpy 1's ``numpy.core`` spellings; ``__builtin__`` / ``copy_reg`` are Python 2's names.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_FROMBUFFER = np.empty(1).__reduce_ex__(5)[0]
_BUILTIN_NAMES = ("complex", "set", "frozenset", "bytearray", "bytes", "dict", "list", "tuple", "str", "int", "float",
                  "bool")  # fmt: skip


def _allowed_globals() -> types.MappingProxyType:
    allowed: dict[tuple[str, str], object] = {}
    for core in ("numpy._core", "numpy.core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _RECONSTRUCT
        allowed[(f"{core}.multiarray", "scalar")] = _SCALAR
        allowed[(f"{core}.numeric", "_frombuffer")] = _FROMBUFFER
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module in ("builtins", "__builtin__"):
        allowed.update({(module, name): getattr(builtins, name) for name in _BUILTIN_NAMES})
    allowed[("_codecs", "encode")] = codecs.encode  # bytes pickled by Python 3 at protocol <= 2
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    return types.MappingProxyType(allowed)


ALLOWED_GLOBALS = _allowed_globals()


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named something outside :data:`ALLOWED_GLOBALS` (it was not imported, nor called)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        super().__init__(f"refused to load {module}.{name}")


class NumpyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, dtypes, scalars, dicts, lists, tuples, strings and numbers only."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle's hook
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid):  # noqa: D102 - pickle's hook
        raise pickle.UnpicklingError("persistent ids are not allowed")


def safe_unpickle(data: bytes, *, encoding: str = "ASCII"):
    """Unpickle ``data`` with :class:`NumpyUnpickler` (``encoding``: for Python 2 ``str``, see :mod:`pickle`)."""
    return NumpyUnpickler(io.BytesIO(data), encoding=encoding).load()


# Errors a damaged or crafted pickle stream raises from inside ``load`` (our find_class is the only code of ours there).
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                  struct.error, MemoryError, OverflowError, RecursionError)  # fmt: skip


def _read_header(handle) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """(shape, fortran_order, dtype) of an open .npy file, or None for format versions without a public reader."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    return None


def _unpickle_array(data: bytes, path: Path) -> np.ndarray:
    try:
        try:
            value = safe_unpickle(data)
        except UnicodeDecodeError:  # pickled under Python 2: its str holds bytes
            value = safe_unpickle(data, encoding="latin1")
    except RefusedGlobal as error:
        raise InputError(
            path, f"refused to unpickle {error.module}.{error.name}: only numpy arrays, dicts, lists, strings and "
            "numbers are loaded (the file may be crafted to run code)", NPY_FIX,
        ) from None  # fmt: skip
    except _PICKLE_ERRORS as error:
        raise InputError(path, f"damaged pickle ({type(error).__name__}: {one_line(error)})", NPY_FIX) from None
    if not isinstance(value, np.ndarray):
        raise InputError(path, f"holds a pickled {type(value).__name__}, not a numpy array", NPY_FIX)
    return value


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """The array in a ``.npy`` file; object arrays (pickles) through :class:`NumpyUnpickler`.

    Raises FileNotFoundError when missing, :class:`InputError` (naming the file) when the
    file is damaged, truncated or names anything a safe load refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        with open(path, "rb") as handle:
            header = _read_header(handle)
            if header is None or not header[2].hasobject:
                handle.seek(0)
                return np.lib.format.read_array(handle, allow_pickle=False)
            shape, _, dtype = header
            data = handle.read()
    except (ValueError, EOFError, OSError, SyntaxError, struct.error, tokenize.TokenError) as error:  # a damaged header
        raise InputError(path, f"not a readable .npy file ({one_line(error)})", "re-write it with np.save") from None
    array = _unpickle_array(data, path)
    if array.shape != tuple(shape) or array.dtype != dtype:
        problem = f"the pickled array is {array.dtype} {array.shape} but the header says {dtype} {shape}"
        raise InputError(path, problem, NPY_FIX)
    return array


def load_npy_object(path: str | os.PathLike):
    """What ``np.save(path, obj)`` stored: the object of a 0-d object array (e.g. a dict), else the array."""
    array = load_npy(path)
    return array.item() if array.dtype == object and array.shape == () else array


def load_torch(path: str | os.PathLike, *, map_location=None, fix: str):
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, tuples, strings, numbers, None.

    Args:
        path: the file (a checkpoint or weights).
        map_location: as for ``torch.load``.
        fix: what the user should do when the file is refused or damaged (ends the message).

    Raises FileNotFoundError when missing; :class:`InputError` naming the file when it holds
    anything else (it may be crafted to run code, or written by an older version) or is
    damaged / truncated.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        if refused:
            problem = (f"refused to load {refused.group(1)}: a safe load reads only tensors and plain values "
                       "(the file may be crafted to run code, or written by an older version)")  # fmt: skip
            raise InputError(path, problem, fix) from None
        raise InputError(path, "damaged: not a torch file this version can read", fix) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError, TypeError,
            AttributeError, MemoryError, OverflowError) as error:  # what the unpickler trips on in random bytes
        detail = one_line(error).split(". ")[0] or type(error).__name__
        raise InputError(path, f"damaged or truncated ({detail})", fix) from None
