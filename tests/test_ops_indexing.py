"""gather, gatherElements, gatherND, scatterElements, scatterND: validation and reference results."""

from __future__ import annotations

import numpy as np
import pytest

import webml

INPUT_4x3 = np.array([[0, 1, 2], [10, 11, 12], [20, 21, 22], [30, 31, 32]], dtype=np.float32)


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, builder, method, arrays, **options):
    """Build ``method`` over inputs named a, b, c from ``arrays`` and run it."""
    names = "abc"
    ops = [operand(builder, n, str(a.dtype), a.shape) for n, a in zip(names, arrays)]
    out = getattr(builder, method)(*ops, **options)
    graph = builder.build({"out": out})
    return context.compute(graph, dict(zip(names, arrays)))["out"]


def resolved(indices, size):
    """Independent spec model: clamp to [-size, size-1], negative counts from the end."""
    idx = np.minimum(np.maximum(indices.astype(np.int64), -size), size - 1)
    return idx % size


# -- results ---------------------------------------------------------------


@pytest.mark.parametrize(
    "indices, axis, expected",
    [
        # The spec's examples.
        (np.array([3, 1], np.uint32), 0, [[30, 31, 32], [10, 11, 12]]),
        (np.array([2, 1, 1], np.uint32), 1, [[2, 1, 1], [12, 11, 11], [22, 21, 21], [32, 31, 31]]),
        # Negative counts from the end; out of range clamps.
        (np.array(-1, np.int32), 0, [30, 31, 32]),
        (np.array([[7, -9]], np.int64), 0, [[[30, 31, 32], [0, 1, 2]]]),
    ],
)
def test_gather(context, builder, indices, axis, expected):
    out = compute(context, builder, "gather", [INPUT_4x3, indices], axis=axis)
    np.testing.assert_array_equal(out, np.array(expected, np.float32))


def test_gather_matches_numpy_on_5d(context, builder):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 2, 3)).astype(np.float32)
    idx = rng.integers(-6, 6, size=(2, 5)).astype(np.int32)
    out = compute(context, builder, "gather", [x, idx], axis=2)
    assert out.shape == (2, 3, 2, 5, 2, 3)
    np.testing.assert_array_equal(out, np.take(x, resolved(idx, 4), axis=2))


def test_gather_elements(context, builder):
    idx = np.array([[3, 1, 1], [2, 0, 3]], np.uint32)
    out = compute(context, builder, "gather_elements", [INPUT_4x3, idx])
    np.testing.assert_array_equal(out, [[30, 11, 12], [20, 1, 32]])


def test_gather_elements_axis1_negative_and_clamped(context, builder):
    idx = np.array([[-1], [1], [5], [-7]], np.int32)
    out = compute(context, builder, "gather_elements", [INPUT_4x3, idx], axis=1)
    np.testing.assert_array_equal(out, [[2], [11], [22], [30]])


@pytest.mark.parametrize(
    "indices, expected",
    [
        (np.array([[0, 0], [1, 1], [1, 0]], np.uint32), [0, 3, 2]),
        (np.array([[1], [0]], np.uint32), [[2, 3], [0, 1]]),
        (np.array([-1, 9], np.int64), 3),  # output of rank 0
    ],
)
def test_gather_nd(context, builder, indices, expected):
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    out = compute(context, builder, "gather_nd", [x, indices])
    np.testing.assert_array_equal(out, np.array(expected, np.float32))


def test_scatter_elements_spec_examples(context, builder):
    idx = np.array([[3, 1, 1], [2, 0, 3]], np.uint32)
    upd = -np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    out = compute(context, builder, "scatter_elements", [INPUT_4x3, idx, upd])
    np.testing.assert_array_equal(out, [[0, -5, 2], [10, -2, -3], [-4, 21, 22], [-1, 31, -6]])


def test_scatter_elements_axis1_negative_and_clamped(context, builder):
    idx = np.array([[-1], [1], [-9], [9]], np.int64)
    upd = np.array([[-1], [-2], [-3], [-4]], np.float32)
    out = compute(context, builder, "scatter_elements", [INPUT_4x3, idx, upd], axis=1)
    np.testing.assert_array_equal(out, [[0, 1, -1], [10, -2, 12], [-3, 21, 22], [30, 31, -4]])


def test_scatter_nd(context, builder):
    x = np.arange(8, dtype=np.int32).reshape(2, 2, 2)
    idx = np.array([[0, 1], [-1, 0]], np.int32)
    upd = np.array([[-1, -2], [-3, -4]], np.int32)
    out = compute(context, builder, "scatter_nd", [x, idx, upd])
    np.testing.assert_array_equal(out, [[[0, 1], [-1, -2]], [[-3, -4], [6, 7]]])
    assert out.dtype == np.int32


