"""Read PyTorch checkpoints (state dicts of tensors) without PyTorch, and without unpickling.

Two formats are read:

* the legacy one (``torch.save`` before 1.6, or with
  ``_use_new_zipfile_serialization=False``): five pickles back to back -- a
  magic number, the protocol version, system information, the object itself
  (tensors refer to their storages by *persistent id*), and the list of
  storage keys -- followed by each storage's bytes, in the order of that key
  list, as ``[int64 element count][raw little-endian elements]``;
* the zip one (1.6 and later): ``<archive>/data.pkl`` holds the object and
  ``<archive>/data/<key>`` the raw bytes of each storage.

Unpickling runs code named by the file, so the pickles are not given to
:mod:`pickle`: a small interpreter here runs only the opcodes that build plain
data (numbers, strings, tuples, lists, dicts), resolves only the names a state
dict needs (``collections.OrderedDict``, the tensor rebuild functions and the
storage classes) and refuses every other one.  Tensors come back as NumPy
arrays (a copy, C-contiguous, of the tensor's view of its storage: offset,
shape and strides are honoured).

Files from strangers are hostile, so every size is checked against the file
before anything is allocated:

* a storage's declared element count times its item size must equal the size
  of its bytes in the file (its zip record, read from the zip directory, or
  its legacy ``[count][elements]`` block), which must lie inside the file;
* a tensor's extent (offset plus the largest index its sizes and strides
  reach) must lie inside its storage; negative strides are refused (torch has
  none), zero strides (torch's ``expand``) are allowed;
* everything the reader allocates -- decompressed zip members, the objects a
  pickle builds, the arrays it returns -- is charged against one budget of
  :data:`MAX_EXPANSION` times the file's size plus :data:`EXPANSION_SLACK`.
  This is what bounds a zero-stride tensor that would expand a small storage
  into a huge array, a zip bomb, and a zip whose members overlap;
* zip members must be stored or deflated, unencrypted, lie inside the
  archive and claim no more than deflate's largest ratio;
* containers may nest at most :data:`MAX_DEPTH` deep.

Every refusal is a :class:`CheckpointError` naming the tensor, storage or record.
"""

from __future__ import annotations

import collections
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from ..files import RefusedFileError, open_regular_file
from .data_pickle import PickleDataError, check_depth, run_pickle
from .data_pickle import show as _show

__all__ = ["EXPANSION_SLACK", "MAX_DEPTH", "MAX_EXPANSION", "CheckpointError", "load_state_dict"]

#: The magic number that opens a legacy checkpoint.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: The only legacy protocol version there is.
LEGACY_PROTOCOL = 1001

#: What a checkpoint may make the reader allocate, as a multiple of the file's size (plus the slack below).
#: A state dict costs about twice its file (the storages' bytes, then the arrays copied out of them); the
#: rest leaves room for tied weights and small expanded (zero-stride) buffers.
MAX_EXPANSION = 8
#: Bytes allowed on top of ``MAX_EXPANSION`` times the file's size, so that tiny files still load.
EXPANSION_SLACK = 16 << 20
#: How deep containers may nest in a checkpoint (a state dict needs 2, a training checkpoint about 6).
MAX_DEPTH = 100
#: The most dimensions a tensor may have (NumPy's limit).
MAX_NDIM = 64
#: Memory one byte of pickle can make the interpreter hold at most (an empty dict from one opcode byte,
#: with its slot on the stack, is about 90 bytes).
PICKLE_BYTE_COST = 128
#: Deflate cannot compress better than about 1032:1; a member claiming more is forged.
MAX_DEFLATE_RATIO = 1032

_INT64_LIMIT = 1 << 63

#: torch storage class name -> NumPy element type (little-endian).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(PickleDataError):
    """The file is not a PyTorch checkpoint this reader understands."""


class _Budget:
    """The bytes a checkpoint may still make the reader allocate (see the module docstring)."""

    def __init__(self, file_size: int) -> None:
        self.file_size = file_size
        self.left = MAX_EXPANSION * file_size + EXPANSION_SLACK

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise CheckpointError(
                f"{what} would take {nbytes} bytes, more than a {self.file_size}-byte checkpoint may yield "
                f"({MAX_EXPANSION} times its size plus {EXPANSION_SLACK >> 20} MiB in all)"
            )
        self.left -= nbytes


