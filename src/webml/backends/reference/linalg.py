"""Reference kernels of the linear algebra operators, in float64."""

from __future__ import annotations

import numpy as np

from .kernels import kernel


@kernel("matmul")
def matmul(a, b, *, out):
    # np.matmul treats the leading dimensions as broadcast batch dimensions,
    # as the spec does for ranks above 2 (both ranks are at least 2).
    return np.matmul(a, b)


@kernel("gemm")
def gemm(a, b, c=None, *, out, alpha, beta, a_transpose, b_transpose):
    # The spec's emulation: matmul(alpha * A, B) + beta * C, C broadcast to [M, N].
    if a_transpose:
        a = a.T
    if b_transpose:
        b = b.T
    result = np.matmul(alpha * a, b)
    if c is not None:
        result = result + beta * c
    return result
