"""The onnxruntime lowerings of the indexing operators agree with the reference backend.

Out-of-range and negative indices (clamped, counted from the end), every index
type, input and constant indices, 0-D indices.
"""

from __future__ import annotations

import numpy as np
import pytest

import webml


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="onnxruntime")


def run_both(contexts, build, inputs, constants=()):
    """``build(builder, operands)`` on both backends; inputs named in ``constants`` become constants."""
    results = []
    for context in contexts:
        builder = webml.MLGraphBuilder(context)
        operands = {}
        for name, array in inputs.items():
            desc = {"dataType": str(array.dtype), "shape": list(array.shape)}
            operands[name] = builder.constant(desc, array) if name in constants else builder.input(name, desc)
        graph = builder.build({"out": build(builder, operands)})
        feeds = {k: v for k, v in inputs.items() if k not in constants}
        results.append(context.compute(graph, feeds)["out"])
    reference, actual = results
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    np.testing.assert_array_equal(actual, reference)
    return actual


RNG = np.random.default_rng(7)
DATA = RNG.standard_normal((4, 5, 3)).astype(np.float32)


def indices(shape, low, high, dtype):
    return RNG.integers(low, high, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int64"])
@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather(contexts, dtype, constant, axis):
    low = 0 if dtype == "uint32" else -12
    inputs = {"x": DATA, "i": indices((2, 3), low, 12, dtype)}
    run_both(contexts, lambda b, o: b.gather(o["x"], o["i"], axis=axis), inputs, {"i"} if constant else ())


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int64"])
@pytest.mark.parametrize("value", [-100, -4, -1, 3, 100])
def test_gather_scalar_indices(contexts, dtype, value):
    if dtype == "uint32" and value < 0:
        value = 2**32 - 1
    inputs = {"x": DATA, "i": np.asarray(value, dtype=dtype)}
    run_both(contexts, lambda b, o: b.gather(o["x"], o["i"]), inputs)


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int64"])
@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_elements_and_scatter_elements(contexts, dtype, constant, axis):
    low = 0 if dtype == "uint32" else -9
    constants = {"i"} if constant else ()
    shape = list(DATA.shape)
    shape[axis] = 2
    inputs = {"x": DATA, "i": indices(shape, low, 9, dtype)}
    run_both(contexts, lambda b, o: b.gather_elements(o["x"], o["i"], axis=axis), inputs, constants)
    # Distinct (once resolved) indices per line, so the winner of a duplicate does not matter.
    size = DATA.shape[axis]
    unique = np.argsort(RNG.random(DATA.shape), axis=axis).take(range(2), axis=axis)
    shifted = np.where(RNG.random(unique.shape) < 0.5, unique - size, unique) if dtype != "uint32" else unique
    inputs = {"x": DATA, "i": shifted.astype(dtype), "u": RNG.standard_normal(shape).astype(np.float32)}
    run_both(contexts, lambda b, o: b.scatter_elements(o["x"], o["i"], o["u"], axis=axis), inputs, constants)


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int64"])
@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_gather_nd(contexts, dtype, constant, k):
    low = 0 if dtype == "uint32" else -7
    inputs = {"x": DATA, "i": indices((2, 2, k), low, 7, dtype)}
    run_both(contexts, lambda b, o: b.gather_nd(o["x"], o["i"]), inputs, {"i"} if constant else ())


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int64"])
@pytest.mark.parametrize("constant", [False, True])
def test_scatter_nd(contexts, dtype, constant):
    # Distinct rows 0..3 of axis 0, written as out-of-range or negative aliases of themselves.
    rows = np.array([[3, 0], [1, 4]])
    sizes = np.array([4, 5])
    if dtype == "uint32":
        coords = np.where(rows == sizes - 1, rows + 50, rows)
    else:
        coords = np.where(rows % 2 == 0, rows - sizes, rows)
        coords[0, 0] = 99  # clamps to 3
    inputs = {
        "x": DATA,
        "i": coords.reshape(2, 2).astype(dtype),
        "u": RNG.standard_normal((2, 3)).astype(np.float32),
    }
    run_both(contexts, lambda b, o: b.scatter_nd(o["x"], o["i"], o["u"]), inputs, {"i"} if constant else ())


@pytest.mark.parametrize("data_type", ["float16", "int32", "uint32", "int64", "uint64", "int8", "uint8"])
def test_every_input_type(contexts, data_type):
    x = (np.arange(12) % 100).astype(data_type).reshape(3, 4)
    inputs = {"x": x, "i": np.array([[-1, 7], [0, -9]], np.int32)}
    run_both(contexts, lambda b, o: b.gather_nd(o["x"], o["i"]), inputs)
    run_both(contexts, lambda b, o: b.gather(o["x"], o["i"], axis=1), inputs)
