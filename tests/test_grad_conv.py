"""Gradients of conv2d and convTranspose2d against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(2)

INPUT_FROM_NCHW = {"nchw": (0, 1, 2, 3), "nhwc": (0, 2, 3, 1)}
CONV2D_FILTER_FROM_OIHW = {"oihw": (0, 1, 2, 3), "hwio": (2, 3, 1, 0), "ohwi": (0, 2, 3, 1), "ihwo": (1, 2, 3, 0)}
CONV_TRANSPOSE2D_FILTER_FROM_IOHW = {"iohw": (0, 1, 2, 3), "hwoi": (2, 3, 1, 0), "ohwi": (1, 2, 3, 0)}

# (input nchw, filter oihw / iohw, options): groups, depthwise, strides, dilations, padding, floor-dropped rows.
CONV2D_CASES = [
    ([1, 2, 5, 5], [3, 2, 3, 3], {}),
    ([2, 2, 4, 5], [2, 2, 2, 3], {"padding": [1, 0, 2, 1]}),
    ([1, 2, 7, 6], [2, 2, 3, 2], {"strides": [2, 3], "padding": [0, 1, 1, 0]}),  # unread trailing rows
    ([1, 2, 7, 7], [2, 2, 2, 2], {"dilations": [2, 3], "strides": [2, 1]}),
    ([1, 4, 5, 4], [6, 2, 3, 2], {"groups": 2, "padding": [1, 1, 0, 1]}),
    ([2, 3, 5, 5], [3, 1, 3, 3], {"groups": 3, "strides": [2, 2], "padding": [1, 1, 1, 1]}),  # depthwise
]


# Every case in nchw/oihw and nhwc/hwio; the other filter layouts on a plain and a grouped case.
CONV2D_RUNS = [
    *((case, layouts) for case in range(len(CONV2D_CASES)) for layouts in (("nchw", "oihw"), ("nhwc", "hwio"))),
    *((case, layouts) for case in (0, 4) for layouts in (("nhwc", "ohwi"), ("nchw", "ihwo"))),
]


@pytest.mark.parametrize(("case", "layouts"), CONV2D_RUNS)
def test_conv2d(case, layouts):
    xshape, wshape, options = CONV2D_CASES[case]
    layout, filter_layout = layouts
    x = rng.standard_normal(xshape).transpose(INPUT_FROM_NCHW[layout])
    w = rng.standard_normal(wshape).transpose(CONV2D_FILTER_FROM_OIHW[filter_layout])
    bias = rng.standard_normal(wshape[0])
    opts = {**options, "input_layout": layout, "filter_layout": filter_layout}
    check_gradients(
        lambda b, x, w, bias: b.conv2d(x, w, bias=bias, **opts),
        {"x": x.copy(), "w": w.copy(), "bias": bias},
    )


def test_conv2d_without_bias():
    x = rng.standard_normal([1, 2, 4, 4])
    w = rng.standard_normal([2, 2, 2, 2])
    check_gradients(lambda b, x, w: b.conv2d(x, w, strides=[2, 2]), {"x": x, "w": w})


# (input nchw, filter iohw, options)
CONV_TRANSPOSE2D_CASES = [
    ([1, 2, 3, 3], [2, 3, 3, 3], {}),
    ([1, 2, 3, 4], [2, 2, 2, 3], {"strides": [2, 3], "padding": [1, 0, 0, 2]}),
    ([1, 2, 3, 3], [2, 2, 2, 2], {"strides": [2, 2], "output_padding": [1, 1]}),
    (
        [1, 2, 3, 3],
        [2, 1, 3, 2],
        {"dilations": [2, 1], "strides": [1, 2], "output_sizes": [6, 5], "padding": [0, 1, 1, 1]},
    ),
    ([2, 4, 3, 3], [4, 2, 2, 2], {"groups": 2, "strides": [2, 1], "padding": [1, 1, 0, 0]}),
]


@pytest.mark.parametrize("case", range(len(CONV_TRANSPOSE2D_CASES)))
@pytest.mark.parametrize("layouts", [("nchw", "iohw"), ("nhwc", "hwoi"), ("nhwc", "ohwi")])
def test_conv_transpose2d(case, layouts):
    xshape, wshape, options = CONV_TRANSPOSE2D_CASES[case]
    layout, filter_layout = layouts
    x = rng.standard_normal(xshape).transpose(INPUT_FROM_NCHW[layout])
    w = rng.standard_normal(wshape).transpose(CONV_TRANSPOSE2D_FILTER_FROM_IOHW[filter_layout])
    groups = options.get("groups", 1)
    bias = rng.standard_normal(wshape[1] * groups)
    opts = {**options, "input_layout": layout, "filter_layout": filter_layout}
    check_gradients(
        lambda b, x, w, bias: b.conv_transpose2d(x, w, bias=bias, **opts),
        {"x": x.copy(), "w": w.copy(), "bias": bias},
    )
