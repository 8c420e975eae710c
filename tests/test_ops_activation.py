"""Activation operators: validation per the spec's method steps and reference results."""

from __future__ import annotations

import math

import numpy as np
import pytest

import webml

X = np.array([[-6.5, -3.0, -1.25, -0.0], [0.0, 0.5, 2.75, 7.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, builder, method, arrays, *args, **options):
    """Build ``method`` over inputs named a, b from ``arrays`` (then ``args``) and run it."""
    names = "ab"
    ops = [operand(builder, n, str(a.dtype), a.shape) for n, a in zip(names, arrays)]
    out = getattr(builder, method)(*ops, *args, **options)
    graph = builder.build({"out": out})
    return context.compute(graph, dict(zip(names, arrays)))["out"]


def rounded(values, dtype=np.float32):
    return np.asarray(values, dtype=np.float64).astype(dtype)


# -- results against independent float64 formulas ---------------------------------

_x = X.astype(np.float64)
_erf = np.vectorize(math.erf)

FORMULAS = [
    ("elu", {}, np.where(_x > 0, _x, np.exp(_x) - 1)),
    ("elu", {"alpha": 0.5}, np.where(_x > 0, _x, 0.5 * (np.exp(_x) - 1))),
    ("gelu", {}, 0.5 * _x * (1 + _erf(_x / math.sqrt(2)))),
    ("hard_sigmoid", {}, np.clip(0.2 * _x + 0.5, 0, 1)),
    ("hard_sigmoid", {"alpha": 0.5, "beta": 0.25}, np.clip(0.5 * _x + 0.25, 0, 1)),
    ("hard_swish", {}, _x * np.clip(_x + 3, 0, 6) / 6),
    ("leaky_relu", {}, np.where(_x > 0, _x, 0.01 * _x)),
    ("leaky_relu", {"alpha": 2.0}, np.where(_x > 0, _x, 2 * _x)),
    ("linear", {}, _x),
    ("linear", {"alpha": -2.0, "beta": 0.5}, -2 * _x + 0.5),
    ("relu", {}, np.where(_x > 0, _x, 0)),
    ("sigmoid", {}, 1 / (1 + np.exp(-_x))),
    ("softplus", {}, np.log1p(np.exp(_x))),
    ("softsign", {}, _x / (1 + np.abs(_x))),
    ("tanh", {}, np.tanh(_x)),
]


@pytest.mark.parametrize("method, options, expected", FORMULAS, ids=[f"{m}{o}" for m, o, _ in FORMULAS])
def test_results(context, builder, method, options, expected):
    out = compute(context, builder, method, [X], **options)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out, rounded(expected), rtol=2e-7, atol=1e-30)


def test_float16_results(context, builder):
    x = X.astype(np.float16)
    out = compute(context, builder, "sigmoid", [x])
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, rounded(1 / (1 + np.exp(-x.astype(np.float64))), np.float16))


def test_softplus_large_input_is_exact(context, builder):
    # ln(1 + e^x) == x in float32 for large x, where e^x would overflow.
    x = np.array([100.0, 1000.0, -1000.0], np.float32)
    np.testing.assert_array_equal(compute(context, builder, "softplus", [x]), [100.0, 1000.0, 0.0])


def test_options_are_cast_to_the_input_type(context, builder):
    # alpha = 70000 is infinite in float16, though 0.5 * 70000 is not.
    x = np.array([0.5], np.float16)
    out = compute(context, builder, "linear", [x], alpha=70000.0)
    assert np.isposinf(out[0])


def test_relu_integers(context, builder):
    x = np.array([-128, -1, 0, 1, 127], np.int8)
    out = compute(context, builder, "relu", [x])
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 127])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_softmax(context, builder, axis):
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(2, 3, 4)
    e = np.exp(x.astype(np.float64))
    expected = e / e.sum(axis=axis, keepdims=True)
    out = compute(context, builder, "softmax", [x], axis)
    np.testing.assert_allclose(out, rounded(expected), rtol=2e-7)


def test_softmax_large_values_do_not_overflow(context, builder):
    x = np.array([1000.0, 1000.0], np.float32)
    np.testing.assert_array_equal(compute(context, builder, "softmax", [x], 0), [0.5, 0.5])


