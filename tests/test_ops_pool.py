"""Pooling operators (averagePool2d, l2Pool2d, maxPool2d): validation, shapes and results."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import webml

POOLS = ("average_pool2d", "l2_pool2d", "max_pool2d")


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, method, x, **options):
    builder = webml.MLGraphBuilder(context)
    x_op = operand(builder, "x", webml.dtypes.data_type_of(x.dtype), x.shape)
    graph = builder.build({"y": getattr(builder, method)(x_op, **options)})
    return context.compute(graph, {"x": x})["y"]


# -- an independent reference: one window at a time ---------------------------------


def reference_pool(method, x, window, padding=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), out_hw=None):
    """NCHW pooling over the input elements of each window (padding excluded)."""
    n, c, h, w = x.shape
    if out_hw is None:
        out_hw = [
            (size - (k - 1) * d - 1 + pb + pe) // s + 1
            for size, k, d, pb, pe, s in zip((h, w), window, dilations, padding[::2], padding[1::2], strides)
        ]
    y = np.zeros((n, c, *out_hw))
    for oh in range(out_hw[0]):
        for ow in range(out_hw[1]):
            rows = [oh * strides[0] - padding[0] + i * dilations[0] for i in range(window[0])]
            cols = [ow * strides[1] - padding[2] + j * dilations[1] for j in range(window[1])]
            rows = [r for r in rows if 0 <= r < h]
            cols = [q for q in cols if 0 <= q < w]
            values = x[:, :, rows][:, :, :, cols].astype(np.float64)
            if method == "max_pool2d":
                y[:, :, oh, ow] = values.max(axis=(2, 3))
            elif method == "average_pool2d":
                y[:, :, oh, ow] = values.mean(axis=(2, 3))
            else:
                y[:, :, oh, ow] = np.sqrt((values**2).sum(axis=(2, 3)))
    return y


RNG = np.random.default_rng(7)
X = RNG.uniform(-10, 10, (2, 3, 7, 6)).astype(np.float32)


@pytest.mark.parametrize("method", POOLS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"window_dimensions": [3, 2]},
        {"window_dimensions": [3, 3], "strides": [2, 2], "padding": [1, 0, 0, 1]},
        {"window_dimensions": [2, 3], "dilations": [2, 2], "padding": [1, 1, 2, 2]},
        {"window_dimensions": [3, 3], "strides": [2, 2], "padding": [1, 1, 1, 1], "output_shape_rounding": "ceil"},
        # The WPT revision's name for output_shape_rounding.
        {"window_dimensions": [3, 3], "strides": [2, 3], "rounding_type": "ceil"},
        {"window_dimensions": [4, 4], "strides": [2, 2], "padding": [1, 1, 1, 1], "output_sizes": [4, 3]},
    ],
)
def test_results_match_a_per_window_reference(context, method, options):
    y = compute(context, method, X, **options)
    rounding = options.get("output_shape_rounding", options.get("rounding_type", "floor"))
    window = options.get("window_dimensions", X.shape[2:])
    padding = options.get("padding", (0, 0, 0, 0))
    strides = options.get("strides", (1, 1))
    dilations = options.get("dilations", (1, 1))
    out_hw = options.get("output_sizes")
    if out_hw is None and rounding == "ceil":
        out_hw = [
            -(-(size - (k - 1) * d - 1 + pb + pe) // s) + 1
            for size, k, d, pb, pe, s in zip(X.shape[2:], window, dilations, padding[::2], padding[1::2], strides)
        ]
    expected = reference_pool(method, X, window, padding, strides, dilations, out_hw)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", POOLS)
def test_nhwc_is_nchw_transposed(context, method):
    options = {"window_dimensions": [3, 2], "strides": [2, 1], "padding": [1, 0, 1, 1]}
    nchw = compute(context, method, X, **options)
    nhwc = compute(context, method, np.ascontiguousarray(X.transpose(0, 2, 3, 1)), layout="nhwc", **options)
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))


def test_average_pool_excludes_padding_from_the_count(context):
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    # One 2x2 window per corner of the 1-padded 4x4 input: each holds one input element.
    y = compute(context, "average_pool2d", x, window_dimensions=[2, 2], strides=[2, 2], padding=[1, 1, 1, 1])
    np.testing.assert_array_equal(y, x)
    # Each 3x3 window of the 1-padded input holds all four elements: (1 + 2 + 3 + 4) / 4.
    y = compute(context, "average_pool2d", x, window_dimensions=[3, 3], padding=[1, 1, 1, 1])
    assert y.ravel().tolist() == [2.5] * 4


def test_l2_pool_is_the_root_of_the_sum_of_squares(context):
    x = np.array([3, -4, 12, 0], np.float32).reshape(1, 1, 2, 2)
    assert compute(context, "l2_pool2d", x).ravel().tolist() == [13.0]


def test_max_pool_takes_integers(context):
    x = np.array([[-5, 7], [100, -128]], np.int8).reshape(1, 1, 2, 2)
    y = compute(context, "max_pool2d", x, window_dimensions=[1, 2])
    assert y.dtype == np.int8 and y.ravel().tolist() == [7, 100]
    x = np.array([0, 4294967295, 7, 1], np.uint32).reshape(1, 1, 2, 2)
    assert compute(context, "max_pool2d", x, padding=[1, 0, 0, 0]).ravel().tolist() == [4294967295] * 2


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize("method", POOLS)
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"window_dimensions": [1, 1, 1]}, "window_dimensions"),
        ({"window_dimensions": [0, 2]}, "window_dimensions"),
        ({"window_dimensions": [-1, 2]}, "window_dimensions"),
        ({"padding": [1, 1]}, "padding"),
        ({"strides": [2]}, "strides"),
        ({"strides": [1, 0]}, "strides"),
        ({"dilations": [1, 1, 1]}, "dilations"),
        ({"dilations": [0, 1]}, "dilations"),
        ({"layout": "hwcn"}, "layout"),
        ({"output_shape_rounding": "round"}, "output_shape_rounding"),
        ({"rounding_type": "up"}, "rounding_type"),
        ({"rounding_type": "floor", "output_shape_rounding": "ceil"}, "rounding_type"),
        ({"output_sizes": [3, 3, 3]}, "output_sizes"),
        (
            {"window_dimensions": [2, 2], "strides": [2, 2], "padding": [2, 2, 2, 2], "output_sizes": [3, 3]},
            "output_sizes",
        ),
        ({"window_dimensions": [6, 3]}, "height"),
        ({"window_dimensions": [2, 3], "dilations": [1, 3]}, "width"),
        ({"padding": [2**32 - 1, 2**32 - 1, 0, 0]}, "height"),
    ],
)
def test_invalid_options_raise_type_error_naming_them(builder, method, options, named):
    x = operand(builder, "x", "float32", [1, 2, 5, 5])
    with pytest.raises(TypeError, match=rf"\[p\].*{named}"):
        getattr(builder, method)(x, label="p", **options)


@pytest.mark.parametrize("method", POOLS)
def test_input_must_be_4d(builder, method):
    with pytest.raises(TypeError, match=r"\[p\].*input rank 3"):
        getattr(builder, method)(operand(builder, "x", "float32", [2, 5, 5]), label="p")


@pytest.mark.parametrize("method", ["average_pool2d", "l2_pool2d"])
@pytest.mark.parametrize("data_type", ["int32", "uint8", "int64"])
def test_average_and_l2_take_floats_only(builder, method, data_type):
    with pytest.raises(TypeError, match=r"\[p\].*input data type"):
        getattr(builder, method)(operand(builder, "x", data_type, [1, 1, 2, 2]), label="p")


def test_padding_is_kept_with_output_sizes(builder):
    # The spec's step resetting padding when outputSizes exists contradicts WPT (see ops/pool.py).
    x = operand(builder, "x", "float32", [1, 3, 7, 7])
    options = {"window_dimensions": [4, 4], "padding": [1, 1, 1, 1], "strides": [2, 2]}
    assert builder.max_pool2d(x, output_sizes=[4, 4], **options).shape == [1, 3, 4, 4]
    assert builder.max_pool2d(x, output_sizes=[3, 3], **options).shape == [1, 3, 3, 3]


# -- shape properties ---------------------------------------------------------------


def spec_output_size(size, window, begin, end, stride, dilation):
    """The spec's calculate conv output size, as a rational number."""
    return (size - ((window - 1) * dilation + 1) + begin + end) / stride + 1


