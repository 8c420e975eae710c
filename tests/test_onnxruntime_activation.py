"""onnxruntime lowerings of the activation and linalg operators against the reference backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import webml

INT_RANGES = {t: np.iinfo(t) for t in ("int8", "uint8", "int32", "uint32", "int64", "uint64")}


def run(backend, build, inputs):
    context = webml.ml.create_context(backend=backend)
    builder = webml.MLGraphBuilder(context)
    operands = {
        name: builder.input(name, {"dataType": str(a.dtype), "shape": list(a.shape)}) for name, a in inputs.items()
    }
    graph = builder.build({"y": build(builder, **operands)})
    return context.compute(graph, inputs)["y"]


def same_on_both(build, inputs):
    expected = run("reference", build, inputs)
    actual = run("onnxruntime", build, inputs)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    return actual


def edges(data_type):
    info = INT_RANGES[data_type]
    values = {int(info.min), int(info.min) + 1, -2, -1, 0, 1, 2, int(info.max) - 1, int(info.max)}
    return np.array(sorted(v for v in values if info.min <= v <= info.max), dtype=data_type)


@pytest.mark.parametrize("data_type", list(INT_RANGES))
@pytest.mark.parametrize(
    "bounds",
    [{}, {"min_value": 0}, {"max_value": 1}, {"min_value": -1, "max_value": 1}, {"min_value": -math.inf}],
)
def test_clamp_integers(data_type, bounds):
    same_on_both(lambda b, x: b.clamp(x, **bounds), {"x": edges(data_type)})


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize(
    "bounds",
    [{}, {"min_value": -2}, {"max_value": 2}, {"min_value": -2, "max_value": 2}, {"min_value": math.nan}],
)
def test_clamp_floats_keep_infinities_and_nan(data_type, bounds):
    x = np.array([np.nan, -np.inf, np.inf, -3, 3, 0, -0.0], dtype=data_type)
    same_on_both(lambda b, x: b.clamp(x, **bounds), {"x": x})


@pytest.mark.parametrize("data_type", ["int8", "int32", "int64"])
def test_relu_and_prelu_integers_saturate_like_the_reference(data_type):
    x = edges(data_type)
    info = INT_RANGES[data_type]
    slope = np.array([int(info.min), -1, 0, 2, int(info.max)], dtype=data_type).reshape(5, 1)
    same_on_both(lambda b, x: b.relu(x), {"x": x})
    y = same_on_both(lambda b, x, s: b.prelu(x, s), {"x": x, "s": slope})
    assert y.shape == (5, x.size)  # broadcast both ways


def test_prelu_float_broadcasts_both_ways():
    x = np.array([-2.0, -0.5, 0.0, 3.0], dtype=np.float32)
    slope = np.array([[0.5], [2.0]], dtype=np.float32)
    y = same_on_both(lambda b, x, s: b.prelu(x, s), {"x": x, "s": slope})
    assert y.shape == (2, 4)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.0, 0.0), (1.0, -0.5), (0.5, 3.0)])
def test_linear(alpha, beta):
    x = np.array([-2.0, -0.5, 0.0, 3.0, np.inf], dtype=np.float32)
    same_on_both(lambda b, x: b.linear(x, alpha=alpha, beta=beta), {"x": x})


def test_sigmoid_float32_is_accurate_in_the_tails():
    x = np.linspace(-80, 20, 1001, dtype=np.float32)
    expected = run("reference", lambda b, x: b.sigmoid(x), {"x": x})
    actual = run("onnxruntime", lambda b, x: b.sigmoid(x), {"x": x})
    np.testing.assert_allclose(actual, expected, rtol=4e-7, atol=0)


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("a_transpose", [False, True])
@pytest.mark.parametrize("b_transpose", [False, True])
@pytest.mark.parametrize("c_shape", [None, (), (1,), (5,), (3, 1), (3, 5)])
def test_gemm(data_type, a_transpose, b_transpose, c_shape):
    rng = np.random.default_rng(0)
    inputs = {
        "a": rng.uniform(-1, 1, (4, 3) if a_transpose else (3, 4)).astype(data_type),
        "b": rng.uniform(-1, 1, (5, 4) if b_transpose else (4, 5)).astype(data_type),
    }
    if c_shape is not None:
        inputs["c"] = np.asarray(rng.uniform(-1, 1, c_shape)).astype(data_type)

    def build(b, a, b_, c=None):
        return b.gemm(a, b_, c=c, alpha=0.5, beta=2.0, a_transpose=a_transpose, b_transpose=b_transpose)

    inputs["b_"] = inputs.pop("b")
    expected = run("reference", build, inputs)
    actual = run("onnxruntime", build, inputs)
    assert actual.shape == expected.shape == (3, 5)
    np.testing.assert_allclose(actual, expected, rtol=2e-3 if data_type == "float16" else 1e-6, atol=1e-3)


def test_matmul_broadcasts_batch_dimensions():
    rng = np.random.default_rng(1)
    inputs = {
        "a": rng.uniform(-1, 1, (2, 1, 3, 4)).astype("float32"),
        "b": rng.uniform(-1, 1, (3, 4, 5)).astype("float32"),
    }
    expected = run("reference", lambda b, a, b_: b.matmul(a, b_), {"a": inputs["a"], "b_": inputs["b"]})
    actual = run("onnxruntime", lambda b, a, b_: b.matmul(a, b_), {"a": inputs["a"], "b_": inputs["b"]})
    assert actual.shape == (2, 3, 3, 5)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