# -- clamp ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, X),
        ({"min_value": -1}, np.maximum(X, -1)),
        ({"max_value": 0.5}, np.minimum(X, 0.5)),
        ({"min_value": -2, "max_value": 2}, np.clip(X, -2, 2)),
        ({"min_value": -math.inf, "max_value": math.inf}, X),
        ({"min_value": 1, "max_value": 1}, np.ones_like(X)),
    ],
)
def test_clamp(context, builder, options, expected):
    np.testing.assert_array_equal(compute(context, builder, "clamp", [X], **options), expected)


def test_clamp_keeps_nan(context, builder):
    x = np.array([np.nan, 5.0], np.float32)
    out = compute(context, builder, "clamp", [x], min_value=0, max_value=1)
    np.testing.assert_array_equal(out, [np.nan, 1.0])


@pytest.mark.parametrize(
    "data_type, values, options, expected",
    [
        ("int8", [-128, -3, 0, 127], {"min_value": -2, "max_value": 125}, [-2, -2, 0, 125]),
        ("uint8", [0, 5, 255], {"min_value": 5, "max_value": 200}, [5, 5, 200]),
        ("uint32", [0, 2**32 - 1], {"min_value": 5, "max_value": 2**32 - 5}, [5, 2**32 - 5]),
        # Exact in 64 bits: these values are not representable in float64.
        (
            "int64",
            [-(2**63), 2**62 + 1, 2**63 - 1],
            {"min_value": -(2**62) - 1, "max_value": 2**63 - 3},
            [-(2**62) - 1, 2**62 + 1, 2**63 - 3],
        ),
        ("uint64", [0, 2**64 - 1], {"min_value": 2**63 + 1}, [2**63 + 1, 2**64 - 1]),
        # Bounds are cast (saturated) to the input type; NaN casts to 0.
        ("int8", [-128, 127], {"min_value": -1000, "max_value": 1000.0}, [-128, 127]),
        ("uint8", [0, 9], {"min_value": math.nan}, [0, 9]),
        ("int32", [-5, 5], {"min_value": -math.inf, "max_value": 2.6}, [-5, 3]),
    ],
)
def test_clamp_integers(context, builder, data_type, values, options, expected):
    x = np.array(values, webml.dtypes.numpy_dtype(data_type))
    out = compute(context, builder, "clamp", [x], **options)
    assert out.dtype == x.dtype
    assert out.tolist() == expected


def test_clamp_bounds_compare_after_the_cast(context, builder):
    # 200 and 300 both saturate to 127 in int8: equal, so valid.
    x = operand(builder, "x", "int8", [2])
    assert builder.clamp(x, min_value=200, max_value=300).shape == [2]


def test_clamp_min_greater_than_max(builder):
    x = operand(builder, "x", "float32", [2])
    with pytest.raises(TypeError, match=r"\[c1\].*min_value"):
        builder.clamp(x, min_value=3, max_value=1, label="c1")


@pytest.mark.parametrize("bad", ["1", [1], object()])
def test_clamp_bound_must_be_a_number(builder, bad):
    x = operand(builder, "x", "float32", [2])
    with pytest.raises(TypeError, match=r"\[c2\].*min_value"):
        builder.clamp(x, min_value=bad, label="c2")


# -- validation --------------------------------------------------------------------

SCALAR_OPTIONS = [
    ("elu", "alpha"),
    ("hard_sigmoid", "alpha"),
    ("hard_sigmoid", "beta"),
    ("leaky_relu", "alpha"),
    ("linear", "alpha"),
    ("linear", "beta"),
]


@pytest.mark.parametrize("method, name", SCALAR_OPTIONS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400, "0.5"])
def test_double_options_must_be_finite_numbers(builder, method, name, value):
    x = operand(builder, "x", "float32", [2])
    with pytest.raises(TypeError, match=rf"\[lbl\] .*{name}"):
        getattr(builder, method)(x, **{name: value}, label="lbl")


@pytest.mark.parametrize(
    "method",
    "elu gelu hard_sigmoid hard_swish leaky_relu linear sigmoid softplus softsign tanh".split(),
)
@pytest.mark.parametrize("data_type", ["int32", "int8", "uint8"])
def test_float_only_operators_reject_integers(builder, method, data_type):
    x = operand(builder, "x", data_type, [2])
    with pytest.raises(TypeError, match=r"\[lbl\] .*input data type"):
        getattr(builder, method)(x, label="lbl")


