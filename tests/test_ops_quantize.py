"""quantizeLinear, dequantizeLinear: validation and reference results."""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest

import webml

INT_RANGES = {
    "uint8": (0, 255),
    "int8": (-128, 127),
    "uint32": (0, 2**32 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int4": (-8, 7),
    "uint4": (0, 15),
}
_NAMES = itertools.count()
NP_TYPES = {
    "uint8": np.uint8,
    "int8": np.int8,
    "uint32": np.uint32,
    "int32": np.int32,
    "int4": ml_dtypes.int4,
    "uint4": ml_dtypes.uint4,
}


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, builder, method, x, scale, zero_point, zp_type):
    """Run ``method`` with x an input and scale / zeroPoint constants (zeroPoint of ``zp_type``)."""
    x_type = zp_type if method == "dequantize_linear" else str(x.dtype)
    xo = operand(builder, "x", x_type, x.shape)
    so = builder.constant({"dataType": str(scale.dtype), "shape": list(scale.shape)}, scale)
    zo = builder.constant({"dataType": zp_type, "shape": list(zero_point.shape)}, zero_point)
    out = getattr(builder, method)(xo, so, zo)
    graph = builder.build({"out": out})
    return context.compute(graph, {"x": x})["out"]


def expand(values, shape):
    """Independent blockwise expansion: element i of each axis maps to values[i // block]."""
    values = np.asarray(values).reshape((1,) * (len(shape) - np.ndim(values)) + np.shape(values))
    index = np.ix_(*[np.arange(n) // (n // m) for n, m in zip(shape, values.shape)])
    return values[index]


def quantize_model(x, scale, zero_point, zp_type):
    lo, hi = INT_RANGES[zp_type]
    q = np.rint(x.astype(np.float64) / expand(scale, x.shape)) + expand(zero_point, x.shape)
    return np.clip(q, lo, hi)


# -- results ---------------------------------------------------------------


def test_quantize_rounds_half_to_even_and_saturates(context, builder):
    x = np.float32([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 300.0, -300.0, 254.6])
    out = compute(context, builder, "quantize_linear", x, np.float32([1.0]), np.uint8([0]), "uint8")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 2, 2, 0, 0, 0, 255, 0, 255])


@pytest.mark.parametrize("zp_type", ["int8", "uint8", "int32", "uint32", "int4", "uint4"])
def test_quantize_blockwise_matches_model(context, builder, zp_type):
    rng = np.random.default_rng(1)
    lo, hi = INT_RANGES[zp_type]
    x = (rng.standard_normal((4, 6, 2)) * 40).astype(np.float32)
    scale = rng.uniform(0.5, 4, (2, 3, 1)).astype(np.float32)
    zero_point = rng.integers(max(lo, -5), min(hi, 5) + 1, (2, 3, 1)).astype(NP_TYPES[zp_type])
    out = compute(context, builder, "quantize_linear", x, scale, zero_point, zp_type)
    assert out.shape == (4, 6, 2)
    assert out.dtype == np.dtype(NP_TYPES[zp_type])
    np.testing.assert_array_equal(out.astype(np.int64), quantize_model(x, scale, zero_point, zp_type))


def test_quantize_float16(context, builder):
    x = np.float16([1.0, 2.0, 3.0, -7.0])
    out = compute(context, builder, "quantize_linear", x, np.float16([0.5, 2.0]), np.int8([1, -1]), "int8")
    np.testing.assert_array_equal(out, [3, 5, 1, -5])


@pytest.mark.parametrize("zp_type", ["int8", "uint8", "int32", "uint32", "int4", "uint4"])
def test_dequantize_blockwise_matches_model(context, builder, zp_type):
    rng = np.random.default_rng(2)
    lo, hi = INT_RANGES[zp_type]
    np_type = NP_TYPES[zp_type]
    x = rng.integers(max(lo, -100), min(hi, 100) + 1, (3, 4)).astype(np_type)
    scale = rng.uniform(0.1, 2, (3, 2)).astype(np.float32)
    zero_point = rng.integers(max(lo, -5), min(hi, 5) + 1, (3, 2)).astype(np_type)
    out = compute(context, builder, "dequantize_linear", x, scale, zero_point, zp_type)
    assert out.dtype == np.float32
    expected = (x.astype(np.float64) - expand(zero_point, x.shape)) * expand(scale, x.shape)
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6)


def test_dequantize_blocks_along_the_last_axis(context, builder):
    # A [1, 2] scale for a [2, 4] input covers blocks of 2 along the last axis.
    x = np.arange(8, dtype=np.int8).reshape(2, 4)
    out = compute(context, builder, "dequantize_linear", x, np.float32([[1, 10]]), np.int8([[1, 0]]), "int8")
    np.testing.assert_array_equal(out, [[-1, 0, 20, 30], [3, 4, 60, 70]])


