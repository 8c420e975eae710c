"""The onnxruntime lowerings of the unary operators match the reference backend at the edges."""

from __future__ import annotations

import numpy as np
import pytest

import webml

EDGES = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 0.5, 1.5, 2.5, -0.5, -2.5, -1.5, 3.7, -3.7, 65504.0]


def run(backend: str, op: str, array: np.ndarray) -> np.ndarray:
    context = webml.ml.create_context(backend=backend)
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": str(array.dtype), "shape": list(array.shape)})
    graph = builder.build({"y": getattr(builder, op)(x)})
    return context.compute(graph, {"x": array})["y"]


def assert_bits_match_reference(op: str, array: np.ndarray) -> None:
    expected = run("reference", op, array)
    actual = run("onnxruntime", op, array)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if actual.dtype.kind == "f":
        bits = f"u{actual.itemsize}"
        same = (actual.view(bits) == expected.view(bits)) | (np.isnan(actual) & np.isnan(expected))
        assert same.all(), (op, array, actual, expected)
    else:
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("op", ["abs", "neg", "sign", "round_even", "ceil", "floor", "identity", "sqrt", "reciprocal"])
@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_exact_float_operators_at_nan_infinity_signed_zero_and_halves(op, data_type):
    assert_bits_match_reference(op, np.array(EDGES, data_type))


@pytest.mark.parametrize("op", ["abs", "neg", "sign", "identity"])
@pytest.mark.parametrize("data_type", ["int8", "int32", "int64"])
def test_integer_abs_and_neg_saturate_at_the_minimum(op, data_type):
    info = np.iinfo(data_type)
    assert_bits_match_reference(op, np.array([info.min, info.min + 1, -1, 0, 1, info.max], data_type))


@pytest.mark.parametrize("data_type", ["uint8", "uint32", "uint64"])
def test_identity_of_unsigned_extremes(data_type):
    assert_bits_match_reference("identity", np.array([0, 1, np.iinfo(data_type).max], data_type))
