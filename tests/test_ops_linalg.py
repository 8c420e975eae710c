"""matmul and gemm: validation per the spec's method steps and reference results."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import webml

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def random(shape, dtype=np.float32):
    return RNG.uniform(-2, 2, size=shape).astype(dtype)


def run(context, builder, output, arrays):
    graph = builder.build({"out": output})
    return context.compute(graph, arrays)["out"]


# -- matmul ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape_a, shape_b, shape_out",
    [
        ([4, 2], [2, 3], [4, 3]),
        ([1, 4], [2, 2, 4, 2], [2, 2, 1, 2]),
        ([2, 3, 4], [1, 4, 1], [2, 3, 1]),
        ([2, 2, 3, 4], [1, 4, 5], [2, 2, 3, 5]),
        ([2, 1, 3, 4], [5, 4, 2], [2, 5, 3, 2]),
    ],
)
def test_matmul(context, builder, shape_a, shape_b, shape_out):
    a, b = random(shape_a), random(shape_b)
    out = builder.matmul(operand(builder, "a", "float32", shape_a), operand(builder, "b", "float32", shape_b))
    assert (out.data_type, out.shape) == ("float32", shape_out)
    result = run(context, builder, out, {"a": a, "b": b})
    # Independent model: broadcast the batch dimensions explicitly, then sum the products.
    batch = shape_out[:-2]
    a64 = np.broadcast_to(a.astype(np.float64), [*batch, *shape_a[-2:]])
    b64 = np.broadcast_to(b.astype(np.float64), [*batch, *shape_b[-2:]])
    expected = np.einsum("...ik,...kj->...ij", a64, b64)
    np.testing.assert_allclose(result, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_matmul_float16(context, builder):
    a, b = random([3, 5], np.float16), random([5, 2], np.float16)
    out = builder.matmul(operand(builder, "a", "float16", [3, 5]), operand(builder, "b", "float16", [5, 2]))
    result = run(context, builder, out, {"a": a, "b": b})
    assert result.dtype == np.float16
    expected = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float16)
    np.testing.assert_allclose(result.astype(np.float64), expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "a, b, message",
    [
        ((["float32", [2]]), (["float32", [2, 2]]), "a rank 1"),
        ((["float32", [2, 2]]), (["float32", [2]]), "b rank 1"),
        ((["float32", [2, 3]]), (["float32", [2, 4]]), "a's columns"),
        ((["float32", [3, 3, 4]]), (["float32", [2, 4, 1]]), "batch dimensions"),
        ((["float32", [2, 3, 4]]), (["float16", [2, 4, 5]]), "b data type float16"),
        ((["uint32", [2, 3, 4]]), (["uint32", [2, 4, 5]]), "a data type uint32"),
        ((["int32", [2, 2]]), (["int32", [2, 2]]), "a data type int32"),
        # The output's element count exceeds the maximum (a valid dimension).
        ((["float32", [536870912, 1]]), (["float32", [1, 5]]), "output shape"),
    ],
)
def test_matmul_invalid(builder, a, b, message):
    x, y = operand(builder, "a", *a), operand(builder, "b", *b)
    with pytest.raises(TypeError, match=rf"\[mm\] .*{re.escape(message)}"):
        builder.matmul(x, y, label="mm")


# -- gemm --------------------------------------------------------------------------


def gemm_model(a, b, c=None, alpha=1.0, beta=1.0, a_transpose=False, b_transpose=False):
    """The spec's expression in float64: alpha * A' * B' + beta * C."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    a = a.T if a_transpose else a
    b = b.T if b_transpose else b
    out = alpha * (a @ b)
    return out if c is None else out + beta * c.astype(np.float64)


