"""Buffers in and out: the spec's *validate buffer with descriptor* for Python objects.

A NumPy array whose dtype is the descriptor's is taken element by element.
A ``uint8`` array, ``bytes``, ``bytearray``, or any other buffer-protocol
object is raw storage (like a JS ArrayBuffer or Uint8Array), its byte length
must equal the descriptor's; 4-bit types are packed two a byte, low nibble
first.  A ``uint16`` array for a float16 operand holds float16 bits (the spec's
note on Float16Array).  Other host data follows :func:`host_array`, the one
rule for every input (``constant``, ``write_tensor``, ``compute``, the
Trainer's data): a NumPy array of another dtype is refused (as a
Float32Array for a float16 operand is in JS), and Python numbers and lists
are cast to the data type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import dtypes
from ..ir import OperandDesc


def host_array(
    value: Any, data_type: str, where: str, what: str = "the data", target: np.dtype | None = None
) -> np.ndarray:
    """``value`` as an array of ``data_type``'s NumPy dtype (or ``target``, a backend's host dtype).

    The one rule for host data:

    * a NumPy array must already have that dtype; it is never cast, so no
      precision or range is lost unseen (a float64 array for a float32
      operand is a TypeError saying how to convert it, as a Float64Array is
      refused in JavaScript);
    * Python numbers and (nested) lists or tuples of them, which have no
      dtype of their own (JavaScript's numbers), are converted with the
      spec's cast of a number to the data type: floats round to nearest,
      integers saturate, NaN becomes 0 for an integer type.

    The result may be ``value`` itself; its shape is the caller's to check.
    """
    own = dtypes.numpy_dtype(data_type)
    target = own if target is None else np.dtype(target)
    if isinstance(value, np.ndarray):
        if value.dtype != target:
            expected = f"data type {data_type}" if target == own else f"the backend's {target.name} for {data_type}"
            raise TypeError(
                f"{where}: {what} has dtype {value.dtype}, and dtype {value.dtype} does not match {expected}; "
                f"convert it first with .astype(numpy.{target.name})"
            )
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        array = None  # a ragged list, or worse
    if array is not None and array.dtype == object:
        array = _cast_objects(array, data_type)
    if array is None or array.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {what} must be a NumPy array or a (nested) list of numbers, got {_kind(value)}")
    if target != own:  # a backend's wider host dtype (float64 oracle): nothing to round
        return array.astype(target)
    return dtypes.cast_array(array, data_type)


def _cast_objects(array: np.ndarray, data_type: str) -> np.ndarray | None:
    """Python ints beyond 64 bits (NumPy keeps them as objects), cast one by one; None if any isn't a number."""
    flat = array.reshape(-1).tolist()
    if not all(isinstance(v, (int, float)) for v in flat):
        return None
    cast = [dtypes.cast_number(v, data_type) for v in flat]
    return np.array(cast, dtype=dtypes.numpy_dtype(data_type)).reshape(array.shape)


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} that is not a regular array of numbers"
    return type(value).__name__


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
    if isinstance(buffer, (list, tuple, int, float, np.number, np.bool_)):
        # Numbers: the one rule for host data, then the descriptor's element count.
        buffer = host_array(buffer, desc.data_type, where, "the data")
        copy = False  # already a new array
    if isinstance(buffer, np.ndarray):
        if buffer.dtype == target or buffer.dtype != np.uint8:
            buffer = host_array(buffer, desc.data_type, where, "the array")
            if buffer.size != desc.element_count:
                raise TypeError(
                    f"{where}: the array has {buffer.size} elements but the descriptor "
                    f"{desc} needs {desc.element_count}"
                )
            return np.array(buffer, dtype=target, copy=copy or None).reshape(desc.shape)
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
