"""Reference kernels of the shape and data-movement operators.

Apart from cast these only move elements, so the lifted values come back
unchanged and the runtime's rounding to the output type is exact.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .kernels import kernel


@kernel("cast")
def cast(input, *, out, data_type):
    """The spec's cast table.

    * to a float type: the nearest representable value (the runtime rounds
      the float64 value once; integers go straight to the target type);
    * float to integer: truncated toward zero; out of range is
      implementation-defined, here saturated with NaN -> 0 by the runtime;
    * integer to integer: the lowest N bits, two's complement.
    """
    target = dtypes.info(data_type)
    if target.is_float:
        # A direct conversion rounds int64/uint64 once (float64 would round twice).
        return input if input.dtype.kind == "f" else input.astype(target.dtype)
    if input.dtype.kind == "f":
        return np.trunc(input)
    return _wrap(input, target)


def _wrap(x: np.ndarray, target: dtypes.DataTypeInfo) -> np.ndarray:
    """Keep the lowest ``target.bits`` bits of integers, as two's complement if signed."""
    if target.bits == 64:
        # int64 <-> uint64 conversion reinterprets the bits; the runtime keeps
        # an array already of the output's dtype.
        return x.astype(target.dtype)
    low = (x.astype(np.uint64) & np.uint64(2**target.bits - 1)).astype(np.int64)
    if target.kind == "int":
        low = np.where(low >= 2 ** (target.bits - 1), low - 2**target.bits, low)
    return low


@kernel("concat")
def concat(inputs, *, out, axis):
    return np.concatenate(inputs, axis=axis)


@kernel("expand")
def expand(input, *, out, new_shape):
    return np.broadcast_to(input, new_shape)


@kernel("reshape")
def reshape(input, *, out, new_shape):
    return input.reshape(new_shape)


@kernel("tile")
def tile(input, *, out, repetitions):
    return np.tile(input, repetitions) if input.ndim else input.copy()


_NUMPY_PAD_MODES = {"constant": "constant", "edge": "edge", "reflection": "reflect"}


@kernel("pad")
def pad(input, *, out, beginning_padding, ending_padding, mode, value):
    if input.ndim == 0:  # nothing to pad (np.pad refuses empty widths)
        return input.copy()
    widths = list(zip(beginning_padding, ending_padding))
    if mode == "constant":
        fill = np.asarray(value, dtype=input.dtype) if input.dtype.kind != "f" else float(value)
        return np.pad(input, widths, mode="constant", constant_values=fill)
    return np.pad(input, widths, mode=_NUMPY_PAD_MODES[mode])


@kernel("reverse")
def reverse(input, *, out, axes):
    return input[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(input.ndim))]


@kernel("transpose")
def transpose(input, *, out, permutation):
    return np.transpose(input, permutation)


@kernel("slice")
def slice_(input, *, out, starts, sizes, strides):
    return input[tuple(slice(b, b + n, s) for b, n, s in zip(starts, sizes, strides))]


@kernel("split")
def split(input, *, out, splits, axis):
    parts = np.split(input, np.cumsum(splits)[:-1], axis=axis)
    return parts if len(parts) > 1 else parts[0]  # one output: its array, as every one-output kernel


@kernel("triangular")
def triangular(input, *, out, upper, diagonal):
    # Element (i, j) of each matrix is kept when j - i >= diagonal (upper) or
    # j - i <= diagonal (lower): numpy's triu/tril with k = diagonal.
    return np.triu(input, diagonal) if upper else np.tril(input, diagonal)


@kernel("where")
def where(condition, true_value, false_value, *, out):
    return np.where(condition != 0, true_value, false_value)
