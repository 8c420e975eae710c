"""Gradients of matmul and gemm against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(7)


@pytest.mark.parametrize(
    "shapes",
    [
        ([3, 4], [4, 2]),
        ([2, 3, 4], [4, 5]),
        ([3, 4], [2, 4, 2]),
        ([2, 1, 3, 4], [3, 4, 2]),
        ([1, 3, 2], [2, 2, 3]),
    ],
)
def test_matmul(shapes):
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    check_gradients(lambda bl, x, y: bl.matmul(x, y), {"a": a, "b": b})


@pytest.mark.parametrize("a_transpose", [False, True])
@pytest.mark.parametrize("b_transpose", [False, True])
def test_gemm_transposes(a_transpose, b_transpose):
    m, k, n = 3, 4, 2
    a = rng.standard_normal([k, m] if a_transpose else [m, k])
    b = rng.standard_normal([n, k] if b_transpose else [k, n])
    c = rng.standard_normal([m, n])
    check_gradients(
        lambda bl, x, y, z: bl.gemm(x, y, c=z, alpha=0.7, beta=-1.3, a_transpose=a_transpose, b_transpose=b_transpose),
        {"a": a, "b": b, "c": c},
    )


@pytest.mark.parametrize("c_shape", [None, [], [1], [2], [3, 1], [1, 2], [3, 2]])
def test_gemm_c_broadcast(c_shape):
    a = rng.standard_normal([3, 4])
    b = rng.standard_normal([4, 2])
    inputs = {"a": a, "b": b}
    if c_shape is None:
        check_gradients(lambda bl, x, y: bl.gemm(x, y, alpha=2.0), inputs)
        return
    inputs["c"] = rng.standard_normal(c_shape)
    check_gradients(lambda bl, x, y, z: bl.gemm(x, y, c=z, beta=0.5, b_transpose=False), inputs)


def test_gemm_defaults():
    a = rng.standard_normal([2, 3])
    b = rng.standard_normal([3, 4])
    c = rng.standard_normal([4])
    check_gradients(lambda bl, x, y, z: bl.gemm(x, y, c=z), {"a": a, "b": b, "c": c})