def _int64(value: Any, what: str, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value < _INT64_LIMIT:
        raise CheckpointError(f"{what} is {_show(value)}, not an integer in [{minimum}, 2**63)")
    return value


def _key(value: Any, what: str) -> str:
    if type(value) not in (str, int):
        raise CheckpointError(f"{what} is {_show(value)}, not a string")
    return str(value)


@dataclass(frozen=True)
class _StorageType:
    """Stands for ``torch.<name>Storage`` while unpickling."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    """A storage named by a persistent id; its bytes are filled in later (legacy) or at once (zip)."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _PendingTensor:
    """A tensor whose storage may not have been read yet."""

    storage: _Storage
    offset: Any
    shape: tuple[Any, ...]
    strides: tuple[Any, ...]

    def materialize(self, name: str, budget: _Budget) -> np.ndarray:
        what = f"tensor {name}"
        storage = self.storage
        shape, strides = self.shape, self.strides
        if len(shape) != len(strides):
            raise CheckpointError(f"{what} has {len(shape)} sizes but {len(strides)} strides")
        if len(shape) > MAX_NDIM:
            raise CheckpointError(f"{what} has {len(shape)} dimensions, more than {MAX_NDIM}")
        offset = _int64(self.offset, f"the storage offset of {what}")
        for n in shape:
            _int64(n, f"a size of {what}")
        for s in strides:
            if type(s) is int and s < 0:
                raise CheckpointError(f"{what} has negative strides {list(strides)} (torch has none)")
            _int64(s, f"a stride of {what}")
        numel = 1
        for n in shape:
            numel *= max(n, 1)
        nbytes = numel * storage.dtype.itemsize
        if nbytes >= _INT64_LIMIT:
            raise CheckpointError(f"{what} of shape {list(shape)} has more than 2**63 bytes")
        if 0 in shape:
            return np.zeros(shape, storage.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides))
        if last >= storage.numel:
            raise CheckpointError(
                f"{what} of shape {list(shape)}, strides {list(strides)} at offset {offset} overruns "
                f"its storage {storage.key!r} of {storage.numel} elements"
            )
        data = storage.data
        if data is None:
            raise CheckpointError(f"the bytes of storage {storage.key!r} (of {what}) are missing")
        budget.charge(nbytes, what)
        dense = 1
        contiguous = True
        for n, s in zip(reversed(shape), reversed(strides)):
            if n != 1 and s != dense:
                contiguous = False
                break
            dense *= n
        if contiguous:
            return data[offset : offset + numel].reshape(shape).copy()
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[offset:],
            shape=shape,
            strides=tuple(s * item if n > 1 else 0 for n, s in zip(shape, strides)),
            writeable=False,
        )
        return np.array(view, order="C", copy=True)


