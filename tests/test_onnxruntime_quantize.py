"""The onnxruntime lowerings of quantizeLinear/dequantizeLinear agree with the reference backend.

Every quantized type (int4/uint4 saturate to 4 bits; int32/uint32 are exact),
per-tensor, per-axis and block-wise scales along one or several axes.
"""

from __future__ import annotations

import numpy as np
import pytest

import webml
from webml import dtypes

RNG = np.random.default_rng(11)
RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int8": (-128, 127), "uint8": (0, 255)}
RANGES |= {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}

# (input shape, scale shape): per tensor, per axis, blocks along one axis, blocks along several.
LAYOUTS = [
    ((3, 4), (1, 1)),
    ((3, 4), (3, 1)),
    ((3, 4), (1, 4)),
    ((2, 6), (1, 3)),
    ((2, 6), (2, 3)),
    ((6, 4), (2, 2)),
    ((2, 4, 6), (2, 2, 3)),
    ((4, 2, 6), (1, 2, 2)),
    ((2, 3, 4, 4), (1, 3, 2, 1)),
]


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="onnxruntime")


def run_both(contexts, method, x, scale, zero_point, zero_type, *, x_type=None, constant=False):
    results = []
    for context in contexts:
        b = webml.MLGraphBuilder(context)
        x_desc = {"dataType": x_type or x.dtype.name, "shape": list(x.shape)}
        xo = b.constant(x_desc, x) if constant else b.input("x", x_desc)
        so = b.constant({"dataType": str(scale.dtype), "shape": list(scale.shape)}, scale)
        zo = b.constant({"dataType": zero_type, "shape": list(zero_point.shape)}, zero_point)
        graph = b.build({"out": getattr(b, method)(xo, so, zo)})
        results.append(context.compute(graph, {} if constant else {"x": x})["out"])
    reference, actual = results
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    np.testing.assert_array_equal(actual, reference)


def zero_points(shape, data_type):
    low, high = RANGES[data_type]
    values = RNG.integers(low, high, size=shape, endpoint=True, dtype=np.int64)
    return values.astype(dtypes.numpy_dtype(data_type))


@pytest.mark.parametrize("zero_type", ["int8", "uint8", "int4", "uint4", "int32", "uint32"])
@pytest.mark.parametrize("float_type", ["float32", "float16"])
@pytest.mark.parametrize("input_shape, scale_shape", LAYOUTS)
def test_quantize(contexts, zero_type, float_type, input_shape, scale_shape):
    low, high = RANGES[zero_type]
    span = min(high - low, 2**20 if float_type == "float32" else 2**15)
    scale = RNG.uniform(0.25, 2.0, size=scale_shape).astype(float_type)
    x = (RNG.uniform(-0.7, 0.7, size=input_shape) * span).astype(float_type)
    x.flat[:3] = [0.5, 1.5, -2.5]  # ties round to even
    run_both(contexts, "quantize_linear", x, scale, zero_points(scale_shape, zero_type), zero_type)


@pytest.mark.parametrize("zero_type", ["int8", "uint8", "int4", "uint4", "int32", "uint32"])
@pytest.mark.parametrize("float_type", ["float32", "float16"])
@pytest.mark.parametrize("input_shape, scale_shape", LAYOUTS)
def test_dequantize(contexts, zero_type, float_type, input_shape, scale_shape):
    scale = RNG.uniform(-2.0, 2.0, size=scale_shape).astype(float_type)
    x = zero_points(input_shape, zero_type)
    run_both(contexts, "dequantize_linear", x, scale, zero_points(scale_shape, zero_type), zero_type, x_type=zero_type)


@pytest.mark.parametrize("zero_type", ["int32", "uint32"])
def test_wide_extremes(contexts, zero_type):
    low, high = RANGES[zero_type]
    x = np.array([low, high, low, high], dtype=zero_type)
    zero = np.array([high, low, low, high], dtype=zero_type)
    scale = np.array([1.5, -3.0, 0.1, 7.0], dtype=np.float32)
    run_both(contexts, "dequantize_linear", x, scale, zero, zero_type)
    values = np.array([3e9, -3e9, np.inf, -np.inf], dtype=np.float32)
    run_both(contexts, "quantize_linear", values, scale, zero, zero_type)


@pytest.mark.parametrize("zero_point_type", ["int8", "int4", "uint8", "uint4"])
def test_quantize_nan_gives_zero_as_the_reference_does(zero_point_type):
    """The spec's cast turns NaN into 0; ONNX Runtime alone would give the signed types' minimum."""
    results = {}
    for backend in ("onnxruntime", "reference"):
        ctx = webml.ml.create_context(backend=backend)
        b = webml.MLGraphBuilder(ctx)
        x = b.input("x", {"dataType": "float32", "shape": [4]})
        scale = b.constant({"dataType": "float32", "shape": [1]}, np.array([0.5], np.float32))
        zp = b.constant(
            {"dataType": zero_point_type, "shape": [1]}, np.ones(1, webml.dtypes.numpy_dtype(zero_point_type))
        )
        graph = b.build({"q": b.quantize_linear(x, scale, zp)})
        out = ctx.compute(graph, {"x": np.array([np.nan, 1.2, -100, np.inf], np.float32)})["q"]
        results[backend] = out.astype(np.int64)
    np.testing.assert_array_equal(results["onnxruntime"], results["reference"])
    assert results["onnxruntime"][0] == 0