def test_dequantize_float16_scalar(context, builder):
    out = compute(context, builder, "dequantize_linear", np.uint8(200), np.float16(0.25), np.uint8(128), "uint8")
    assert out.dtype == np.float16 and out.shape == ()
    assert out == np.float16(18.0)


# -- validation --------------------------------------------------------------


def raises(match, fn, *args):
    with pytest.raises(TypeError, match=match) as info:
        fn(*args, label="lbl")
    assert "[lbl]" in str(info.value)


def test_quantize_validation(builder):
    x = operand(builder, "x", "float32", [3, 2, 5])
    s = operand(builder, "s", "float32", [3, 1, 5])
    z = operand(builder, "z", "int8", [3, 1, 5])
    raises("input data type", builder.quantize_linear, operand(builder, "i", "int32", [3, 2, 5]), s, z)
    raises("scale data type", builder.quantize_linear, x, operand(builder, "h", "float16", [3, 1, 5]), z)
    raises("scale data type", builder.quantize_linear, x, operand(builder, "si", "int32", [3, 1, 5]), z)
    raises("zeroPoint data type", builder.quantize_linear, x, s, operand(builder, "zf", "float16", [3, 1, 5]))
    raises("zeroPoint data type", builder.quantize_linear, x, s, operand(builder, "zi", "int64", [3, 1, 5]))
    raises("scale shape", builder.quantize_linear, x, s, operand(builder, "z2", "int8", [3, 2, 5]))
    raises("blockwise", builder.quantize_linear, x, *_pair(builder, "float32", "int8", [2, 1, 5]))
    raises("scale rank", builder.quantize_linear, x, *_pair(builder, "float32", "int8", [1, 3, 1, 5]))
    out = builder.quantize_linear(x, s, z)
    assert (out.data_type, out.shape) == ("int8", [3, 2, 5])
    q4 = builder.quantize_linear(x, *_pair(builder, "float32", "uint4", [1, 2, 1]))
    assert (q4.data_type, q4.shape) == ("uint4", [3, 2, 5])


def test_dequantize_validation(builder):
    x = operand(builder, "x", "uint8", [6, 4, 5])
    s = operand(builder, "s", "float32", [3, 2, 1])
    z = operand(builder, "z", "uint8", [3, 2, 1])
    raises("input data type", builder.dequantize_linear, operand(builder, "f", "float16", [6, 4, 5]), s, z)
    raises("input data type", builder.dequantize_linear, operand(builder, "i", "int64", [6, 4, 5]), s, z)
    raises("scale data type", builder.dequantize_linear, x, operand(builder, "si", "int32", [3, 2, 1]), z)
    raises("zeroPoint data type", builder.dequantize_linear, x, s, operand(builder, "zi", "int8", [3, 2, 1]))
    raises("zeroPoint rank 2", builder.dequantize_linear, x, s, operand(builder, "z2", "uint8", [3, 2]))
    raises("scale shape", builder.dequantize_linear, x, s, operand(builder, "z3", "uint8", [3, 1, 1]))
    # The spec requires scale and zeroPoint of input's rank (this WPT revision accepted lower ranks).
    raises("scale rank 1 must equal", builder.dequantize_linear, x, *_pair(builder, "float32", "uint8", [5]))
    raises("blockwise", builder.dequantize_linear, x, *_pair(builder, "float32", "uint8", [1, 1, 2]))
    raises("blockwise", builder.dequantize_linear, x, *_pair(builder, "float32", "uint8", [4, 2, 5]))
    out = builder.dequantize_linear(x, s, z)
    assert (out.data_type, out.shape) == ("float32", [6, 4, 5])
    i4 = operand(builder, "i4", "int4", [6, 4, 5])
    out = builder.dequantize_linear(i4, *_pair(builder, "float16", "int4", [1, 1, 1]))
    assert (out.data_type, out.shape) == ("float16", [6, 4, 5])


def _pair(builder, scale_type, zp_type, shape):
    """A scale and a zeroPoint of one shape, under fresh input names."""
    n = next(_NAMES)
    return operand(builder, f"scale{n}", scale_type, shape), operand(builder, f"zp{n}", zp_type, shape)


def test_support_limits(context):
    limits = context.op_support_limits()
    quantized = ["uint8", "int8", "uint32", "int32", "int4", "uint4"]
    assert limits["quantizeLinear"]["zeroPoint"]["dataTypes"] == quantized
    assert limits["quantizeLinear"]["output"]["dataTypes"] == quantized
    assert limits["dequantizeLinear"]["input"]["dataTypes"] == quantized
    assert limits["dequantizeLinear"]["output"]["dataTypes"] == ["float32", "float16"]
