"""Reference kernels of the reduction operators, argMin/argMax and cumulativeSum.

Float inputs arrive as float64.  Integer inputs arrive as int64 (uint64 stays
uint64) and their sums and products are exact: NumPy's wrapping 64-bit
arithmetic is exact modulo 2^64, so it is the true result whenever that fits;
when a bound on the result's magnitude says it may not, the kernel redoes the
computation with Python integers and saturates it, and the runtime then
saturates to the output type as exact arithmetic would.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...ops.checks import INT64_MAX, INT64_MIN
from .kernels import kernel

# Below this magnitude a 64-bit result is exact (with margin for the float bound's rounding).
_SAFE = 2.0**62
# A product whose float64 magnitude reaches this saturates whatever the rounding.
_HUGE = 2.0**70


def _exact(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn(x)`` for a sum- or product-like ``fn``, exactly for integer ``x``.

    ``fn(|x|)`` in float64 bounds every partial sum or product, so below
    ``_SAFE`` the wrapped 64-bit result is the true one.
    """
    if x.dtype.kind == "f":
        return fn(x)
    bound = fn(np.abs(x.astype(np.float64)))
    if not np.any(bound >= _SAFE):
        return fn(x)
    exact = np.asarray(fn(x.astype(object)), dtype=object)
    if x.dtype == np.uint64:
        return np.array(np.minimum(exact, 2**64 - 1), dtype=np.uint64)
    # np.array, not .astype: a 0-d object result comes back from clip as a Python int.
    return np.array(np.clip(exact, INT64_MIN, INT64_MAX), dtype=np.int64)


def _sum(axes: tuple[int, ...], keep: bool) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: np.sum(a, axis=axes, keepdims=keep)


@kernel("reduceSum")
def reduce_sum(input, *, out, axes, keep_dimensions):
    return _exact(input, _sum(axes, keep_dimensions))


@kernel("reduceL1")
def reduce_l1(input, *, out, axes, keep_dimensions):
    # |x| inside fn, so the exact (Python int) path takes |int64 min| without wrapping.
    return _exact(input, lambda a: np.sum(np.abs(a), axis=axes, keepdims=keep_dimensions))


@kernel("reduceSumSquare")
def reduce_sum_square(input, *, out, axes, keep_dimensions):
    if input.dtype.kind == "f":
        return np.sum(np.square(input), axis=axes, keepdims=keep_dimensions)
    # Square and sum in one exact step: x*x may itself exceed 64 bits.
    return _exact(input, lambda a: np.sum(a * a, axis=axes, keepdims=keep_dimensions))


@kernel("reduceProduct")
def reduce_product(input, *, out, axes, keep_dimensions):
    def prod(a, keep=keep_dimensions):
        return np.prod(a, axis=axes, keepdims=keep)

    if input.dtype.kind == "f":
        return prod(input)
    # Nonzero integers have |x| >= 1, so partial products only grow in magnitude: a product
    # far past 64 bits saturates with its sign, and Python integers need only compute the others
    # (computing 7^1000000 exactly would take minutes).
    huge = prod(np.abs(input.astype(np.float64)), True) >= _HUGE
    if not huge.any():
        return _exact(input, prod)
    result = _exact(np.where(huge, np.ones_like(input), input), prod)
    if not keep_dimensions:
        huge = np.squeeze(huge, axis=axes)
    if input.dtype == np.uint64:
        return np.where(huge, np.uint64(2**64 - 1), result)
    limits = np.where(prod(np.sign(input)) < 0, np.iinfo(np.int64).min, np.iinfo(np.int64).max)
    return np.where(huge, limits, result)


def _numpy_reduction(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A kernel that is NumPy's ``fn`` over ``axes`` (exact: max and min pick an element, mean is of floats)."""

    def reduce(input, *, out, axes, keep_dimensions):
        return fn(input, axis=axes, keepdims=keep_dimensions)

    return reduce


kernel("reduceMax")(_numpy_reduction(np.max))
kernel("reduceMin")(_numpy_reduction(np.min))
kernel("reduceMean")(_numpy_reduction(np.mean))


@kernel("reduceL2")
def reduce_l2(input, *, out, axes, keep_dimensions):
    return np.sqrt(np.sum(np.square(input), axis=axes, keepdims=keep_dimensions))


@kernel("reduceLogSum")
def reduce_log_sum(input, *, out, axes, keep_dimensions):
    return np.log(np.sum(input, axis=axes, keepdims=keep_dimensions))


@kernel("reduceLogSumExp")
def reduce_log_sum_exp(input, *, out, axes, keep_dimensions):
    # log(sum(exp(x - m))) + m with m the maximum, so exp cannot overflow; an
    # infinite maximum is not subtracted (inf - inf would be NaN).
    m = np.max(input, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    result = np.log(np.sum(np.exp(input - m), axis=axes, keepdims=True)) + m
    return result if keep_dimensions else np.squeeze(result, axis=axes)


# -- argMin / argMax ----------------------------------------------------------------------


def _numpy_arg(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A kernel that is NumPy's ``fn`` along ``axis``: it returns the first index on ties (and the
    first NaN, as NaN compares as extreme)."""

    def arg(input, *, out, axis, keep_dimensions):
        return fn(input, axis=axis, keepdims=keep_dimensions)

    return arg


kernel("argMin")(_numpy_arg(np.argmin))
kernel("argMax")(_numpy_arg(np.argmax))


# -- cumulativeSum ---------------------------------------------------------------------------


@kernel("cumulativeSum")
def cumulative_sum(input, *, out, axis, exclusive, reversed):  # `reversed`: the spec option name
    x = np.flip(input, axis=axis) if reversed else input
    if exclusive:
        # Shift by one along axis, starting from 0: each output leaves out its own value.
        zero = np.zeros_like(np.take(x, [0], axis=axis))
        x = np.concatenate([zero, np.delete(x, -1, axis=axis)], axis=axis)
    result = _exact(x, lambda a: np.cumsum(a, axis=axis))
    return np.flip(result, axis=axis) if reversed else result
