"""Gradients of quantizeLinear and dequantizeLinear: quantization stops them (a straight-through
sum stays exact), dequantizeLinear's scale gets its finite-difference-checked gradient."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from gradcheck import check_gradients
from webml.train import grad

rng = np.random.default_rng(7)


def test_quantize_stops_gradients():
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    x = b.input("x", {"dataType": "float32", "shape": [2]})
    scale = b.constant({"dataType": "float32", "shape": [2]}, np.array([0.5, 0.5], np.float32))
    zero = b.constant({"dataType": "int8", "shape": [2]}, np.array([0, 0], np.int8))
    y = b.dequantize_linear(b.quantize_linear(x, scale, zero), scale, zero)
    (dx,) = grad(b, b.reduce_sum(b.add(y, x)), [x])
    graph = b.build({"dx": dx, "y": y})
    np.testing.assert_array_equal(ctx.compute(graph, {"x": np.array([1.0, 2.0])})["dx"], [1.0, 1.0])



@pytest.mark.parametrize(("xshape", "sshape"), [([2, 6], [2, 3]), ([4, 3], [1, 3]), ([2, 4, 2], [2, 2, 1]), ([3], [1])])
def test_dequantize_linear_scale(xshape, sshape):
    q = rng.integers(-5, 6, xshape).astype(np.int8)
    zero_point = rng.integers(-2, 3, sshape).astype(np.int8)

    def build(b, scale):
        xq = b.constant({"dataType": "int8", "shape": xshape}, q)
        zp = b.constant({"dataType": "int8", "shape": sshape}, zero_point)
        return b.dequantize_linear(xq, scale, zp)

    check_gradients(build, {"scale": rng.uniform(0.5, 1.5, sshape)})
