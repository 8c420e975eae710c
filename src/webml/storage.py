"""Where constants live: one copy, shareable with a backend without another copy.

``MLGraphBuilder.constant()`` must copy the caller's buffer (the spec's
copy-on-constant).  Large constants are copied straight into files of a
private directory in shared memory (``/dev/shm``) and mapped read-only, so
that a backend that loads weights from files (ONNX Runtime's external data)
maps the very same pages instead of copying them again.  Once the graph is
built the files are unlinked: the mappings stay valid and nothing is left
on the file system.  The builder then drops its arrays, and so does the
graph unless it keeps its constants (``keep_constants``): the mappings go
with the last array, and the pages live as long as the backend maps them
(ONNX Runtime unmaps each weight it packed).  Small constants, and every
constant where no shared memory file system exists, are ordinary NumPy arrays.

A backend that keeps every original mapped after packing copies of its own
(OpenVINO) asks for files on a disk file system instead (``on_disk``): there
the pages it no longer reads are page cache that it can drop from its
resident memory (``MADV_DONTNEED``) and that the system reclaims, where
shared-memory pages would stay resident as long as they are mapped.

A protected graph (:mod:`webml.protected`) keeps its constants in anonymous
memory only (``in_memory``): no file of any file system, shared memory
included, ever holds a plaintext weight.

A model file that ``webml.onnx.load`` reads is mapped privately
(:class:`FileMapping`), and the large weights are arrays over that mapping.
They are already one copy that nobody writes, so they become constants in
place rather than being copied again (the spec's copy-on-``constant()``
protects a caller's buffer; this memory is webml's own).  Once the backend
has built the graph, their pages leave resident memory, as the files'
above do: an engine that reads them maps them back from the page cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import mmap
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "SHARED_THRESHOLD",
    "ConstantStore",
    "FileMapping",
    "anonymous_memory",
    "disk_directory",
    "drop_resident_pages",
    "file_location",
    "lies_in",
    "map_file",
    "return_freed_memory",
]

#: Constants of at least this many bytes go to shared-memory files.  Low enough that a model of
#: many medium weights (EfficientNet-Lite0: most under 1 MiB) has them in files, whose pages an
#: engine maps and lets go of after packing; a file costs a few system calls and under a page.
SHARED_THRESHOLD = 1 << 16

_SHM = Path("/dev/shm")
_PREFIX = "webml-"


def _remove_stale_dirs(root: Path) -> None:
    """Remove directories left by webml processes that no longer run (a crash)."""
    with contextlib.suppress(OSError):
        for entry in root.glob(f"{_PREFIX}*"):
            try:
                pid = int(entry.name[len(_PREFIX) :].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(entry, ignore_errors=True)


def _filesystem_type(path: str) -> str | None:
    """The type of the file system that holds ``path`` (``/proc/self/mountinfo``), or None."""
    best, kind = "", None
    with contextlib.suppress(OSError):
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if "-" not in fields:
                    continue
                mount_point = fields[4]
                inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, kind = mount_point, fields[fields.index("-") + 1]
    return kind


@functools.cache
def disk_directory() -> Path | None:
    """A writable temporary directory on a disk file system (not tmpfs or ramfs), or None."""
    for candidate in (tempfile.gettempdir(), "/var/tmp"):
        path = os.path.realpath(candidate)
        if os.path.isdir(path) and os.access(path, os.W_OK) and _filesystem_type(path) not in (None, "tmpfs", "ramfs"):
            return Path(path)
    return None


class FileMapping(mmap.mmap):
    """A private mapping of a whole file that nobody writes (its pages are the file's page cache).

    Writable in name only: OpenVINO takes only writable memory as a constant without copying it,
    and never writes one, so only the openvino backend makes writable views of it; every other
    array over it is read-only.  Since no page is ever written, dropping its pages
    (``MADV_DONTNEED``) loses nothing: they are read back from the file.

    ``location``: a path that opens the same file for as long as the mapping lives, or None (see
    :func:`map_file`).
    """

    location: str | None = None


_OWN_FDS = Path("/proc/self/fd")


def map_file(fd: int, *, locatable: bool = False) -> FileMapping:
    """A :class:`FileMapping` of the whole open file ``fd`` (which may then be closed).

    ``locatable``: give it a ``location`` where this system can, ``/proc/self/fd/N`` of a duplicate
    of ``fd`` that it keeps open: an engine that reads a weight from the file itself (ONNX Runtime maps
    external data, no copy) then reads this very file, even once another is renamed over its path."""
    mapping = FileMapping(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    if locatable and _OWN_FDS.is_dir():
        kept = os.dup(fd)
        weakref.finalize(mapping, os.close, kept)
        mapping.location = str(_OWN_FDS / str(kept))
    return mapping


def file_location(array: np.ndarray, checked: dict[int, bool] | None = None) -> tuple[str, int] | None:
    """Where ``array``'s bytes lie in a file: a path and an offset, for an array that is C-contiguous and
    lies in a :class:`FileMapping` with a ``location`` whose file still has its name; else None.

    ONNX Runtime resolves the ``/proc/self/fd`` link to the file's name and refuses one that no longer
    exists (another file renamed over it): then the array is handed over as it is.  ``checked``: the
    answers for mappings already checked (by id), for the many weights of one file at one time
    (resolving the link takes about 70 us)."""
    mapping = file_mapping_of(array)
    if mapping is None or mapping.location is None or not array.flags.c_contiguous or array.nbytes == 0:
        return None
    checked = {} if checked is None else checked
    if id(mapping) not in checked:
        checked[id(mapping)] = _still_named(mapping.location)
    if not checked[id(mapping)]:
        return None
    offset = array.ctypes.data - np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    return mapping.location, offset


def _still_named(location: str) -> bool:
    """Whether the file that the link ``location`` opens is the file its name opens."""
    try:
        named = os.stat(os.path.realpath(location))
        kept = os.stat(location)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (kept.st_dev, kept.st_ino)


def file_mapping_of(array: np.ndarray) -> FileMapping | None:
    """The :class:`FileMapping` that ``array``'s memory lies in, or None."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return base if isinstance(base, FileMapping) else None


class ConstantStore:
    """Copies of constants for one builder (or context).

    ``on_disk``: put the files on a disk file system (:func:`disk_directory`)
    rather than in shared memory, where one exists.  ``in_memory``: never use
    files (a protected graph's weights must not touch a file system).
    ``lender``: read-only memory that nobody changes while the graph lives
    (webml.protected's decrypted model): read-only arrays that lie in it are
    kept as they are, not copied (implies ``in_memory``).
    """

    def __init__(self, *, on_disk: bool = False, in_memory: bool = False, lender: memoryview | None = None) -> None:
        self.in_memory = in_memory or lender is not None
        self._lender = lender
        # In memory, not even the temporary folder is looked up (tempfile probes it with a file).
        self._root = (disk_directory() if on_disk and not in_memory else None) or _SHM
        self._dir: str | None = None
        self._files: list[str] = []
        self._maps: list[mmap.mmap] = []
        self._lent: dict[int, FileMapping] = {}  # the model files' mappings whose arrays are used in place
        self._count = 0
        self._finalizer: weakref.finalize | None = None

    def _directory(self) -> str | None:
        if self._dir is None:
            if not (self._root.is_dir() and os.access(self._root, os.W_OK)):
                return None
            _remove_stale_dirs(self._root)
            self._dir = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=self._root)
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        return self._dir

    def copy(self, array: np.ndarray) -> tuple[np.ndarray, str | None]:
        """A read-only copy of ``array`` (same dtype and shape), and the path of the
        file that holds it (all of it, from offset 0) or None.  Memory nobody changes
        (the lender's, a model file's :class:`FileMapping`) is used as it is, no copy."""
        if self._lender is not None and lies_in(array, self._lender):
            return array, None  # the lender's memory never changes while the graph lives: no copy
        mapping = None if array.flags.writeable else file_mapping_of(array)
        if mapping is not None:
            self._lent[id(mapping)] = mapping  # a model file's weights: already one copy, nobody writes it
            return array, None
        if array.nbytes >= SHARED_THRESHOLD and not self.in_memory:
            directory = self._directory()
            if directory is not None:
                with contextlib.suppress(OSError):  # a full file system: an ordinary array below
                    return self._copy_to_file(array, directory)
        out = np.array(array, copy=True, order="C")
        out.flags.writeable = False
        return out, None

    def _copy_to_file(self, array: np.ndarray, directory: str) -> tuple[np.ndarray, str]:
        path = os.path.join(directory, f"c{self._count}.bin")
        self._count += 1
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if array.flags.c_contiguous:
                # write() fills the file's pages as it allocates them: twice as fast as faulting
                # in zeroed pages of a mapping and copying into them.
                _write_all(fd, memoryview(array.reshape(-1).view(np.uint8)))
                mm = mmap.mmap(fd, array.nbytes, access=mmap.ACCESS_READ)
                out = np.frombuffer(mm, dtype=array.dtype).reshape(array.shape)
            else:
                os.ftruncate(fd, array.nbytes)
                mm = mmap.mmap(fd, array.nbytes)
                out = np.frombuffer(mm, dtype=array.dtype).reshape(array.shape)
                out[...] = array  # the one copy, straight into the file's pages
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)
        out.flags.writeable = False
        self._files.append(path)
        self._maps.append(mm)
        return out, path

    def release_files(self) -> None:
        """Unlink the files; arrays already made stay valid (their mappings keep the data).

        Our own page-table entries are dropped too (MADV_DONTNEED keeps a shared
        mapping's data): a backend that mapped the files holds the pages, and an
        access through our arrays maps the same pages back, so they are not
        counted twice in the process's resident memory.
        """
        drop_resident_pages([*self._maps, *self._lent.values()])
        self._maps.clear()
        self._lent.clear()
        for path in self._files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._files.clear()
        if self._dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._dir)
            if self._finalizer is not None:
                self._finalizer.detach()
            self._dir = None


