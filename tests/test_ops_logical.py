"""Element-wise logical operations: validation and reference results."""

from __future__ import annotations

import numpy as np
import pytest

import webml

COMPARISONS = {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "greater": np.greater,
    "greater_or_equal": np.greater_equal,
    "lesser": np.less,
    "lesser_or_equal": np.less_equal,
}
LOGICAL = {
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
ALL_TYPES = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, builder, method, arrays):
    names = "ab"
    ops = [operand(builder, n, str(a.dtype), a.shape) for n, a in zip(names, arrays)]
    out = getattr(builder, method)(*ops)
    graph = builder.build({"out": out})
    return context.compute(graph, dict(zip(names, arrays)))["out"]


# -- results ---------------------------------------------------------------

SPECIALS = np.array([[-np.inf, -1.5, -0.0, 0.0, 2.0, np.inf, np.nan]], np.float32)


@pytest.mark.parametrize("method", COMPARISONS)
def test_comparison_float_broadcast_and_nan(context, builder, method):
    a = SPECIALS.T  # [7, 1] against [1, 7]: every pair, NaN included
    b = SPECIALS
    out = compute(context, builder, method, [a, b])
    assert out.dtype == np.uint8 and out.shape == (7, 7)
    np.testing.assert_array_equal(out, COMPARISONS[method](a, b).astype(np.uint8))


@pytest.mark.parametrize("data_type", ["int8", "uint8", "int32", "uint32", "int64", "uint64", "float16"])
@pytest.mark.parametrize("method", COMPARISONS)
def test_comparison_all_types(context, builder, method, data_type):
    info = np.iinfo(data_type) if data_type != "float16" else np.finfo(data_type)
    a = np.array([info.min, 0, 1, info.max], dtype=data_type)
    b = np.array([info.max, 0, 2, info.max], dtype=data_type)
    out = compute(context, builder, method, [a, b])
    np.testing.assert_array_equal(out, COMPARISONS[method](a, b).astype(np.uint8))


def test_comparison_uint64_is_exact(context, builder):
    # Both values round to the same float64; the comparison must not.
    a = np.array([2**64 - 1], np.uint64)
    b = np.array([2**64 - 2], np.uint64)
    assert compute(context, builder, "greater", [a, b]).tolist() == [1]


@pytest.mark.parametrize("method", LOGICAL)
def test_logical_binary_treats_nonzero_as_true(context, builder, method):
    a = np.array([[0], [1], [7], [255]], np.uint8)
    b = np.array([0, 1, 200], np.uint8)
    out = compute(context, builder, method, [a, b])
    assert out.shape == (4, 3)
    np.testing.assert_array_equal(out, LOGICAL[method](a, b).astype(np.uint8))


def test_logical_not(context, builder):
    out = compute(context, builder, "logical_not", [np.array([0, 1, 2, 255], np.uint8)])
    assert out.tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_is_nan_and_is_infinite(context, data_type):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e4, -3.5], dtype=data_type)
    b = webml.MLGraphBuilder(context)
    a = operand(b, "x", data_type, x.shape)
    graph = b.build({"nan": b.is_nan(a), "inf": b.is_infinite(a)})
    out = context.compute(graph, {"x": x})
    assert out["nan"].dtype == np.uint8
    assert out["nan"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert out["inf"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]


def test_scalar_shapes(context, builder):
    a = operand(builder, "a", "float32", [])
    b = operand(builder, "b", "float32", [2, 1])
    out = builder.lesser(a, b)
    assert out.data_type == "uint8" and out.shape == [2, 1]
    assert builder.is_nan(a).shape == []


# -- validation --------------------------------------------------------------


@pytest.mark.parametrize("method", [*COMPARISONS, *LOGICAL])
def test_mismatched_data_types(builder, method):
    first = "uint8" if method in LOGICAL else "float32"
    a = operand(builder, "a", first, [2])
    b = operand(builder, "b", "int8" if method in LOGICAL else "float16", [2])
    with pytest.raises(TypeError, match=r"\[lbl\].*b data type"):
        getattr(builder, method)(a, b, label="lbl")


@pytest.mark.parametrize("method", [*COMPARISONS, *LOGICAL])
def test_not_broadcastable(builder, method):
    t = "uint8" if method in LOGICAL else "float32"
    a = operand(builder, "a", t, [2, 3])
    b = operand(builder, "b", t, [2, 2])
    message = r"\[lbl\].*shapes of a \[2, 3\] and b \[2, 2\] are not broadcastable"
    with pytest.raises(TypeError, match=message):
        getattr(builder, method)(a, b, label="lbl")


@pytest.mark.parametrize("method", [*LOGICAL, "logical_not"])
@pytest.mark.parametrize("data_type", [t for t in ALL_TYPES if t != "uint8"])
def test_logical_operators_take_uint8_only(builder, method, data_type):
    a = operand(builder, "a", data_type, [2])
    args = [a] if method == "logical_not" else [a, a]
    with pytest.raises(TypeError, match=r"\[lbl\].*a data type " + data_type):
        getattr(builder, method)(*args, label="lbl")


@pytest.mark.parametrize("method", ["is_nan", "is_infinite"])
@pytest.mark.parametrize("data_type", [t for t in ALL_TYPES if not t.startswith("float")])
def test_is_nan_is_infinite_take_floats_only(builder, method, data_type):
    a = operand(builder, "a", data_type, [2])
    with pytest.raises(TypeError, match=r"\[lbl\].*a data type " + data_type):
        getattr(builder, method)(a, label="lbl")


@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_comparisons_take_any_data_type(builder, data_type):
    a = operand(builder, "a", data_type, [2])
    assert builder.greater_or_equal(a, a).data_type == "uint8"


def test_operand_from_another_builder(context, builder):
    other = operand(webml.MLGraphBuilder(context), "x", "float32", [2])
    a = operand(builder, "a", "float32", [2])
    with pytest.raises(TypeError):
        builder.equal(a, other)


def test_op_support_limits(context):
    limits = context.op_support_limits()
    assert limits["equal"]["a"]["dataTypes"] == list(ALL_TYPES)
    assert limits["equal"]["output"]["dataTypes"] == ["uint8"]
    assert limits["logicalAnd"]["b"]["dataTypes"] == ["uint8"]
    assert set(limits["isNaN"]) == {"a", "output"}
    assert limits["isInfinite"]["a"]["dataTypes"] == ["float32", "float16"]
