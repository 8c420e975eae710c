"""Checks and shape algorithms shared by the operator families (spec §7 algorithms)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from .registry import MAX_RANK, Call, Limit

ALL_TYPES = tuple(dtypes.DATA_TYPES)
FLOATS = ("float32", "float16")
FLOAT_INT32 = ("float32", "float16", "int32")
#: The floats and the 32-bit integers (e.g. what the onnxruntime backend sums exactly).
FLOAT_INT32_UINT32 = (*FLOATS, "int32", "uint32")
SIGNED = ("float32", "float16", "int32", "int64", "int8")
INTS = ("int32", "uint32", "int64", "uint64", "int8", "uint8")
NUMERIC = FLOATS + INTS
# The spec's MLOperandDataType enum; "any data type" in its tables means these.
# int4/uint4 (a Chromium and WPT extension) are allowed only where an
# operator lists them.
SPEC_TYPES = NUMERIC

ANY = Limit(SPEC_TYPES)


def limit(types: Sequence[str], min_rank: int = 0, max_rank: int = MAX_RANK) -> Limit:
    return Limit(tuple(types), min_rank, max_rank)


UINT32_MAX = 2**32 - 1
LONG_MAX = 2**31 - 1
#: The int64 range, to which the backends saturate int64 results (prelu, shape casts).
INT64_MIN, INT64_MAX = dtypes.int_bounds("int64")


def broadcast_bidirectional(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """The spec's *bidirectionally broadcast the shapes*; None on failure."""
    n = max(len(a), len(b))
    pa = [1] * (n - len(a)) + list(a)
    pb = [1] * (n - len(b)) + list(b)
    out = []
    for da, db in zip(pa, pb):
        if da != db and da != 1 and db != 1:
            return None
        out.append(max(da, db))
    return tuple(out)


def broadcast_unidirectional(frm: Sequence[int], to: Sequence[int]) -> tuple[int, ...] | None:
    """The spec's *unidirectionally broadcast the shapes*; None on failure."""
    if len(frm) > len(to):
        return None
    padded = [1] * (len(to) - len(frm)) + list(frm)
    for df, dt in zip(padded, to):
        if df != dt and df != 1:
            return None
    return tuple(to)


def blockwise_broadcastable(frm: Sequence[int], to: Sequence[int]) -> bool:
    """The spec's *blockwise broadcast the shapes*."""
    return len(frm) == len(to) and all(t % f == 0 for f, t in zip(frm, to))


def valid_dimension(d: int) -> bool:
    return 0 < d <= LONG_MAX


def check_shape(call: Call, shape: Sequence[int], what: str = "output") -> tuple[int, ...]:
    """Every dimension and the element count must be valid dimensions."""
    shape = tuple(int(d) for d in shape)
    if len(shape) > MAX_RANK:
        raise call.error(f"the {what} rank {len(shape)} exceeds the maximum rank {MAX_RANK}")
    if not all(valid_dimension(d) for d in shape) or not valid_dimension(math.prod(shape)):
        raise call.error(f"the {what} shape {list(shape)} is not valid")
    return shape


def enforce_range(call: Call, value: Any, name: str, lo: int, hi: int, idl: str) -> int:
    """WebIDL ``[EnforceRange]`` integer conversion: NaN and infinities throw,
    fractions truncate toward zero, out-of-range values throw."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise call.error(f"{name} must be {idl}, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise call.error(f"{name} must be {idl}, got {value!r}")
        value = math.trunc(value)
    if not lo <= value <= hi:
        raise call.error(f"{name} must be {idl} (an integer in [{lo}, {hi}]), got {value!r}")
    return int(value)


def unsigned_long(call: Call, value: Any, name: str) -> int:
    """WebIDL ``[EnforceRange] unsigned long``."""
    return enforce_range(call, value, name, 0, UINT32_MAX, "an unsigned long")


def long(call: Call, value: Any, name: str) -> int:
    """WebIDL ``[EnforceRange] long``."""
    return enforce_range(call, value, name, -(2**31), LONG_MAX, "a long")


def unsigned_longs(call: Call, values: Any, name: str) -> tuple[int, ...]:
    """A ``sequence<[EnforceRange] unsigned long>``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError:
            raise call.error(f"{name} must be a sequence of unsigned long, got {values!r}") from None
    return tuple(unsigned_long(call, v, f"{name}[{i}]") for i, v in enumerate(values))


def axis_in_rank(call: Call, axis: Any, rank: int, name: str = "axis") -> int:
    """An unsigned axis that must be less than the rank."""
    axis = unsigned_long(call, axis, name)
    if axis >= rank:
        raise call.error(f"{name} {axis} must be in the range [0, {rank}) for rank {rank}")
    return axis


def axes_in_rank(call: Call, axes: Any, rank: int, name: str = "axes") -> tuple[int, ...]:
    """Unique unsigned axes, each less than the rank."""
    out = unsigned_longs(call, axes, name)
    for a in out:
        if a >= rank:
            raise call.error(f"{name} value {a} must be in the range [0, {rank}) for rank {rank}")
    if len(set(out)) != len(out):
        raise call.error(f"{name} {list(out)} must not contain duplicates")
    return out


def same_type(call: Call, first: Any, *others: Any, names: Sequence[str] = ()) -> None:
    """All operands must share the first one's data type."""
    for i, other in enumerate(others):
        if other.data_type != first.data_type:
            what = names[i + 1] if len(names) > i + 1 else "operands"
            raise call.error(
                f"{what} data type {other.data_type} must match {names[0] if names else 'input'}'s {first.data_type}"
            )


def one_of(call: Call, value: Any, choices: Sequence[str], name: str) -> str:
    """An enum value (WebIDL enum: a TypeError for a string not in the enum)."""
    if value not in choices:
        raise call.error(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def number(call: Call, value: Any, name: str) -> float | int:
    """An MLNumber / double argument: an int (bigint) or a float."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise call.error(f"{name} must be a number, got {value!r}")


def finite_float(call: Call, value: Any, name: str) -> float:
    """A WebIDL ``float`` (restricted): finite and representable as float32."""
    v = float(number(call, value, name))
    if not math.isfinite(v) or abs(v) > 3.4028234663852886e38:
        raise call.error(f"{name} must be a finite float, got {value!r}")
    return v


def list_option(call: Call, value: Any, name: str, size: int, default: Sequence[int]) -> tuple[int, ...]:
    """An optional ``sequence<[EnforceRange] unsigned long>``: ``default`` if absent, else exactly ``size`` items."""
    if value is None:
        return tuple(default)
    values = unsigned_longs(call, value, name)
    if len(values) != size:
        raise call.error(f"{name} must have {size} values, got {len(values)}: {list(values)}")
    return values


def nonzero(call: Call, values: tuple[int, ...], name: str) -> tuple[int, ...]:
    """``values`` (an option's items), none of which may be 0."""
    if 0 in values:
        raise call.error(f"{name} {list(values)} must not contain 0")
    return values

