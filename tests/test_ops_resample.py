"""resample2d: validation, shapes and results."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import webml


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, x, **options):
    builder = webml.MLGraphBuilder(context)
    x_op = operand(builder, "x", webml.dtypes.data_type_of(x.dtype), x.shape)
    graph = builder.build({"y": builder.resample2d(x_op, **options)})
    return context.compute(graph, {"x": x})["y"]


# -- an independent reference: the spec's formulas, one output element at a time ---


def source_coordinate(o, in_size, out_size):
    """The spec's clamped input coordinate, as an exact fraction."""
    scale = Fraction(out_size, in_size)
    return min(max((o + Fraction(1, 2)) / scale - Fraction(1, 2), 0), in_size - 1)


def reference_resample(x, mode, axes, out_sizes):
    """Resample the last two axes (after moving ``axes`` there) per the spec's pseudo-code."""
    moved = np.moveaxis(x.astype(np.float64), axes, (2, 3))
    n, c, h, w = moved.shape
    out_h, out_w = out_sizes
    y = np.zeros((n, c, out_h, out_w))
    for oy in range(out_h):
        for ox in range(out_w):
            cy, cx = source_coordinate(oy, h, out_h), source_coordinate(ox, w, out_w)
            if mode == "nearest-neighbor":
                y[:, :, oy, ox] = moved[:, :, math.ceil(cy - Fraction(1, 2)), math.ceil(cx - Fraction(1, 2))]
                continue
            y0, y1, x0, x1 = math.floor(cy), math.ceil(cy), math.floor(cx), math.ceil(cx)
            ty, tx = float(cy - y0), float(cx - x0)
            vy0 = moved[:, :, y0, x0] * (1 - tx) + moved[:, :, y0, x1] * tx
            vy1 = moved[:, :, y1, x0] * (1 - tx) + moved[:, :, y1, x1] * tx
            y[:, :, oy, ox] = vy0 * (1 - ty) + vy1 * ty
    return np.moveaxis(y, (2, 3), axes)


X = np.random.default_rng(3).uniform(-5, 5, (2, 3, 4, 5)).astype(np.float32)


@pytest.mark.parametrize("mode", ["nearest-neighbor", "linear"])
@pytest.mark.parametrize(
    ("axes", "sizes"),
    [
        ((2, 3), (7, 3)),
        ((2, 3), (4, 5)),
        ((3, 2), (9, 2)),
        ((1, 2), (5, 1)),
        ((0, 3), (3, 11)),
        ((3, 0), (1, 1)),
    ],
)
def test_results_match_the_spec_formulas(context, mode, axes, sizes):
    y = compute(context, X, mode=mode, sizes=list(sizes), axes=list(axes))
    expected = reference_resample(X, mode, axes, sizes)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_nearest_ties_take_the_smaller_index_and_the_scale_is_the_size_ratio(context):
    x = np.array([10, 20, 30], np.float32).reshape(1, 1, 1, 3)
    # floor(3 * 1.5) = 4 outputs; the coordinates use 4 / 3, not 1.5 (as WPT's half-pixel cases).
    assert compute(context, x, scales=[1, 1.5]).ravel().tolist() == [10, 20, 20, 30]
    assert compute(context, x[..., :2], sizes=[1, 3]).ravel().tolist() == [10, 10, 20]