def _rebuild_tensor(*args: Any) -> _PendingTensor:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``."""
    if len(args) not in (6, 7):
        raise CheckpointError(f"_rebuild_tensor_v2 takes 6 or 7 arguments, the checkpoint gives {len(args)}")
    return _rebuild_tensor_v1(*args[:4])


def _rebuild_tensor_v1(*args: Any) -> _PendingTensor:
    """``torch._utils._rebuild_tensor(storage, offset, size, stride)``."""
    if len(args) != 4:
        raise CheckpointError(f"_rebuild_tensor takes 4 arguments, the checkpoint gives {len(args)}")
    storage, offset, shape, strides = args
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor is rebuilt from something that is not a storage")
    if type(shape) is not tuple or type(strides) is not tuple:
        raise CheckpointError(f"a tensor on storage {storage.key!r} has sizes or strides that are not tuples")
    return _PendingTensor(storage, offset, shape, strides)


def _rebuild_parameter(*args: Any) -> Any:
    """``torch._utils._rebuild_parameter(data, requires_grad, hooks)``: a parameter is its data."""
    if len(args) != 3 or not isinstance(args[0], _PendingTensor):
        raise CheckpointError("_rebuild_parameter is not given a tensor and two arguments")
    return args[0]


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    """``collections.OrderedDict()``: pickles fill it with SETITEMS afterwards."""
    if args:
        raise CheckpointError("OrderedDict is called with arguments (a pickled one has none)")
    return collections.OrderedDict()


_ALLOWED_FUNCTIONS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor_v1,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
_CALLABLES = frozenset(_ALLOWED_FUNCTIONS.values())


def _find_global(module: str, name: str) -> Any:
    if (module, name) in _ALLOWED_FUNCTIONS:
        return _ALLOWED_FUNCTIONS[(module, name)]
    if module == "torch" and name in STORAGE_DTYPES:
        return _StorageType(name)
    raise CheckpointError(
        f"refusing to unpickle {_show(module)[1:-1]}.{_show(name)[1:-1]}: only tensors and state dicts are read"
    )


class _Storages:
    """The storages named by a pickle's persistent ids; ``load`` gives a new one its bytes (zip format)."""

    def __init__(self, load: Callable[[_Storage], None] | None = None) -> None:
        self.by_key: dict[str, _Storage] = {}
        self.load = load
        self.views: list[tuple[_Storage, _Storage, int]] = []

    def persistent_load(self, pid: Any) -> _Storage:
        if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
            raise CheckpointError(f"unknown persistent id ({_show(pid)})")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unknown storage type {_show(storage_type)}")
        key = _key(key, "a storage key")
        numel = _int64(numel, f"the element count of storage {key!r}")
        root = self.by_key.get(key)
        if root is None:
            root = self.by_key[key] = _Storage(key, storage_type.dtype, numel)
            if self.load is not None:
                self.load(root)
        elif root.dtype != storage_type.dtype or root.numel != numel:
            raise CheckpointError(
                f"storage {key!r} is named as {root.numel} {root.dtype} and as {numel} {storage_type.dtype}"
            )
        view_metadata = pid[5] if len(pid) > 5 else None
        if view_metadata is None:
            return root
        # A legacy view of part of a root storage: (view key, offset in elements, size).
        if type(view_metadata) is not tuple or len(view_metadata) != 3:
            raise CheckpointError(f"the view of storage {key!r} is {_show(view_metadata)}")
        view_key = _key(view_metadata[0], f"the key of a view of storage {key!r}")
        view_offset = _int64(view_metadata[1], f"the offset of view {view_key!r}")
        view_size = _int64(view_metadata[2], f"the size of view {view_key!r}")
        if view_offset + view_size > root.numel:
            raise CheckpointError(
                f"view {view_key!r} ({view_size} elements at {view_offset}) overruns storage {key!r} of {root.numel}"
            )
        view = _Storage(view_key, root.dtype, view_size)
        self.views.append((view, root, view_offset))
        return view


def _load_legacy(data: bytes, budget: _Budget) -> Any:
    end = len(data)
    pos = 0

    def next_pickle(what: str, storages: _Storages | None = None) -> Any:
        nonlocal pos

        def no_storages(_pid: Any) -> Any:
            raise CheckpointError(f"{what} names a storage")

        # Bound the pickle's length so that the objects it can build stay within the budget.
        window = min(end, pos + budget.left // PICKLE_BYTE_COST)
        obj, stop = run_pickle(
            data, pos, window, _find_global, _CALLABLES, storages.persistent_load if storages else no_storages, what
        )
        budget.charge((stop - pos) * PICKLE_BYTE_COST, what)
        pos = stop
        return obj

    magic = next_pickle("the magic number")
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint (bad magic number)")
    protocol = next_pickle("the protocol version")
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"unsupported legacy checkpoint protocol {_show(protocol)}")
    sys_info = next_pickle("the system information")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise CheckpointError("only little-endian checkpoints are supported")
    storages = _Storages()
    obj = next_pickle("the checkpoint's object", storages)
    keys = next_pickle("the storage key list")
    if type(keys) is not list:
        raise CheckpointError("the storage key list is missing")
    filled = set()
    for key in keys:
        key = _key(key, "a listed storage key")
        storage = storages.by_key.get(key)
        if storage is None:
            raise CheckpointError(f"storage {key!r} is listed but no tensor uses it")
        if key in filled:
            raise CheckpointError(f"storage {key!r} is listed twice")
        filled.add(key)
        if pos + 8 > end:
            raise CheckpointError(f"the file ends before storage {key!r}")
        (count,) = struct.unpack_from("<q", data, pos)
        if count != storage.numel:
            raise CheckpointError(
                f"storage {key!r} holds {count} elements in the file but {storage.numel} in its pickle"
            )
        nbytes = count * storage.dtype.itemsize
        if pos + 8 + nbytes > end:
            raise CheckpointError(f"the file ends inside storage {key!r} ({nbytes} bytes at byte {pos + 8} of {end})")
        storage.data = np.frombuffer(data, dtype=storage.dtype, count=count, offset=pos + 8)
        pos += 8 + nbytes
    for view, root, offset in storages.views:
        if root.data is not None:
            view.data = root.data[offset : offset + view.numel]
    return obj


