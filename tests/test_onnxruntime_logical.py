"""The onnxruntime lowerings of the logical operators match the reference backend at the edges."""

from __future__ import annotations

import numpy as np
import pytest

import webml

COMPARISONS = ("equal", "not_equal", "greater", "greater_or_equal", "lesser", "lesser_or_equal")
INTS = ("int8", "uint8", "int32", "uint32", "int64", "uint64")


def run(backend: str, op: str, *arrays: np.ndarray) -> np.ndarray:
    context = webml.ml.create_context(backend=backend)
    builder = webml.MLGraphBuilder(context)
    inputs = [builder.input(f"x{i}", {"dataType": str(a.dtype), "shape": list(a.shape)}) for i, a in enumerate(arrays)]
    graph = builder.build({"y": getattr(builder, op)(*inputs)})
    return context.compute(graph, {f"x{i}": a for i, a in enumerate(arrays)})["y"]


def assert_matches_reference(op: str, *arrays: np.ndarray) -> None:
    expected = run("reference", op, *arrays)
    actual = run("onnxruntime", op, *arrays)
    assert actual.dtype == np.uint8
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def float_pair(data_type: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([-0.0, 0.0, np.nan, np.inf, -np.inf, 1.0, 65504.0, 2.0], data_type)
    b = np.array([0.0, -0.0, np.nan, np.inf, np.inf, np.nan, 65504.0, 1.0], data_type)
    return a, b


def int_pair(data_type: str) -> tuple[np.ndarray, np.ndarray]:
    info = np.iinfo(data_type)
    a = np.array([info.min, info.max, info.max, info.min, 0, info.max - 1], data_type)
    b = np.array([info.max, info.max - 1, info.max, info.min + 1, info.min, info.max], data_type)
    return a, b


@pytest.mark.parametrize("op", COMPARISONS)
def test_comparisons_of_nan_signed_zero_and_integer_extremes(op):
    for data_type in ("float32", "float16"):
        assert_matches_reference(op, *float_pair(data_type))
    for data_type in INTS:
        assert_matches_reference(op, *int_pair(data_type))


def test_comparisons_broadcast():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = np.array([[1], [4]], np.int32)
    for op in COMPARISONS:
        assert_matches_reference(op, a, b)


@pytest.mark.parametrize("op", ["logical_and", "logical_or", "logical_xor"])
def test_logical_operators_treat_any_nonzero_value_as_true(op):
    a = np.array([[0, 1, 2, 255, 0, 128]], np.uint8)
    b = np.array([[0], [7]], np.uint8)
    assert_matches_reference(op, a, b)


def test_logical_not_of_nonzero_values():
    assert_matches_reference("logical_not", np.array([0, 1, 2, 128, 255], np.uint8))


@pytest.mark.parametrize("op", ["is_nan", "is_infinite"])
@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_is_nan_and_is_infinite(op, data_type):
    assert_matches_reference(op, np.array([-0.0, np.nan, -np.nan, np.inf, -np.inf, 65504.0, 1e-8], data_type))


def test_logical_operators_accept_only_uint8():
    limits = webml.ml.create_context(backend="onnxruntime").op_support_limits()
    assert limits["logicalAnd"]["a"]["dataTypes"] == ["uint8"]
    assert limits["isNaN"]["a"]["dataTypes"] == ["float32", "float16"]
    assert set(limits["equal"]["a"]["dataTypes"]) == {
        "float32",
        "float16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "int8",
        "uint8",
    }
