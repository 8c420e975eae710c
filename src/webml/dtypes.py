"""The operand data types: NumPy mapping, byte lengths, packing and casting.

Every MLOperandDataType maps to one NumPy dtype.  The 4-bit types map to
``ml_dtypes.int4`` / ``ml_dtypes.uint4``, which NumPy stores one element a
byte; their *raw* storage (buffers given to ``constant``/``write_tensor``)
is packed two elements a byte, low nibble first, as WebNN implementations and
the WPT suite do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = [
    "DATA_TYPES",
    "DataTypeInfo",
    "byte_length",
    "cast_array",
    "cast_number",
    "from_bytes",
    "info",
    "int_bounds",
    "is_float",
    "is_integer",
    "is_signed",
    "numpy_dtype",
    "to_bytes",
]


@dataclass(frozen=True)
class DataTypeInfo:
    name: str
    dtype: np.dtype
    bits: int
    kind: str  # "float", "int" or "uint"
    typed_array: str | None  # the matching ArrayBufferView, per the spec's appendix

    @property
    def is_float(self) -> bool:
        return self.kind == "float"


_TABLE = [
    DataTypeInfo("float32", np.dtype(np.float32), 32, "float", "Float32Array"),
    DataTypeInfo("float16", np.dtype(np.float16), 16, "float", "Float16Array"),
    DataTypeInfo("int32", np.dtype(np.int32), 32, "int", "Int32Array"),
    DataTypeInfo("uint32", np.dtype(np.uint32), 32, "uint", "Uint32Array"),
    DataTypeInfo("int64", np.dtype(np.int64), 64, "int", "BigInt64Array"),
    DataTypeInfo("uint64", np.dtype(np.uint64), 64, "uint", "BigUint64Array"),
    DataTypeInfo("int8", np.dtype(np.int8), 8, "int", "Int8Array"),
    DataTypeInfo("uint8", np.dtype(np.uint8), 8, "uint", "Uint8Array"),
    DataTypeInfo("int4", np.dtype(ml_dtypes.int4), 4, "int", None),
    DataTypeInfo("uint4", np.dtype(ml_dtypes.uint4), 4, "uint", None),
]

DATA_TYPES: dict[str, DataTypeInfo] = {t.name: t for t in _TABLE}
_BY_DTYPE = {t.dtype: t.name for t in _TABLE}



def info(data_type: str) -> DataTypeInfo:
    """The table row of ``data_type``; raises TypeError for an unknown name."""
    try:
        return DATA_TYPES[data_type]
    except (KeyError, TypeError):
        raise TypeError(f"'{data_type}' is not a valid value for enumeration MLOperandDataType") from None


def numpy_dtype(data_type: str) -> np.dtype:
    return info(data_type).dtype


def data_type_of(dtype: np.dtype) -> str | None:
    """The MLOperandDataType of a NumPy dtype, or None."""
    return _BY_DTYPE.get(np.dtype(dtype))


def is_float(data_type: str) -> bool:
    return info(data_type).kind == "float"


def is_integer(data_type: str) -> bool:
    return info(data_type).kind != "float"


def is_signed(data_type: str) -> bool:
    return info(data_type).kind != "uint"


def byte_length(data_type: str, element_count: int) -> int:
    """Bytes of packed storage for ``element_count`` elements (4-bit types round up)."""
    return math.ceil(element_count * info(data_type).bits / 8)


def from_bytes(data_type: str, raw: bytes | memoryview, shape: tuple[int, ...], copy: bool = True) -> np.ndarray:
    """Decode packed storage into an array of the data type's NumPy dtype (a view of
    ``raw`` when ``copy`` is false and no unpacking is needed)."""
    t = info(data_type)
    count = math.prod(shape)
    if t.bits == 4:
        packed = np.frombuffer(raw, dtype=np.uint8, count=byte_length(data_type, count))
        nibbles = np.empty(packed.size * 2, dtype=np.uint8)
        nibbles[0::2] = packed & 0x0F
        nibbles[1::2] = packed >> 4
        nibbles = nibbles[:count]
        if t.kind == "int":
            values = nibbles.astype(np.int8)
            values[values >= 8] -= 16
        else:
            values = nibbles
        return values.astype(t.dtype).reshape(shape)
    view = np.frombuffer(raw, dtype=t.dtype, count=count).reshape(shape)
    return view.copy() if copy else view


def to_bytes(data_type: str, array: np.ndarray) -> bytes:
    """Encode an array of the data type's dtype as packed storage."""
    t = info(data_type)
    flat = np.ascontiguousarray(array, dtype=t.dtype).reshape(-1)
    if t.bits == 4:
        nibbles = flat.astype(np.int8).view(np.uint8) & 0x0F
        if nibbles.size % 2:
            nibbles = np.concatenate([nibbles, np.zeros(1, np.uint8)])
        return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()
    return flat.tobytes()


