"""Normalization operators: validation per the spec's method steps and reference results."""

from __future__ import annotations

import math

import numpy as np
import pytest

import webml

RNG = np.random.default_rng(7)
X = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, builder, method, inputs, *args, **options):
    """Run ``method`` on operands named by ``inputs`` (name -> array); string args/options name those operands."""
    ops = {n: operand(builder, n, str(a.dtype), a.shape) for n, a in inputs.items()}
    args = [ops[a] if isinstance(a, str) else a for a in args]
    options = {k: ops[v] if k in ("scale", "bias") else v for k, v in options.items()}
    out = getattr(builder, method)(*args, **options)
    graph = builder.build({"out": out})
    return context.compute(graph, inputs)["out"]


def normalize(x, mean, variance, epsilon, scale=1.0, bias=0.0):
    """An independent float64 formula: scale * (x - mean) / sqrt(variance + epsilon) + bias."""
    return scale * (x - mean) / np.sqrt(variance + epsilon) + bias


def f64(a):
    return np.asarray(a, np.float64)


# -- results against independent float64 formulas ---------------------------------


@pytest.mark.parametrize("axis", [0, 1, 3])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_normalization(context, builder, axis, affine):
    n = X.shape[axis]
    mean = RNG.normal(size=n).astype(np.float32)
    variance = RNG.uniform(0.5, 2.0, size=n).astype(np.float32)
    scale = RNG.normal(size=n).astype(np.float32)
    bias = RNG.normal(size=n).astype(np.float32)
    inputs = {"x": X, "m": mean, "v": variance}
    options = {"axis": axis, "epsilon": 1e-3}
    if affine:
        inputs |= {"s": scale, "b": bias}
        options |= {"scale": "s", "bias": "b"}
    out = compute(context, builder, "batch_normalization", inputs, "x", "m", "v", **options)

    shape = [1] * 4
    shape[axis] = n

    def per_feature(a):
        return f64(a).reshape(shape)

    eps = float(np.float32(1e-3))
    expected = normalize(f64(X), per_feature(mean), per_feature(variance), eps)
    if affine:
        expected = normalize(
            f64(X), per_feature(mean), per_feature(variance), eps, per_feature(scale), per_feature(bias)
        )
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_batch_normalization_hand_computed(context, builder):
    # (x - 1) / sqrt(3 + 1) * 2 + 0.5 with epsilon 1, on a 1-D input (axis 0).
    x = np.array([1.0, 5.0, -3.0], np.float32)
    one = np.ones(3, np.float32)
    out = compute(
        context,
        builder,
        "batch_normalization",
        {"x": x, "m": one, "v": 3 * one, "s": 2 * one, "b": one / 2},
        "x",
        "m",
        "v",
        scale="s",
        bias="b",
        axis=0,
        epsilon=1,
    )
    np.testing.assert_array_equal(out, [0.5, 4.5, -3.5])


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_instance_normalization(context, builder, layout):
    channel, spatial = (1, (2, 3)) if layout == "nchw" else (3, (1, 2))
    c = X.shape[channel]
    scale = RNG.normal(size=c).astype(np.float32)
    bias = RNG.normal(size=c).astype(np.float32)
    out = compute(
        context,
        builder,
        "instance_normalization",
        {"x": X, "s": scale, "b": bias},
        "x",
        scale="s",
        bias="b",
        layout=layout,
    )
    x = f64(X)
    shape = [1] * 4
    shape[channel] = c
    mean = x.mean(axis=spatial, keepdims=True)
    variance = x.var(axis=spatial, keepdims=True)
    eps = float(np.float32(1e-5))
    expected = normalize(x, mean, variance, eps, f64(scale).reshape(shape), f64(bias).reshape(shape))
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_instance_normalization_zero_epsilon_constant_plane_is_nan(context, builder):
    # A constant plane has variance 0: with epsilon 0 the spec's formula divides 0 by 0.
    x = np.zeros((1, 1, 2, 2), np.float32)
    out = compute(context, builder, "instance_normalization", {"x": x}, "x", epsilon=0)
    assert np.isnan(out).all()


