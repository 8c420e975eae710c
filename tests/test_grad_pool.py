"""Gradients of averagePool2d, l2Pool2d and maxPool2d against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from gradcheck import check_gradients
from webml.train import grad

rng = np.random.default_rng(3)

# (input nchw, options): overlapping windows, padding, dilations, ceil rounding, unread trailing rows.
CASES = [
    ([1, 2, 4, 4], {"window_dimensions": [2, 2], "strides": [2, 2]}),
    ([2, 2, 4, 5], {"window_dimensions": [3, 3], "padding": [1, 1, 1, 1]}),
    ([1, 2, 6, 5], {"window_dimensions": [2, 3], "strides": [2, 1], "dilations": [2, 1], "padding": [0, 1, 1, 0]}),
    ([1, 1, 5, 5], {"window_dimensions": [2, 2], "strides": [2, 2], "output_shape_rounding": "ceil"}),
    ([1, 2, 6, 7], {"window_dimensions": [3, 2], "strides": [2, 3]}),
    ([1, 3, 3, 4], {}),  # one global window
]


@pytest.mark.parametrize("op", ["average_pool2d", "l2_pool2d", "max_pool2d"])
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_pool(op, case, layout):
    shape, options = CASES[case]
    x = rng.standard_normal(shape)
    if layout == "nhwc":
        x = x.transpose(0, 2, 3, 1).copy()
    check_gradients(lambda b, x: getattr(b, op)(x, layout=layout, **options), {"x": x})


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_max_pool2d_ties_go_to_the_first(layout):
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 2.0, 2.0], [5.0, 5.0, 2.0, 2.0]]]])
    # (0, 1) is the first maximum of windows 0 and 1 (1 + 1), (0, 2) of window 2 (its 3),
    # (2, 0) of window 0 (four 5s), (2, 1) of window 1.
    expected = np.array([[[[0.0, 2.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    if layout == "nhwc":
        x, expected = x.transpose(0, 2, 3, 1), expected.transpose(0, 2, 3, 1)
    xi = b.input("x", {"dataType": "float32", "shape": list(x.shape)})
    # Overlapping windows along the width: [0:2], [1:3], [2:4] of rows [0:2] and [2:4].
    y = b.max_pool2d(xi, window_dimensions=[2, 2], strides=[2, 1], layout=layout)
    weights = np.array([[[[1.0, 1.0, 5.0], [3.0, 4.0, 0.0]]]])
    weights = weights.transpose(0, 2, 3, 1) if layout == "nhwc" else weights
    w = b.constant({"dataType": "float32", "shape": list(weights.shape)}, weights.astype(np.float32))
    (dx,) = grad(b, b.reduce_sum(b.mul(y, w)), [xi])
    result = ctx.compute(b.build({"dx": dx}), {"x": x})["dx"]
    np.testing.assert_array_equal(result, expected)