def _read_member(archive: zipfile.ZipFile, name: str, archive_size: int, budget: _Budget, what: str) -> bytes:
    """The bytes of one zip member, checked against the zip directory before anything is read."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"the record {name!r} of {what} is missing from the archive") from None
    record = f"record {name!r}"
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{record} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(f"{record} uses compression method {info.compress_type} (only stored or deflated)")
    if info.header_offset + info.compress_size > archive_size:
        raise CheckpointError(
            f"{record} claims {info.compress_size} bytes at byte {info.header_offset}, past the archive's end"
        )
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise CheckpointError(f"{record} is stored but claims {info.file_size} bytes in {info.compress_size}")
    if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 64:
        raise CheckpointError(
            f"{record} claims {info.file_size} bytes from {info.compress_size}, more than deflate can compress"
        )
    budget.charge(info.file_size, record)
    with archive.open(info) as member:
        raw = member.read(info.file_size)  # never more than the directory says
    if len(raw) != info.file_size:
        raise CheckpointError(f"{record} holds {len(raw)} bytes, not the {info.file_size} its directory entry says")
    return raw


def _load_zip(path: str | os.PathLike[str], archive_size: int, budget: _Budget) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError("a zip checkpoint must hold exactly one data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names:
            if archive.getinfo(byteorder).file_size > 16:
                raise CheckpointError(f"record {byteorder!r} is too long")
            if _read_member(archive, byteorder, archive_size, budget, "the byte order").strip() != b"little":
                raise CheckpointError("only little-endian checkpoints are supported")

        def load(storage: _Storage) -> None:
            name = f"{prefix}data/{storage.key}"
            info = archive.getinfo(name) if name in names else None
            nbytes = storage.numel * storage.dtype.itemsize
            if info is not None and info.file_size != nbytes:
                raise CheckpointError(
                    f"storage {storage.key!r} declares {storage.numel} elements of {storage.dtype.itemsize} bytes "
                    f"({nbytes} bytes) but its record {name!r} holds {info.file_size}"
                )
            raw = _read_member(archive, name, archive_size, budget, f"storage {storage.key!r}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)

        pkl_info = archive.getinfo(pkl[0])
        budget.charge(pkl_info.file_size * PICKLE_BYTE_COST, f"the objects of record {pkl[0]!r}")
        data = _read_member(archive, pkl[0], archive_size, budget, "the checkpoint's object")
        obj, _stop = run_pickle(
            data, 0, len(data), _find_global, _CALLABLES, _Storages(load).persistent_load, f"record {pkl[0]!r}"
        )
        return obj


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state-dict checkpoint at ``path``, by name, as NumPy arrays.

    Raises :class:`CheckpointError` (a ``ValueError``) for a file that is not a
    checkpoint of tensors, that names anything beyond tensors and ordered dicts,
    whose sizes do not fit the file, or that would make the reader allocate more
    than :data:`MAX_EXPANSION` times the file's size plus :data:`EXPANSION_SLACK`
    (this bounds tensors with zero strides, which torch's ``expand`` makes: they
    load as long as their arrays fit the budget).
    """
    where = repr(os.fspath(path))
    try:
        try:
            f = open_regular_file(path)  # a FIFO named like a checkpoint would block a plain open
        except RefusedFileError as exc:
            raise CheckpointError(exc.reason) from None
        with f:
            info = os.fstat(f.fileno())
            budget = _Budget(info.st_size)
            is_zip = zipfile.is_zipfile(f)
            f.seek(0)
            data = b"" if is_zip else f.read(info.st_size)
        obj = _load_zip(path, info.st_size, budget) if is_zip else _load_legacy(data, budget)
        check_depth(obj, where, MAX_DEPTH)
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise CheckpointError(f"{where} does not hold a dict of tensors")
        state = {}
        for key, value in obj.items():
            if not isinstance(value, _PendingTensor):
                raise CheckpointError(f"{where} does not hold a dict of tensors (entry {_show(key)} is {_show(value)})")
            state[str(key)] = value.materialize(_show(key), budget)
        return state
    except PickleDataError as exc:  # CheckpointError included
        raise CheckpointError(f"{where}: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as exc:
        raise CheckpointError(f"{where} is not a readable PyTorch checkpoint: {exc}") from None