@st.composite
def pool_arguments(draw):
    """Random valid pool arguments: a window that fits the padded input."""
    layout = draw(st.sampled_from(["nchw", "nhwc"]))
    batches, channels = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    spatial, window, padding, strides, dilations = [], [], [], [], []
    for _ in range(2):
        size = draw(st.integers(1, 40))
        begin, end = draw(st.integers(0, 5)), draw(st.integers(0, 5))
        dilation = draw(st.integers(1, 3))
        reach = size + begin + end  # the effective window must fit
        k = draw(st.integers(1, (reach - 1) // dilation + 1))
        spatial.append(size)
        window.append(k)
        padding += [begin, end]
        strides.append(draw(st.integers(1, 6)))
        dilations.append(dilation)
    shape = [batches, channels, *spatial] if layout == "nchw" else [batches, *spatial, channels]
    return shape, layout, window, padding, strides, dilations


@settings(max_examples=50, deadline=None)
@given(pool_arguments(), st.sampled_from(POOLS), st.sampled_from(["floor", "ceil", "sizes-floor", "sizes-ceil"]))
def test_output_shape_follows_the_spec_formula(context, arguments, method, rounding):
    shape, layout, window, padding, strides, dilations = arguments
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float16", shape)
    exact = [
        spec_output_size(
            shape[2 + d if layout == "nchw" else 1 + d],
            window[d],
            *padding[2 * d : 2 * d + 2],
            strides[d],
            dilations[d],
        )
        for d in (0, 1)
    ]
    round_ = math.ceil if rounding.endswith("ceil") else math.floor
    expected_hw = [round_(v) for v in exact]
    options = {"window_dimensions": window, "padding": padding, "strides": strides, "dilations": dilations}
    if rounding.startswith("sizes"):
        options["output_sizes"] = expected_hw
        # The rounding is ignored when output_sizes is given.
        options["output_shape_rounding"] = "ceil" if rounding == "sizes-floor" else "floor"
    else:
        options["output_shape_rounding"] = rounding
    y = getattr(builder, method)(x, layout=layout, **options)
    if layout == "nchw":
        expected = [shape[0], shape[1], *expected_hw]
    else:
        expected = [shape[0], *expected_hw, shape[3]]
    assert (y.data_type, y.shape) == ("float16", expected)


@settings(max_examples=50, deadline=None)
@given(pool_arguments(), st.sampled_from(POOLS), st.data())
def test_wrong_output_sizes_raise(context, arguments, method, data):
    shape, layout, window, padding, strides, dilations = arguments
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float32", shape)
    spatial = shape[2:] if layout == "nchw" else shape[1:3]
    allowed = set()
    for round_ in (math.floor, math.ceil):
        allowed.add(
            tuple(
                round_(spec_output_size(spatial[d], window[d], *padding[2 * d : 2 * d + 2], strides[d], dilations[d]))
                for d in (0, 1)
            )
        )
    sizes = data.draw(st.tuples(st.integers(1, 50), st.integers(1, 50)).filter(lambda s: s not in allowed))
    with pytest.raises(TypeError, match=r"\[bad\].*output_sizes"):
        getattr(builder, method)(
            x,
            layout=layout,
            window_dimensions=window,
            padding=padding,
            strides=strides,
            dilations=dilations,
            output_sizes=list(sizes),
            label="bad",
        )


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(POOLS),
    st.sampled_from(["window_dimensions", "strides", "dilations", "padding"]),
    st.lists(st.integers(0, 4), min_size=0, max_size=6),
)
def test_invalid_option_lists_raise_naming_the_option(context, method, name, values):
    length = 4 if name == "padding" else 2
    valid = len(values) == length and (name == "padding" or 0 not in values)
    if name == "window_dimensions" and valid:
        valid = all(v <= 8 for v in values)  # the input is 8x8: a larger window does not fit
    # A 2x2 window fits the 8x8 input with any dilation up to 4 (and any padding).
    options = {"window_dimensions": [2, 2], name: values}
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float32", [1, 1, 8, 8])
    if valid:
        getattr(builder, method)(x, **options)
        return
    with pytest.raises(TypeError, match=rf"\[bad\].*{name}"):
        getattr(builder, method)(x, label="bad", **options)