@pytest.mark.parametrize(
    "shape, axes",
    [
        ((2, 3, 4, 5), None),
        ((2, 3, 4, 5), [0, 2]),
        ((2, 3, 4, 5), [3, 1, 2]),
        ((2, 3, 4, 5), [1]),
        ((6,), None),
        ((2, 3), [1, 0]),
    ],
)
def test_layer_normalization(context, builder, shape, axes):
    x32 = RNG.normal(size=shape).astype(np.float32)
    reduced = tuple(range(1, len(shape))) if axes is None else tuple(axes)
    sizes = [shape[a] for a in reduced]
    scale = RNG.normal(size=sizes).astype(np.float32)
    bias = RNG.normal(size=sizes).astype(np.float32)
    options = {"scale": "s", "bias": "b", "epsilon": 1e-4}
    if axes is not None:
        options["axes"] = axes
    out = compute(context, builder, "layer_normalization", {"x": x32, "s": scale, "b": bias}, "x", **options)

    x = f64(x32)
    mean = x.mean(axis=reduced, keepdims=True)
    variance = x.var(axis=reduced, keepdims=True)

    def placed(a):
        # scale/bias dimensions follow the order of axes: move them into the input's order.
        order = np.argsort(reduced)
        full = [shape[d] if d in reduced else 1 for d in range(len(shape))]
        return f64(a).transpose(order).reshape(full)

    eps = float(np.float32(1e-4))
    expected = normalize(x, mean, variance, eps, placed(scale), placed(bias))
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(), (4,)])
def test_layer_normalization_default_axes_reduce_nothing_below_rank_2(context, builder, shape):
    # Axes default to [1, rank) only when rank > 1: otherwise nothing is reduced and
    # each element is its own mean, so the result is (x - x) / sqrt(0 + epsilon) = 0.
    x = np.full(shape, 3.0, np.float32)
    out = compute(context, builder, "layer_normalization", {"x": x}, "x")
    assert out.shape == shape
    np.testing.assert_array_equal(out, np.zeros(shape, np.float32))


def test_epsilon_is_cast_to_float16(context, builder):
    # 1e-8 rounds to 0 in float16, so a constant input normalizes to 0 / 0.
    x = np.ones((1, 2), np.float16)
    out = compute(context, builder, "layer_normalization", {"x": x}, "x", epsilon=1e-8)
    assert out.dtype == np.float16 and np.isnan(out).all()


# -- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, args",
    [
        ("batch_normalization", ["x", "m", "m"]),
        ("instance_normalization", ["x"]),
        ("layer_normalization", ["x"]),
    ],
)
@pytest.mark.parametrize("data_type", ["int32", "uint8", "int64"])
def test_inputs_must_be_floats(builder, method, args, data_type):
    ops = {"x": operand(builder, "x", data_type, [1, 2, 3, 4]), "m": operand(builder, "m", data_type, [2])}
    with pytest.raises(TypeError, match=r"\[lbl\].*input data type"):
        getattr(builder, method)(*(ops[a] for a in args), label="lbl")


def bn_operands(builder, mean_shape=(2,), variance_shape=(2,), data_type="float32"):
    x = operand(builder, "x", "float32", [1, 2, 3, 4])
    m = operand(builder, "m", data_type, mean_shape)
    v = operand(builder, "v", "float32", variance_shape)
    return x, m, v


@pytest.mark.parametrize(
    "kwargs, options, name",
    [
        ({"mean_shape": (3,)}, {}, "mean"),
        ({"mean_shape": (1, 2)}, {}, "mean"),
        ({"data_type": "float16"}, {}, "mean"),
        ({"variance_shape": (2, 1)}, {}, "variance"),
        ({"variance_shape": (3,)}, {}, "variance"),
        ({}, {"axis": 4}, "axis"),
        ({}, {"axis": -1}, "axis"),
        ({}, {"axis": float("nan")}, "axis"),
        ({}, {"epsilon": math.nan}, "epsilon"),
        ({}, {"epsilon": math.inf}, "epsilon"),
        ({}, {"epsilon": "1e-5"}, "epsilon"),
    ],
)
def test_batch_normalization_rejects(builder, kwargs, options, name):
    with pytest.raises(TypeError, match=rf"\[bn\].*{name}"):
        builder.batch_normalization(*bn_operands(builder, **kwargs), **options, label="bn")


@pytest.mark.parametrize("name", ["scale", "bias"])
@pytest.mark.parametrize("data_type, shape", [("float32", [3]), ("float32", [2, 1]), ("float16", [2])])
def test_affine_operands_must_match_the_features(builder, name, data_type, shape):
    bad = operand(builder, name, data_type, shape)
    with pytest.raises(TypeError, match=rf"\[bn\].*{name}"):
        builder.batch_normalization(*bn_operands(builder), **{name: bad}, label="bn")
    x = operand(builder, "x4", "float32", [1, 2, 5, 5])
    with pytest.raises(TypeError, match=rf"\[in\].*{name}"):
        builder.instance_normalization(x, **{name: bad}, label="in")