def int_bounds(data_type: str) -> tuple[int, int]:
    """The smallest and largest value of an integer data type."""
    t = info(data_type)
    if t.kind == "uint":
        return 0, 2**t.bits - 1
    return -(2 ** (t.bits - 1)), 2 ** (t.bits - 1) - 1


def cast_number(value: float | int, data_type: str) -> float | int:
    """The spec's *cast* of an MLNumber to a data type (ConvertToFloat / ConvertToInt).

    Integers are clamped to the type's range and rounded half to even; NaN
    becomes 0.  (The spec's table says "signed" for uint32, an evident slip:
    uint32 is cast as unsigned here.)
    """
    t = info(data_type)
    if isinstance(value, bool):
        value = int(value)
    if t.is_float:
        x = _int_to_float(value) if isinstance(value, int) else float(value)
        with np.errstate(over="ignore"):
            return float(np.asarray(x).astype(t.dtype))
    lo, hi = int_bounds(data_type)
    if isinstance(value, int):
        return min(max(value, lo), hi)
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return hi if value > 0 else lo
    clamped = min(max(value, lo), hi)
    return round(clamped) if abs(clamped) < 2**52 else int(clamped)


def _int_to_float(value: int) -> float:
    # Python's int->float conversion rounds half to even, as ConvertToFloat asks;
    # beyond float64's range the value is infinite for every float type anyway.
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def cast_array(values: np.ndarray, data_type: str) -> np.ndarray:
    """Round a float64 or integer result to ``data_type`` with the spec's casting rules.

    Floats round to nearest even (NumPy's conversion); integers saturate, NaN
    becomes 0 and fractional values round half to even.
    """
    t = info(data_type)
    values = np.asarray(values)
    if t.is_float:
        with np.errstate(over="ignore", invalid="ignore"):
            return values.astype(t.dtype)
    if values.dtype.kind in "iub":
        if values.dtype == t.dtype:
            return values
        lo, hi = int_bounds(data_type)
        if values.dtype.kind == "u" and values.dtype.itemsize == 8:
            clipped = np.minimum(values, np.uint64(hi))
        elif values.dtype.kind == "b":
            clipped = values.astype(np.int64)
        else:
            clipped = np.clip(values.astype(np.int64), max(lo, -(2**63)), min(hi, 2**63 - 1))
        return clipped.astype(t.dtype)
    lo, hi = int_bounds(data_type)
    f = np.where(np.isnan(values), 0.0, values)
    f = np.rint(np.clip(f, float(lo), float(hi)))
    # float(hi) may round up past the type's maximum (2**63 - 1 -> 2**63):
    # saturate those explicitly rather than wrap.
    out = np.empty(f.shape, dtype=t.dtype)
    big = f >= float(hi)
    small = f <= float(lo)
    mid = ~(big | small)
    out[mid] = f[mid].astype(t.dtype)
    out[big] = hi
    out[small] = lo
    return out
