"""Reference kernels of the element-wise unary operations.

Float inputs arrive as float64 and integers as int64 (see ``kernels.lift``);
the runtime rounds each result to the output type (integers saturate, so
abs/neg of int8 -128 give 127).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .kernels import kernel

# The operators whose NumPy function computes the spec's formula in float64.
_NUMPY = {
    "ceil": np.ceil,
    "cos": np.cos,
    "exp": np.exp,
    "floor": np.floor,
    "log": np.log,
    "roundEven": np.rint,  # rounds halves to the nearest even integer
    "sin": np.sin,
    "sqrt": np.sqrt,
    "tan": np.tan,
}


def _numpy_kernel(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def run(input: np.ndarray, *, out: Any) -> np.ndarray:
        return fn(input)

    return run


for _name, _fn in _NUMPY.items():
    kernel(_name)(_numpy_kernel(_fn))


@kernel("abs")
def abs_(input, *, out):
    if input.dtype.kind == "f":
        return np.abs(input)  # also clears the sign of -0 and NaN
    return np.where(input < 0, _negate(input), input)


@kernel("erf")
def erf(input, *, out):
    return erf_float64(input)


@kernel("identity")
def identity(input, *, out):
    return input


@kernel("neg")
def neg(input, *, out):
    return _negate(input)


def _negate(x: np.ndarray) -> np.ndarray:
    """-x; for int64 the one unrepresentable result, -(-2^63), saturates like every other cast."""
    if x.dtype == np.int64:
        info = np.iinfo(np.int64)
        return np.where(x == info.min, info.max, -x)
    return np.negative(x)


@kernel("reciprocal")
def reciprocal(input, *, out):
    return 1.0 / input


@kernel("sign")
def sign(input, *, out):
    # The spec: 1 if > 0, -1 if < 0, 0 otherwise (so 0 for -0 and for NaN).
    return np.where(input > 0, 1, np.where(input < 0, -1, 0)).astype(input.dtype)


# Below this erf uses its power series, above it 1 - erfc with erfc's
# continued fraction (each accurate there to a few float64 ulps).
_ERF_SERIES_MAX = 2.5
_ERFC_CF_DEPTH = 60
# Beyond this, erf(x) rounds to +-1 in float64 (1 - erf(6) ~ 2e-17).
_ERF_SATURATION = 6.0


def erf_float64(x: np.ndarray) -> np.ndarray:
    """erf in float64, vectorised (NumPy has no erf and SciPy is not a dependency).

    Loops run over series / continued-fraction terms, each step on the whole
    array; erf is odd, so both work on t = |x| and copy x's sign back.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.abs(x)
    small = _erf_series(np.minimum(t, _ERF_SERIES_MAX))
    large = 1.0 - _erfc_continued_fraction(np.clip(t, _ERF_SERIES_MAX, _ERF_SATURATION))
    result = np.where(t < _ERF_SERIES_MAX, small, large)
    result = np.where(t >= _ERF_SATURATION, 1.0, result)  # also +-inf
    return np.copysign(result, x)  # NaN stays NaN through every step


def _erf_series(t: np.ndarray) -> np.ndarray:
    """erf(t) = 2/sqrt(pi) * exp(-t^2) * sum_n t (2t^2)^n / (1*3*...*(2n+1)), for t >= 0.

    Every term is positive, so the sum has no cancellation.
    """
    two_t2 = 2.0 * t * t
    term = t.copy()
    total = t.copy()
    n = 0
    # Terms grow while 2t^2 > 2n+1, then shrink geometrically; stop once every
    # term is below float64 resolution of its sum (NaN compares false).
    while np.any(term > np.finfo(np.float64).eps * total):
        n += 1
        term = term * two_t2 / (2 * n + 1)
        total = total + term
    return (2.0 / math.sqrt(math.pi)) * _exp_neg_square(t) * total


def _erfc_continued_fraction(t: np.ndarray) -> np.ndarray:
    """erfc(t) = exp(-t^2)/sqrt(pi) / (t + (1/2)/(t + 1/(t + (3/2)/(t + ...)))), for t >= 2.5.

    Evaluated bottom-up at a fixed depth, ample for t >= 2.5.
    """
    f = t.copy()
    for k in range(_ERFC_CF_DEPTH, 0, -1):
        f = t + (k / 2) / f
    return _exp_neg_square(t) / (math.sqrt(math.pi) * f)


def _exp_neg_square(t: np.ndarray) -> np.ndarray:
    """exp(-t*t) without the rounding error of t*t (which exp would magnify t^2-fold).

    Splits t = hi + lo with hi's 26-bit significand (Dekker), so hi*hi is exact.
    """
    scaled = t * 134217729.0  # 2^27 + 1
    hi = scaled - (scaled - t)
    lo = t - hi
    return np.exp(-hi * hi) * np.exp(-(2.0 * hi * lo + lo * lo))