def test_batch_normalization_axis_selects_the_feature_dimension(builder):
    x = operand(builder, "x", "float16", [1, 2, 5, 7])
    m = operand(builder, "m", "float16", [7])
    y = builder.batch_normalization(x, m, m, scale=m, bias=m, axis=3)
    assert (y.data_type, y.shape) == ("float16", [1, 2, 5, 7])


def test_batch_normalization_rejects_scalar_input(builder):
    x = operand(builder, "x", "float32", [])
    m = operand(builder, "m", "float32", [1])
    with pytest.raises(TypeError, match=r"\[bn\].*input rank"):
        builder.batch_normalization(x, m, m, label="bn")


def test_instance_normalization_layout_selects_the_channels(builder):
    x = operand(builder, "x", "float32", [1, 2, 5, 3])
    s = operand(builder, "s", "float32", [3])
    assert builder.instance_normalization(x, scale=s, bias=s, layout="nhwc").shape == [1, 2, 5, 3]
    with pytest.raises(TypeError, match=r"\[in\].*scale shape \[3\] must be \[2\]"):
        builder.instance_normalization(x, scale=s, label="in")


@pytest.mark.parametrize(
    "shape, options, name",
    [
        ([1, 2, 3], {}, "input rank"),
        ([1, 2, 3, 4, 5], {}, "input rank"),
        ([1, 2, 3, 4], {"layout": "NCHW"}, "layout"),
        ([1, 2, 3, 4], {"layout": "nwhc"}, "layout"),
        ([1, 2, 3, 4], {"epsilon": -math.inf}, "epsilon"),
    ],
)
def test_instance_normalization_rejects(builder, shape, options, name):
    x = operand(builder, "x", "float32", shape)
    with pytest.raises(TypeError, match=rf"\[in\].*{name}"):
        builder.instance_normalization(x, **options, label="in")


@pytest.mark.parametrize(
    "options, scale_shape, name",
    [
        ({"axes": [4]}, None, "axes"),
        ({"axes": [1, 1]}, None, "axes"),
        ({"axes": [-1]}, None, "axes"),
        ({"axes": "12"}, None, "axes"),
        ({"epsilon": math.nan}, None, "epsilon"),
        ({}, [3, 4], "scale rank"),  # default axes [1, 2, 3]
        ({"axes": [2, 3]}, [4], "scale rank"),
        ({"axes": [2, 3]}, [5, 4], "scale shape"),
        ({"axes": [3, 2]}, [4, 5], "scale shape"),
    ],
)
def test_layer_normalization_rejects(builder, options, scale_shape, name):
    x = operand(builder, "x", "float32", [2, 3, 4, 5])
    if scale_shape is not None:
        options = {**options, "scale": operand(builder, "s", "float32", scale_shape)}
    with pytest.raises(TypeError, match=rf"\[ln\].*{name}"):
        builder.layer_normalization(x, **options, label="ln")


def test_layer_normalization_bias_must_match(builder):
    x = operand(builder, "x", "float32", [2, 3, 4])
    for b, name in [
        (operand(builder, "b1", "float16", [3, 4]), "bias data type"),
        (operand(builder, "b2", "float32", [4, 3]), "bias shape"),
    ]:
        with pytest.raises(TypeError, match=rf"\[ln\].*{name}"):
            builder.layer_normalization(x, bias=b, label="ln")


def test_layer_normalization_empty_axes(builder):
    x = operand(builder, "x", "float32", [2, 3])
    s = operand(builder, "s", "float32", [])
    assert builder.layer_normalization(x, scale=s, bias=s, axes=[]).shape == [2, 3]


def test_operand_options_must_be_operands(builder):
    x = operand(builder, "x", "float32", [1, 2, 3, 4])
    with pytest.raises(TypeError, match=r"scale"):
        builder.layer_normalization(x, scale=[1.0, 2.0])


def test_options_are_keyword_only(builder):
    x, m, v = bn_operands(builder)
    with pytest.raises(TypeError):
        builder.batch_normalization(x, m, v, None)


def test_op_support_limits(context):
    limits = context.op_support_limits()
    bn = limits["batchNormalization"]
    assert set(bn) == {"input", "mean", "variance", "scale", "bias", "output"}
    assert bn["mean"]["rankRange"] == {"min": 1, "max": 1}
    assert set(bn["input"]["dataTypes"]) == {"float32", "float16"}
    inst = limits["instanceNormalization"]
    assert set(inst) == {"input", "scale", "bias", "output"}
    assert inst["input"]["rankRange"] == {"min": 4, "max": 4}
    assert set(limits["layerNormalization"]) == {"input", "scale", "bias", "output"}