@pytest.mark.parametrize(
    "shape_a, shape_b, shape_c, options",
    [
        ([2, 3], [3, 4], None, {}),
        ([3, 2], [3, 4], None, {"a_transpose": True}),
        ([2, 3], [4, 3], [4], {"b_transpose": True, "alpha": 0.5}),
        ([3, 2], [4, 3], [2, 4], {"a_transpose": True, "b_transpose": True, "beta": -2.0}),
        ([2, 3], [3, 4], [], {"alpha": 2.0, "beta": 0.25}),
        ([2, 3], [3, 4], [2, 1], {}),
    ],
)
def test_gemm(context, builder, shape_a, shape_b, shape_c, options):
    arrays = {"a": random(shape_a), "b": random(shape_b)}
    ops = [operand(builder, "a", "float32", shape_a), operand(builder, "b", "float32", shape_b)]
    if shape_c is not None:
        arrays["c"] = random(shape_c)
        options = {**options, "c": operand(builder, "c", "float32", shape_c)}
    out = builder.gemm(*ops, **options)
    m = shape_a[1] if options.get("a_transpose") else shape_a[0]
    n = shape_b[0] if options.get("b_transpose") else shape_b[1]
    assert (out.data_type, out.shape) == ("float32", [m, n])
    result = run(context, builder, out, arrays)
    model_options = {k: v for k, v in options.items() if k != "c"}
    expected = gemm_model(arrays["a"], arrays["b"], arrays.get("c"), **model_options)
    np.testing.assert_allclose(result, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_gemm_alpha_is_cast_to_the_input_type(context, builder):
    # alpha = 70000 is infinite in float16; alpha * (0.5 * 1) would not be.
    out = builder.gemm(
        operand(builder, "a", "float16", [1, 1]), operand(builder, "b", "float16", [1, 1]), alpha=70000.0
    )
    arrays = {"a": np.array([[0.5]], np.float16), "b": np.array([[1.0]], np.float16)}
    result = run(context, builder, out, arrays)
    assert np.isposinf(result[0, 0])


@pytest.mark.parametrize(
    "a, b, c, options, message",
    [
        ([2, 3], [2, 4], None, {}, "columns of a (3"),
        ([2, 3], [3, 4], None, {"a_transpose": True}, "columns of a (2"),
        ([2, 3], [3, 4], None, {"b_transpose": True}, "rows of b (4"),
        ([2, 3, 1], [2, 4], None, {}, "a rank 3"),
        ([2, 4], [2, 3, 1], None, {}, "b rank 3"),
        ([2, 3], [3, 4], [2, 3], {}, "c shape [2, 3]"),
        ([2, 3], [3, 4], [3, 2, 4], {}, "c rank 3"),
        ([2, 3], [3, 4], None, {"alpha": math.nan}, "alpha"),
        ([2, 3], [3, 4], None, {"beta": math.inf}, "beta"),
        ([536870912, 1], [1, 5], None, {}, "output shape"),
    ],
)
def test_gemm_invalid(builder, a, b, c, options, message):
    ops = [operand(builder, "a", "float32", a), operand(builder, "b", "float32", b)]
    if c is not None:
        options = {**options, "c": operand(builder, "c", "float32", c)}
    with pytest.raises(TypeError, match=rf"\[g\] .*{re.escape(message)}"):
        builder.gemm(*ops, **options, label="g")


@pytest.mark.parametrize(
    "types, message",
    [
        (("float32", "float16", None), "b data type float16"),
        (("float32", "float32", "float16"), "c data type float16"),
        (("int32", "int32", None), "a data type int32"),
        (("float32", "float32", "int32"), "c data type int32"),
    ],
)
def test_gemm_data_types(builder, types, message):
    a, b = operand(builder, "a", types[0], [2, 3]), operand(builder, "b", types[1], [3, 4])
    options = {} if types[2] is None else {"c": operand(builder, "c", types[2], [2, 4])}
    with pytest.raises(TypeError, match=rf"\[g\] .*{re.escape(message)}"):
        builder.gemm(a, b, **options, label="g")


def test_gemm_c_must_be_an_operand(builder):
    a, b = operand(builder, "a", "float32", [2, 3]), operand(builder, "b", "float32", [3, 4])
    with pytest.raises(TypeError, match=r"\[g\] .*c must be an MLOperand"):
        builder.gemm(a, b, c=1.0, label="g")
