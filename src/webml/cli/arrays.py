"""Reading ``webml run --input NAME=FILE`` arrays from .npy and .npz files given by strangers.

Nothing is allocated on a file's word: the .npy header is parsed first (no
pickles), the data size it declares must be what the file (or the .npz
member) holds, and its dtype and shape must be what the model expects;
only then are the bytes read.  The rule for an .npz file, as ``--help``
says: ``NAME=FILE.npz:KEY`` takes the array KEY; ``NAME=FILE.npz`` takes
the array called NAME in it, else its only array.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
from typing import IO

import numpy as np

from ..files import RefusedFileError, open_regular_file
from . import CliError

__all__ = ["INPUT_HELP", "Shape", "read_input_array", "split_source"]

INPUT_HELP = (
    "an input (repeatable): NAME=FILE.npy, NAME=FILE.npz (the array called NAME in it, else its only array) "
    "or NAME=FILE.npz:KEY (its array KEY)"
)

_LISTED_KEYS = 10  # the most .npz keys named in a message

# What zipfile raises on a corrupt, truncated, encrypted or oddly compressed archive.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


def split_source(value: str) -> tuple[str, str | None]:
    """``"d.npz:key"`` -> ``("d.npz", "key")``; any other value is a path with no key."""
    path, sep, key = value.rpartition(":")
    if sep and key and path.lower().endswith(".npz"):
        return path, key
    return value, None


#: An expected shape: a size, or a dynamic dimension (its name, or None) that any size fits;
#: None for an input of unknown rank.
Shape = tuple[int | str | None, ...] | None


def read_input_array(name: str, value: str, dtype: np.dtype, shape: Shape) -> np.ndarray:
    """The array for input ``name`` from ``value`` (see the module's notes), of exactly ``dtype`` and ``shape``.

    Everything wrong is a :class:`CliError` naming the input and the file.
    """
    path, key = split_source(value)
    try:
        f = open_regular_file(path)
    except FileNotFoundError:
        raise CliError(f"input {name!r}: no such file {path!r}") from None
    except RefusedFileError as exc:
        raise CliError(f"input {name!r}: {exc}") from None
    with f:
        if f.read(4) == b"PK\x03\x04":  # a zip archive: an .npz
            f.seek(0)
            return _read_npz(name, path, key, f, np.dtype(dtype), shape)
        if key is not None:
            raise CliError(f"input {name!r}: {path!r} is not an .npz archive, so it has no key {key!r}")
        f.seek(0, 2)
        size = f.tell()
        if size == 0:
            raise CliError(f"input {name!r}: {path!r} is empty")
        f.seek(0)
        return _read_npy(name, repr(path), f, size, np.dtype(dtype), shape)


def _read_npz(name: str, path: str, key: str | None, f: IO[bytes], dtype: np.dtype, shape: Shape):
    try:
        with zipfile.ZipFile(f) as archive:
            members = {i.filename[:-4]: i for i in archive.infolist() if i.filename.endswith(".npy")}
            if key is not None:
                chosen = key
            elif name in members or len(members) != 1:
                chosen = name
            else:
                (chosen,) = members
            if chosen not in members:
                keys = sorted(members)
                listed = ", ".join(map(repr, keys[:_LISTED_KEYS])) + (", ..." if len(keys) > _LISTED_KEYS else "")
                raise CliError(
                    f"input {name!r}: the archive {path!r} has no array {chosen!r} (its arrays: {listed or 'none'}); "
                    f"name one with {name}={path}:KEY"
                )
            info = members[chosen]
            with archive.open(info) as member:
                return _read_npy(name, f"{path!r}:{chosen}", member, info.file_size, dtype, shape)
    except CliError:
        raise
    except _ZIP_ERRORS as exc:
        raise CliError(f"input {name!r}: {path!r} is not a readable .npz archive ({exc})") from None


def _read_npy(name: str, where: str, f: IO[bytes], size: int, dtype: np.dtype, shape: Shape) -> np.ndarray:
    """Read the .npy of ``size`` bytes from ``f`` (at its start); ``where`` names it in messages."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            file_shape, fortran, file_dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            file_shape, fortran, file_dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        # numpy parses the header dict with tokenize and ast: a garbled one fails with any of these
        raise CliError(f"input {name!r}: {where} is not a readable .npy file ({exc})") from None
    if file_dtype.hasobject or file_dtype.fields is not None or file_dtype.subdtype is not None:
        raise CliError(f"input {name!r}: {where} holds a {file_dtype} array, not one of numbers")
    if any(d < 0 for d in file_shape):
        raise CliError(f"input {name!r}: {where} declares an impossible shape {list(file_shape)}")
    declared = math.prod(file_shape) * file_dtype.itemsize
    held = size - f.tell()
    if declared != held:
        raise CliError(
            f"input {name!r}: {where} is truncated or corrupt: its header declares a {file_dtype} array of shape "
            f"{list(file_shape)} ({declared:,} bytes of data), the file holds {held:,}"
        )
    native = file_dtype.newbyteorder("=")
    if native != dtype:
        raise CliError(f"input {name!r} has dtype {file_dtype}, the model expects {dtype}")
    if not _fits(file_shape, shape):
        expected = "[" + ", ".join(str(d) if d is not None else "?" for d in shape) + "]" if shape is not None else ""
        raise CliError(f"input {name!r} has shape {list(file_shape)}, the model expects {expected}")
    data = bytearray(declared)  # as many bytes as the file holds and the model takes: safe to allocate
    view = memoryview(data)
    done = 0
    try:
        while done < declared:
            n = f.readinto(view[done:])
            if not n:
                break
            done += n
    except _ZIP_ERRORS as exc:
        raise CliError(f"input {name!r}: {where} cannot be read ({exc})") from None
    if done != declared:
        raise CliError(f"input {name!r}: {where} is truncated ({done:,} of {declared:,} bytes of data)")
    array = np.frombuffer(data, file_dtype).reshape(file_shape, order="F" if fortran else "C")
    return array if file_dtype == dtype else array.astype(dtype)


def _fits(shape: tuple[int, ...], expected: Shape) -> bool:
    """Whether an array of ``shape`` fits ``expected`` (a dynamic dimension takes any size)."""
    if expected is None:
        return True
    return len(shape) == len(expected) and all(not isinstance(e, int) or e == s for s, e in zip(shape, expected))
