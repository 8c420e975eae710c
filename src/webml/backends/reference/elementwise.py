"""Reference kernels of the element-wise binary operations."""

from __future__ import annotations

import numpy as np

from .kernels import kernel


@kernel("add")
def add(a, b, *, out):
    return a + b


@kernel("sub")
def sub(a, b, *, out):
    return a - b


@kernel("mul")
def mul(a, b, *, out):
    return a * b


@kernel("div")
def div(a, b, *, out):
    if a.dtype.kind == "f":
        return a / b
    # Integer division truncates toward zero (spec); division by zero is
    # undefined there, computed as 0 here.
    with np.errstate(all="ignore"):
        q = np.where(b == 0, 0, np.abs(a) // np.where(b == 0, 1, np.abs(b)))
    return np.where((a < 0) != (b < 0), -q, q)


@kernel("max")
def maximum(a, b, *, out):
    return np.maximum(a, b)


@kernel("min")
def minimum(a, b, *, out):
    return np.minimum(a, b)


@kernel("pow")
def power(a, b, *, out):
    if a.dtype.kind == "f":
        return np.power(a, b)
    # Integer pow: exact, with negative exponents following float semantics truncated.
    return np.trunc(np.power(a.astype(np.float64), b.astype(np.float64)))