def anonymous_memory(nbytes: int) -> mmap.mmap | bytearray:
    """``nbytes`` of zeroed private memory in no file, its pages allocated at once where the system can
    (``MAP_POPULATE``): one system call instead of a page fault per page when it is first written,
    which for the weights of a model is most of the time of copying them.  A ``bytearray`` elsewhere."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes == 0 or not populate:
        return bytearray(nbytes)
    try:
        return mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    except OSError:
        return bytearray(nbytes)


def lies_in(array: np.ndarray, memory: memoryview) -> bool:
    """Whether ``array`` is read-only, C-contiguous, and wholly inside ``memory``."""
    if array.flags.writeable or not array.flags.c_contiguous or array.nbytes == 0:
        return False
    start = np.frombuffer(memory, dtype=np.uint8).ctypes.data
    address = array.__array_interface__["data"][0]
    return start <= address and address + array.nbytes <= start + memory.nbytes


def drop_resident_pages(maps: list[mmap.mmap]) -> None:
    """Drop the mappings' pages from this process's resident memory (``MADV_DONTNEED``): a shared
    file mapping keeps its data in the file, and a private one nobody wrote reads it back from
    the file, so a later access maps the same data again."""
    for mm in maps:
        with contextlib.suppress(OSError, AttributeError, ValueError):  # closed, or no madvise here
            mm.madvise(mmap.MADV_DONTNEED)


def _write_all(fd: int, data: memoryview) -> None:
    done = 0
    while done < len(data):
        done += os.write(fd, data[done : done + (1 << 30)])


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Loading a model frees large temporaries (the file's bytes, decoded
    arrays) that malloc keeps for reuse once its mmap threshold has risen:
    without this they stay resident, about twice the weights, after the
    backend holds the weights.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