@pytest.mark.parametrize(
    "indices",
    [
        np.array([[4], [3], [-7], [100]], np.int64),
        # A large uint32 is a large positive index (clamped), not a negative one.
        np.array([[4], [3], [1], [2**32 - 1]], np.uint32),
    ],
)
def test_scatter_nd_elements_and_clamp(context, builder, indices):
    x = np.arange(8, dtype=np.float32)
    out = compute(context, builder, "scatter_nd", [x, indices, np.float32([-1, -2, -3, -4])])
    np.testing.assert_array_equal(out, [0, -3, 2, -2, -1, 5, 6, -4])


# -- validation --------------------------------------------------------------


def raises(match, fn, *args, **kwargs):
    with pytest.raises(TypeError, match=match) as info:
        fn(*args, label="lbl", **kwargs)
    assert "[lbl]" in str(info.value)


def test_gather_validation(builder):
    x = operand(builder, "x", "float32", [1, 2, 3])
    i32 = operand(builder, "i", "int32", [5, 6])
    raises("axis", builder.gather, x, i32, axis=3)
    raises("axis", builder.gather, x, i32, axis=-1)
    raises("indices", builder.gather, x, operand(builder, "f", "float32", [2]))
    raises("indices", builder.gather, x, operand(builder, "u", "uint64", [2]))
    raises("input", builder.gather, operand(builder, "s", "float32", []), i32)
    # The output's element count must be a valid dimension.
    big = operand(builder, "big", "int32", [536870912])
    raises("output", builder.gather, operand(builder, "y", "float32", [1, 3, 3, 4]), big, axis=2)
    assert builder.gather(x, operand(builder, "z", "int64", []), axis=1).shape == [1, 3]


def test_gather_elements_validation(builder):
    x = operand(builder, "x", "float32", [1, 2, 3, 4])
    raises("axis", builder.gather_elements, x, operand(builder, "a", "int32", [1, 2, 3, 4]), axis=4)
    raises("indices rank", builder.gather_elements, x, operand(builder, "b", "int32", [1, 2, 3]))
    raises("indices shape", builder.gather_elements, x, operand(builder, "c", "int32", [3, 2, 3, 4]), axis=3)
    raises("indices", builder.gather_elements, x, operand(builder, "d", "float32", [1, 2, 3, 4]))
    out = builder.gather_elements(x, operand(builder, "e", "uint32", [1, 2, 1, 4]), axis=2)
    assert out.shape == [1, 2, 1, 4]


def test_gather_nd_validation(builder):
    x = operand(builder, "x", "float32", [2, 2, 3, 3, 4])
    raises("indices", builder.gather_nd, x, operand(builder, "a", "int32", []))
    raises(r"indices shape\[-1\]", builder.gather_nd, x, operand(builder, "b", "int32", [1, 6]))
    raises("output", builder.gather_nd, x, operand(builder, "c", "int32", [536870912, 1, 1]))
    assert builder.gather_nd(x, operand(builder, "d", "int32", [5, 4, 3])).shape == [5, 4, 3, 4]


def test_scatter_elements_validation(builder):
    x = operand(builder, "x", "float32", [3, 3])
    i23 = operand(builder, "i", "int32", [2, 3])
    u23 = operand(builder, "u", "float32", [2, 3])
    raises("axis", builder.scatter_elements, x, i23, u23, axis=2)
    raises("updates data type", builder.scatter_elements, x, i23, operand(builder, "h", "float16", [2, 3]))
    raises("indices rank", builder.scatter_elements, x, operand(builder, "a", "int32", [2, 3, 3]), u23)
    raises("indices shape", builder.scatter_elements, x, i23, u23, axis=1)
    raises("updates rank", builder.scatter_elements, x, i23, operand(builder, "b", "float32", [2, 3, 3]))
    raises("updates shape", builder.scatter_elements, x, i23, operand(builder, "c", "float32", [2, 4]))
    assert builder.scatter_elements(x, i23, u23).shape == [3, 3]


def test_scatter_nd_validation(builder):
    x = operand(builder, "x", "float32", [4, 4, 4])
    i21 = operand(builder, "i", "int32", [2, 1])
    raises("updates data type", builder.scatter_nd, x, i21, operand(builder, "h", "float16", [2, 4, 4]))
    raises(
        "indices",
        builder.scatter_nd,
        x,
        operand(builder, "s", "int32", []),
        operand(builder, "u", "float32", [2]),
    )
    raises(
        r"indices shape\[-1\]",
        builder.scatter_nd,
        x,
        operand(builder, "a", "int32", [2, 4]),
        operand(builder, "v", "float32", [2]),
    )
    raises("updates shape", builder.scatter_nd, x, i21, operand(builder, "b", "float32", [2, 3, 4]))
    assert builder.scatter_nd(x, i21, operand(builder, "c", "float32", [2, 4, 4])).shape == [4, 4, 4]