def test_linear_upsampling_of_the_spec_note(context):
    x = np.array([[0, 1, 2, 3], [0, 1, 2, 3], [12, 13, 14, 15], [12, 13, 14, 15]], np.float32).reshape(1, 1, 4, 4)
    y = compute(context, x, mode="linear", scales=[2, 2])
    assert y.shape == (1, 1, 8, 8)
    # Along a row: 0, 0.25, 0.75, 1.25, ... clamped at both ends.
    np.testing.assert_allclose(y[0, 0, 0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    np.testing.assert_allclose(y[0, 0, :, 0], [0, 0, 0, 3, 9, 12, 12, 12])


@pytest.mark.parametrize("data_type", ["uint8", "int8"])
def test_integer_types(context, data_type):
    x = np.array([0, 100, 50, 1], getattr(np, data_type)).reshape(1, 1, 2, 2)
    y = compute(context, x, sizes=[2, 4])
    assert y.dtype == x.dtype and y[0, 0, 0].tolist() == [0, 0, 100, 100]
    # Linear rounds to the nearest integer: 0.25 * 100 = 25, 0.75 * 100 = 75.
    assert compute(context, x, mode="linear", sizes=[2, 4])[0, 0, 0].tolist() == [0, 25, 75, 100]


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"mode": "cubic"}, "mode"),
        ({"scales": [1, 1, 2, 2]}, "scales"),
        ({"scales": [1, -2]}, "scales"),
        ({"scales": [0, 2]}, "scales"),
        ({"scales": [1, float("nan")]}, r"scales\[1\]"),
        ({"scales": [float("inf"), 1]}, r"scales\[0\]"),
        ({"sizes": [1, 1, 4, 6]}, "sizes"),
        ({"sizes": [0, 1]}, "sizes"),
        ({"sizes": [2**32, 2**32]}, r"sizes\[0\]"),
        ({"axes": [0, 1, 2]}, "axes"),
        ({"axes": [3, 4]}, "axes"),
        ({"axes": [0, 0]}, "axes"),
        ({"scales": [4294967295, 1]}, r"scales\[0\]"),
        ({"scales": [0.02, 0.8]}, r"scales\[0\]"),
        ({"scales": [0.7, 0.1]}, r"scales\[1\]"),
    ],
)
def test_invalid_options_raise_type_error_naming_them(builder, options, named):
    x = operand(builder, "x", "float32", [1, 1, 2, 4])
    with pytest.raises(TypeError, match=rf"\[r\].*{named}"):
        builder.resample2d(x, label="r", **options)


@pytest.mark.parametrize(("data_type", "shape"), [("int32", [1, 1, 2, 2]), ("float32", [2, 4]), ("float32", [1] * 5)])
def test_input_type_and_rank(builder, data_type, shape):
    with pytest.raises(TypeError, match=r"\[r\].*input"):
        builder.resample2d(operand(builder, "x", data_type, shape), label="r")


def test_scales_are_webidl_floats(builder):
    # float32(0.7) = 0.69999998...: floor(10 * 0.7) is 6, not 7.
    x = operand(builder, "x", "float32", [1, 1, 10, 10])
    assert builder.resample2d(x, scales=[0.7, 1.1]).shape == [1, 1, 6, 11]


def test_sizes_override_scales(builder):
    x = operand(builder, "x", "float16", [1, 2, 3, 2])
    y = builder.resample2d(x, axes=[1, 2], sizes=[3, 4], scales=[99, 99])
    assert (y.data_type, y.shape) == ("float16", [1, 3, 4, 2])


# -- shape properties ---------------------------------------------------------------

SHAPES = st.lists(st.integers(1, 12), min_size=4, max_size=4)
AXES = st.lists(st.integers(0, 3), min_size=2, max_size=2, unique=True)


@settings(max_examples=50, deadline=None)
@given(SHAPES, AXES, st.lists(st.floats(0.0625, 8, width=32), min_size=2, max_size=2), st.data())
def test_output_shape_follows_the_spec_formula(context, shape, axes, scales, data):
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float32", shape)
    use_sizes = data.draw(st.booleans())
    sizes = data.draw(st.lists(st.integers(1, 30), min_size=2, max_size=2)) if use_sizes else None
    expected = list(shape)
    for i, axis in enumerate(axes):
        expected[axis] = sizes[i] if use_sizes else math.floor(shape[axis] * Fraction(scales[i]))
    if min(expected) < 1:
        with pytest.raises(TypeError, match=r"\[r\].*scales"):
            builder.resample2d(x, scales=scales, sizes=sizes, axes=axes, label="r")
        return
    y = builder.resample2d(
        x, scales=scales, sizes=sizes, axes=axes, mode=data.draw(st.sampled_from(["nearest-neighbor", "linear"]))
    )
    assert (y.data_type, y.shape) == ("float32", expected)


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(["scales", "sizes", "axes"]),
    st.lists(st.integers(-1, 5), min_size=0, max_size=4),
)
def test_invalid_option_lists_raise_naming_the_option(context, name, values):
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float32", [1, 1, 2, 4])
    if name == "scales":
        valid = len(values) == 2 and min(values) > 0
    elif name == "sizes":
        valid = len(values) == 2 and min(values) > 0
    else:
        valid = len(values) == 2 and len(set(values)) == 2 and all(0 <= v < 4 for v in values)
    if valid:
        builder.resample2d(x, **{name: values})
        return
    with pytest.raises(TypeError, match=rf"\[bad\].*{name}"):
        builder.resample2d(x, label="bad", **{name: values})
