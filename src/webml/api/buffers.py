"""Buffers in and out: the spec's *validate buffer with descriptor* for Python objects.

A NumPy array whose dtype is the descriptor's is taken element by element.
A ``uint8`` array, ``bytes``, ``bytearray``, or any other buffer-protocol
object is raw storage (like a JS ArrayBuffer or Uint8Array), its byte length
must equal the descriptor's; 4-bit types are packed two a byte, low nibble
first.  A ``uint16`` array for a float16 operand holds float16 bits (the spec's
note on Float16Array).  A NumPy array of another dtype is refused (as a
Float32Array for a float16 operand is in JS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import dtypes
from ..ir import OperandDesc


def to_array(buffer: Any, desc: OperandDesc, where: str, copy: bool = True) -> np.ndarray:
    """An array of ``desc``'s dtype and shape holding ``buffer``'s data.

    A new array when ``copy``; otherwise possibly a view of the caller's
    memory (for the caller to copy where it wants).  Raises TypeError
    (prefixed with ``where``) when the buffer doesn't match.
    """
    target = dtypes.numpy_dtype(desc.data_type)
    if isinstance(buffer, np.ndarray) and buffer.dtype == np.uint16 and desc.data_type == "float16":
        # The spec's appendix lets a Uint16Array carry float16 bits until
        # Float16Array is everywhere; a uint16 array is read the same way.
        buffer = buffer.view(np.float16)
    if isinstance(buffer, np.ndarray):
        if buffer.dtype == target:
            if buffer.size != desc.element_count:
                raise TypeError(
                    f"{where}: the array has {buffer.size} elements but the descriptor "
                    f"{desc} needs {desc.element_count}"
                )
            return np.array(buffer, dtype=target, copy=copy or None).reshape(desc.shape)
        if buffer.dtype != np.uint8:
            raise TypeError(
                f"{where}: an array of dtype {buffer.dtype} does not match data type "
                f"{desc.data_type} (pass an array of dtype {target} or raw uint8 bytes)"
            )
        raw = np.ascontiguousarray(buffer).reshape(-1).data
    else:
        try:
            raw = memoryview(buffer).cast("B")
        except TypeError:
            raise TypeError(f"{where}: expected a NumPy array or a buffer, got {type(buffer).__name__}") from None
    if raw.nbytes != desc.byte_length:
        raise TypeError(
            f"{where}: the buffer holds {raw.nbytes} bytes but the descriptor {desc} needs {desc.byte_length}"
        )
    return dtypes.from_bytes(desc.data_type, raw, desc.shape, copy=copy)


def writer(buffer: Any, desc: OperandDesc, where: str) -> Callable[[np.ndarray], None]:
    """Validate a caller's output buffer now; the returned function fills it later.

    Used by ``read_tensor(tensor, out)``: a bad buffer raises before anything is read.
    """
    target = dtypes.numpy_dtype(desc.data_type)
    if isinstance(buffer, np.ndarray) and buffer.dtype == target:
        if buffer.size != desc.element_count:
            raise TypeError(
                f"{where}: the array has {buffer.size} elements but the tensor {desc} has {desc.element_count}"
            )
        if not buffer.flags.writeable:
            raise TypeError(f"{where}: the output array is read-only")

        def write_elements(array: np.ndarray) -> None:
            buffer[...] = array.reshape(buffer.shape)

        return write_elements
    if isinstance(buffer, np.ndarray) and buffer.dtype != np.uint8:
        raise TypeError(f"{where}: an array of dtype {buffer.dtype} does not match data type {desc.data_type}")
    try:
        view = memoryview(buffer).cast("B")
    except TypeError:
        raise TypeError(f"{where}: expected a writable buffer, got {type(buffer).__name__}") from None
    if view.readonly:
        raise TypeError(f"{where}: the output buffer is read-only")
    if view.nbytes != desc.byte_length:
        raise TypeError(f"{where}: the buffer holds {view.nbytes} bytes but the tensor {desc} needs {desc.byte_length}")

    def write_bytes(array: np.ndarray) -> None:
        view[:] = dtypes.to_bytes(desc.data_type, array)

    return write_bytes
