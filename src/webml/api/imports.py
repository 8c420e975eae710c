"""Zero-copy tensors (non-spec): ``MLContext.import_tensor`` and the host memory MLTensors export.

``context.import_tensor(obj)`` turns memory someone else owns into an
MLTensor: a NumPy array, anything with ``__dlpack__`` (DLPack: PyTorch CPU
tensors, JAX and CuPy arrays on the host...), a PyAV ``VideoPlane`` (as
``[height, line_size]`` uint8 rows), or any other buffer-protocol object
(``memoryview``, ``bytearray``, ``bytes``).  On backends whose tensors live in
host memory (``onnxruntime``, ``openvino``) the tensor *is* that memory: the
engine reads (and, for a writable tensor used as a dispatch output, writes)
it in place.  Elsewhere, and for memory a backend cannot use as it is (a
non-contiguous array; a read-only buffer on openvino), the tensor is a copy
made once at import: ``MLTensor.shares_memory`` says which, and
``MLContext.import_copies`` counts the copies.

Lifetimes are safe: the tensor holds a reference to the source, so the
memory outlives every use of it; a read-only source gives a tensor that is
neither writable nor usable as a dispatch output.

>>> import numpy, webml
>>> context = webml.ml.create_context(backend="onnxruntime")
>>> frame = numpy.arange(6, dtype=numpy.uint8).reshape(2, 3)
>>> tensor = context.import_tensor(frame)
>>> tensor.shape, tensor.data_type, tensor.shares_memory, tensor.writable
([2, 3], 'uint8', True, True)
>>> context.data_pointer(tensor) == frame.ctypes.data
True
>>> frame[0, 0] = 42  # the tensor is the array's memory
>>> int(context.read_tensor(tensor)[0, 0])
42
>>> numpy.asarray(tensor)[0, 0]  # and exports it back, read-only unless the tensor is writable
np.uint8(42)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import dtypes


@dataclass(frozen=True)
class HostMemory:
    """What an import found: the source's memory as an array, and whether the source lets it be written."""

    array: np.ndarray
    writable: bool
    #: True when ``array`` is a copy (the source was not C-contiguous): the tensor cannot share it.
    copied: bool = False


def host_memory_of(obj: Any, where: str = "importTensor") -> HostMemory:
    """The memory of ``obj`` as a NumPy array over it (no copy where it is C-contiguous).

    Raises TypeError naming what is wrong: not a buffer or DLPack object, memory
    not on the CPU, a data type WebNN has no name for.
    """
    from .tensor import MLTensor

    if isinstance(obj, MLTensor):
        raise TypeError(f"{where}: the object is already an MLTensor")
    if isinstance(obj, np.ndarray):
        array = obj
    elif _is_plane(obj):
        # A PyAV VideoPlane: its buffer is height rows of line_size bytes (line_size >= width:
        # FFmpeg pads rows for SIMD); the rows are kept whole (C order, so shareable), and a graph
        # slices the pixels out.  Before DLPack: PyAV's __dlpack__ gives the strided pixels.
        array = np.frombuffer(obj, dtype=np.uint8).reshape(obj.height, obj.line_size)
    elif hasattr(obj, "__dlpack__"):
        array = _from_dlpack(obj, where)
    else:
        try:
            view = memoryview(obj)
        except TypeError:
            raise TypeError(
                f"{where}: expected a NumPy array, a DLPack tensor (__dlpack__) or a buffer-protocol object, "
                f"got {type(obj).__name__}"
            ) from None
        try:
            array = np.asarray(view)
        except (ValueError, TypeError) as exc:  # a struct format NumPy cannot read
            raise TypeError(f"{where}: the buffer's format {view.format!r} is not numbers ({exc})") from None
    data_type = dtypes.data_type_of(array.dtype) if array.dtype.isnative else None
    if data_type is None:
        names = ", ".join(dtypes.DATA_TYPES)
        raise TypeError(f"{where}: dtype {array.dtype} has no MLOperandDataType (native byte order of: {names})")
    writable = bool(array.flags.writeable)
    if not array.flags.c_contiguous:
        return HostMemory(np.ascontiguousarray(array), writable, copied=True)
    return HostMemory(array, writable)


def _from_dlpack(obj: Any, where: str) -> np.ndarray:
    device = getattr(obj, "__dlpack_device__", None)
    if device is not None:
        kind = device()[0]
        # DLPack's device types: 1 kDLCPU, 3 kDLCUDAHost, 11 kDLCUDAManaged: host-addressable memory.
        if int(kind) not in (1, 3, 11):
            raise TypeError(
                f"{where}: the DLPack tensor is on device type {int(kind)}, not in host memory; "
                "move it to the CPU first (e.g. tensor.cpu())"
            )
    try:
        return np.from_dlpack(obj, copy=False)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        raise TypeError(f"{where}: the DLPack tensor cannot be shared without a copy ({exc})") from None


def _is_plane(obj: Any) -> bool:
    """A PyAV VideoPlane (or anything shaped like one): rows of ``line_size`` bytes in a buffer."""
    try:
        rows, row_bytes = obj.height, obj.line_size
    except AttributeError:
        return False
    if not (isinstance(rows, int) and isinstance(row_bytes, int) and rows > 0 and row_bytes > 0):
        return False
    try:
        return memoryview(obj).nbytes == rows * row_bytes
    except TypeError:
        return False


def exported_view(view: np.ndarray, writable: bool) -> np.ndarray:
    """A view over a tensor's memory for export: read-only unless the tensor may be written."""
    out = view.view()
    if not writable:
        out.flags.writeable = False
    return out
