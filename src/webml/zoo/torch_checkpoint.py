"""Read PyTorch checkpoints (state dicts of tensors) without PyTorch.

Two formats are read:

* the legacy one (``torch.save`` before 1.6, or with
  ``_use_new_zipfile_serialization=False``): five pickles back to back -- a
  magic number, the protocol version, system information, the object itself
  (tensors refer to their storages by *persistent id*), and the list of
  storage keys -- followed by each storage's bytes, in the order of that key
  list, as ``[int64 element count][raw little-endian elements]``;
* the zip one (1.6 and later): ``<archive>/data.pkl`` holds the object and
  ``<archive>/data/<key>`` the raw bytes of each storage.

Unpickling runs code named by the file, so the unpickler here resolves only
the names a state dict needs (``collections.OrderedDict``, the tensor rebuild
functions and the storage classes) and refuses every other one.  Tensors
come back as NumPy arrays (a copy, C-contiguous, of the tensor's view of its
storage: offset, shape and strides are honoured).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from typing import IO, Any

import ml_dtypes
import numpy as np

__all__ = ["CheckpointError", "load_state_dict"]

#: The magic number that opens a legacy checkpoint.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: The only legacy protocol version there is.
LEGACY_PROTOCOL = 1001

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


class CheckpointError(ValueError):
    """The file is not a PyTorch checkpoint this reader understands."""


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
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise CheckpointError(f"the bytes of storage {self.storage.key!r} are missing")
        if any(n == 0 for n in self.shape):
            return np.zeros(self.shape, data.dtype)
        if any(s < 0 for s in self.strides):
            raise CheckpointError(f"negative strides {list(self.strides)} are not supported")
        start = self.offset
        last = start + sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        if start < 0 or last >= data.size:
            raise CheckpointError(
                f"a tensor of shape {list(self.shape)} at offset {start} overruns its storage of {data.size} elements"
            )
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[start:], shape=self.shape, strides=tuple(s * item for s in self.strides), writeable=False
        )
        return np.array(view, order="C", copy=True)


def _rebuild_tensor(storage: _Storage, offset: int, shape: Any, strides: Any, *_rest: Any) -> _PendingTensor:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``."""
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor is rebuilt from something that is not a storage")
    return _PendingTensor(storage, int(offset), tuple(int(n) for n in shape), tuple(int(s) for s in strides))


def _rebuild_tensor_v1(storage: _Storage, offset: int, shape: Any, strides: Any) -> _PendingTensor:
    """``torch._utils._rebuild_tensor(storage, offset, size, stride)``."""
    return _rebuild_tensor(storage, offset, shape, strides)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    """``torch._utils._rebuild_parameter(data, requires_grad, hooks)``: a parameter is its data."""
    return data


_ALLOWED_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor_v1,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names a state dict needs; storages come from persistent ids."""

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage], load_bytes: Any = None) -> None:
        super().__init__(file)
        self.storages = storages
        self.load_bytes = load_bytes  # zip format: key -> the storage's raw bytes
        self.views: list[tuple[_Storage, _Storage, int]] = []

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_FUNCTIONS:
            return _ALLOWED_FUNCTIONS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"refusing to unpickle {module}.{name}: only tensors and state dicts are read")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"unknown persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unknown storage type {storage_type!r}")
        key = str(key)
        root = self.storages.get(key)
        if root is None:
            root = _Storage(key, storage_type.dtype, int(numel))
            if self.load_bytes is not None:
                raw = self.load_bytes(key)
                root.data = np.frombuffer(raw, dtype=storage_type.dtype, count=int(numel))
            self.storages[key] = root
        view_metadata = pid[5] if len(pid) > 5 else None
        if view_metadata is None:
            return root
        # A legacy view of part of a root storage: (view key, offset in elements, size).
        view_key, view_offset, view_size = view_metadata
        view = _Storage(str(view_key), root.dtype, int(view_size))
        self.views.append((view, root, int(view_offset)))
        return view


def _collect(obj: Any) -> Any:
    """Replace every pending tensor in a (nested) container with its NumPy array."""
    if isinstance(obj, _PendingTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        return type(obj)((k, _collect(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_collect(v) for v in obj)
    return obj


def _load_legacy(f: IO[bytes]) -> Any:
    def small_pickle() -> Any:
        return _RestrictedUnpickler(f, {}).load()

    magic = small_pickle()
    if magic != LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint (bad magic number)")
    protocol = small_pickle()
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"unsupported legacy checkpoint protocol {protocol}")
    sys_info = small_pickle()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise CheckpointError("only little-endian checkpoints are supported")
    storages: dict[str, _Storage] = {}
    unpickler = _RestrictedUnpickler(f, storages)
    obj = unpickler.load()
    keys = _RestrictedUnpickler(f, {}).load()
    if not isinstance(keys, list):
        raise CheckpointError("the storage key list is missing")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointError(f"storage {key!r} is listed but no tensor uses it")
        count = np.frombuffer(f.read(8), dtype="<i8")
        if count.size != 1:
            raise CheckpointError(f"the file ends before storage {key!r}")
        n = int(count[0])
        raw = f.read(n * storage.dtype.itemsize)
        if len(raw) != n * storage.dtype.itemsize:
            raise CheckpointError(f"the file ends inside storage {key!r}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    for view, root, offset in unpickler.views:
        if root.data is None:
            raise CheckpointError(f"the bytes of storage {root.key!r} are missing")
        view.data = root.data[offset : offset + view.numel]
    return _collect(obj)


def _load_zip(path: str | os.PathLike[str]) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError("a zip checkpoint must hold exactly one data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise CheckpointError("only little-endian checkpoints are supported")

        def load_bytes(key: str) -> bytes:
            return archive.read(f"{prefix}data/{key}")

        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pkl[0])), {}, load_bytes)
        return _collect(unpickler.load())


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state-dict checkpoint at ``path``, by name, as NumPy arrays.

    Raises :class:`CheckpointError` (a ``ValueError``) for a file that is not a
    checkpoint of tensors, or that names anything beyond tensors and ordered dicts.
    """
    try:
        if zipfile.is_zipfile(path):
            obj = _load_zip(path)
        else:
            with open(path, "rb") as f:
                obj = _load_legacy(f)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{os.fspath(path)!r} is not a readable PyTorch checkpoint: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise CheckpointError(f"{os.fspath(path)!r} does not hold a dict of tensors")
    return {str(k): v for k, v in obj.items()}