@pytest.mark.parametrize("method", ["relu", "prelu"])
@pytest.mark.parametrize("data_type", ["uint32", "uint8", "uint64"])
def test_relu_and_prelu_reject_unsigned(builder, method, data_type):
    x = operand(builder, "x", data_type, [2])
    args = [x, x] if method == "prelu" else [x]
    with pytest.raises(TypeError, match=r"\[lbl\] .*input data type"):
        getattr(builder, method)(*args, label="lbl")


@pytest.mark.parametrize("data_type", ["int64", "int32", "int8", "float16"])
def test_relu_accepts_signed_types(builder, data_type):
    y = builder.relu(operand(builder, "x", data_type, [2, 3]))
    assert (y.data_type, y.shape) == (data_type, [2, 3])


@pytest.mark.parametrize("shape", [[], [1], [2, 3, 4, 5, 6]])
def test_output_is_a_copy_of_the_input_descriptor(builder, shape):
    y = builder.hard_swish(operand(builder, "x", "float16", shape))
    assert (y.data_type, y.shape) == ("float16", shape)


def test_options_are_keyword_only(builder):
    x = operand(builder, "x", "float32", [2])
    with pytest.raises(TypeError):
        builder.elu(x, 0.5)


# -- prelu -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "input_shape, slope_shape, output_shape",
    [
        ([3, 2, 5], [3, 2, 5], [3, 2, 5]),
        ([3, 2, 5], [5], [3, 2, 5]),
        ([3, 2, 5], [], [3, 2, 5]),
        ([3, 2, 5], [2, 1], [3, 2, 5]),
        # The spec broadcasts bidirectionally: the output takes the larger shape.
        ([3, 1], [1, 4], [3, 4]),
        ([5], [2, 5], [2, 5]),
    ],
)
def test_prelu_shapes(builder, input_shape, slope_shape, output_shape):
    x, s = operand(builder, "x", "float32", input_shape), operand(builder, "s", "float32", slope_shape)
    y = builder.prelu(x, s)
    assert (y.data_type, y.shape) == ("float32", output_shape)


def test_prelu_results(context, builder):
    slope = np.array([0.5, -2.0, 0.0, 3.0], np.float32)
    out = compute(context, builder, "prelu", [X, slope])
    expected = np.maximum(_x, 0) + slope.astype(np.float64) * np.minimum(_x, 0)
    np.testing.assert_array_equal(out, rounded(expected))


def test_prelu_integers(context, builder):
    x = np.array([-100, -3, 0, 5, -(2**62)], np.int64)
    slope = np.array([2, -3, 7, 9, 4], np.int64)
    out = compute(context, builder, "prelu", [x, slope])
    # int64 products saturate rather than wrap.
    assert out.tolist() == [-200, 9, 0, 5, -(2**63)]


def test_prelu_not_broadcastable(builder):
    x, s = operand(builder, "x", "float32", [3, 2, 5]), operand(builder, "s", "float32", [2])
    with pytest.raises(TypeError, match=r"\[p\] .*slope shape \[2\]"):
        builder.prelu(x, s, label="p")


def test_prelu_type_mismatch(builder):
    x, s = operand(builder, "x", "float32", [2]), operand(builder, "s", "float16", [2])
    with pytest.raises(TypeError, match=r"\[p\] .*slope data type float16"):
        builder.prelu(x, s, label="p")


# -- softmax validation ---------------------------------------------------------------


def test_softmax_axis_is_required(builder):
    with pytest.raises(TypeError, match="axis"):
        builder.softmax(operand(builder, "x", "float32", [4, 3]))


@pytest.mark.parametrize("axis", [2, -1, float("nan"), float("inf"), "0", 2**32])
def test_softmax_bad_axis(builder, axis):
    x = operand(builder, "x", "float32", [4, 3])
    with pytest.raises(TypeError, match=r"\[s\] .*axis"):
        builder.softmax(x, axis, label="s")


def test_softmax_rejects_scalars_and_integers(builder):
    with pytest.raises(TypeError, match=r"input rank 0"):
        builder.softmax(operand(builder, "x", "float32", []), 0)
    with pytest.raises(TypeError, match=r"input data type int32"):
        builder.softmax(operand(builder, "y", "int32", [3]), 0)
