"""Opening files from strangers: only regular files, of a bounded size, without ever blocking.

A FIFO, a socket or a device named like a data file would make a plain
``open`` block forever or read without end; a folder would fail later with
an unhelpful error.  :func:`open_regular_file` refuses them by ``stat``
before opening, opens without blocking and checks again on the open file
(the path may have been swapped in between), and bounds the size.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

__all__ = ["RefusedFileError", "open_regular_file"]


class RefusedFileError(ValueError):
    """A file that is not read; ``path`` and ``reason`` (``"is a named pipe (FIFO)"``, ...) say which and why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path!r} {reason}")


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _check(path: str, st: os.stat_result, max_bytes: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise RefusedFileError(path, f"is not a regular file: it is {_kind(st.st_mode)}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise RefusedFileError(path, f"is too large ({st.st_size:,} bytes; at most {max_bytes:,} are read)")


def open_regular_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file of at most ``max_bytes`` bytes.

    Raises ``FileNotFoundError`` if there is no such file, :class:`RefusedFileError`
    for anything else that stops it being read (its ``reason`` says what).
    """
    name = os.fspath(path)
    try:
        _check(name, os.stat(name), max_bytes)
        # Without O_NONBLOCK, opening a FIFO swapped in after the stat would wait for a writer.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RefusedFileError(name, f"cannot be read ({exc.strerror or exc})") from None
    try:
        _check(name, os.fstat(fd), max_bytes)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
