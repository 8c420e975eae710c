"""Reference kernels of the element-wise logical operations: uint8 results of 0 or 1."""

from __future__ import annotations

import numpy as np

from .kernels import kernel


def _u8(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask).astype(np.uint8)


# Inputs of one comparison share a data type, so the lifted arrays (float64,
# int64 or uint64) compare exactly; any comparison with NaN is false, except
# notEqual, which is true (IEEE 754).
@kernel("equal")
def equal(a, b, *, out):
    return _u8(a == b)


@kernel("notEqual")
def not_equal(a, b, *, out):
    return _u8(a != b)


@kernel("greater")
def greater(a, b, *, out):
    return _u8(a > b)


@kernel("greaterOrEqual")
def greater_or_equal(a, b, *, out):
    return _u8(a >= b)


@kernel("lesser")
def lesser(a, b, *, out):
    return _u8(a < b)


@kernel("lesserOrEqual")
def lesser_or_equal(a, b, *, out):
    return _u8(a <= b)


# The logical operators treat any non-zero value as true.
@kernel("logicalNot")
def logical_not(a, *, out):
    return _u8(a == 0)


@kernel("logicalAnd")
def logical_and(a, b, *, out):
    return _u8((a != 0) & (b != 0))


@kernel("logicalOr")
def logical_or(a, b, *, out):
    return _u8((a != 0) | (b != 0))


@kernel("logicalXor")
def logical_xor(a, b, *, out):
    return _u8((a != 0) ^ (b != 0))


@kernel("isNaN")
def is_nan(a, *, out):
    return _u8(np.isnan(a))


@kernel("isInfinite")
def is_infinite(a, *, out):
    return _u8(np.isinf(a))
