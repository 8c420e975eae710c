"""Reductions, argMin/argMax, cumulativeSum and normalizations on ONNX Runtime against the reference backend.

Integer results must be identical: exact, and saturated to the output type.
"""

from __future__ import annotations

import numpy as np
import pytest

import webml
from webml import dtypes

RNG = np.random.default_rng(11)
I32, U32 = np.iinfo(np.int32), np.iinfo(np.uint32)
I64, U64 = np.iinfo(np.int64), np.iinfo(np.uint64)


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="onnxruntime")


def run(context, build, data_type, arrays):
    builder = webml.MLGraphBuilder(context)
    operands = {k: builder.input(k, {"dataType": data_type, "shape": list(np.shape(a))}) for k, a in arrays.items()}
    graph = builder.build({"out": build(builder, **operands)})
    return context.compute(graph, arrays)["out"]


def compare(contexts, build, data_type, exact=True, **arrays):
    arrays = {k: np.asarray(a, dtype=dtypes.numpy_dtype(data_type)) for k, a in arrays.items()}
    expected = run(contexts[0], build, data_type, arrays)
    actual = run(contexts[1], build, data_type, arrays)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        tol = 2e-3 if data_type == "float16" else 1e-5
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=tol, atol=tol)


def reduction(name, **options):
    return lambda b, x: getattr(b, name)(x, **options)


INT_CASES = {
    "int32": [
        [[I32.max, 5, -3], [I32.min, -5, 7]],
        [[I32.min, I32.min, 1], [0, 2**16, 2**16]],
        [[46341, 46341, 0], [-46341, 3, 46340]],
    ],
    "uint32": [
        [[U32.max, 5, 3], [0, 1, 2]],
        [[2**16, 2**16, 2], [65535, 65537, 1]],
    ],
}


@pytest.mark.parametrize("data_type", ["int32", "uint32"])
@pytest.mark.parametrize("name", ["reduce_sum", "reduce_l1", "reduce_sum_square", "reduce_product"])
@pytest.mark.parametrize("axes", [None, [0], [1], []])
def test_32_bit_integer_sums_and_products_saturate(contexts, data_type, name, axes):
    for x in INT_CASES[data_type]:
        compare(contexts, reduction(name, axes=axes), data_type, x=x)
        compare(contexts, reduction(name, axes=axes, keep_dimensions=True), data_type, x=x)


def test_integer_products_past_double_range(contexts):
    big = np.full(40, 2**30, dtype=np.int64)
    for x in (big, np.append(big, 0), np.append(big, -1), np.append(big, [0, -1])):
        compare(contexts, reduction("reduce_product"), "int32", x=x)
        compare(contexts, reduction("reduce_product"), "uint32", x=np.abs(x))


@pytest.mark.parametrize("data_type", ["int32", "uint32", "int64", "uint64", "int8", "uint8"])
@pytest.mark.parametrize("name", ["reduce_max", "reduce_min", "arg_max", "arg_min"])
def test_min_max_over_the_whole_integer_range(contexts, data_type, name):
    info = np.iinfo(dtypes.numpy_dtype(data_type))
    low, high = int(info.min), int(info.max)
    x = np.array([[low, high, high - 1, low + 1], [high, low, 0 if low < 0 else low + 2, high - 1]], dtype=info.dtype)
    if name.startswith("arg"):
        for out in ("int32", "int64"):
            compare(contexts, lambda b, x, out=out: getattr(b, name)(x, 1, output_data_type=out), data_type, x=x)
            compare(contexts, lambda b, x: getattr(b, name)(x, 0, keep_dimensions=True), data_type, x=x)
    else:
        for axes in (None, [0], [1], []):
            compare(contexts, reduction(name, axes=axes), data_type, x=x)


CUMULATIVE = {
    "int32": [[I32.max, 5, -10, I32.min, I32.min, 3]],
    "uint32": [[U32.max, 5, 10, 0, U32.max, 3]],
    "int64": [[I64.max, 5, -10, I64.min, I64.min, 3], [2**53 + 1, 2, 2**62, -(2**62), I64.min, -1]],
    "uint64": [[U64.max, 5, 10, 0, 2**63, 3], [2**53 + 1, 2, 2**62, 2**62, 2**63, 2**63]],
}


@pytest.mark.parametrize("data_type", list(CUMULATIVE))
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_integer_cumulative_sums_saturate(contexts, data_type, exclusive, reverse):
    for row in CUMULATIVE[data_type]:
        x = np.array([row, row[::-1]], dtype=dtypes.numpy_dtype(data_type))
        for axis in (0, 1):
            compare(
                contexts,
                lambda b, x, axis=axis: b.cumulative_sum(x, axis, exclusive=exclusive, reversed=reverse),
                data_type,
                x=x,
            )


@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_float_cumulative_sum(contexts, data_type):
    x = RNG.uniform(-1, 1, (3, 4, 5))
    for axis in range(3):
        compare(
            contexts, lambda b, x, axis=axis: b.cumulative_sum(x, axis, exclusive=True), data_type, exact=False, x=x
        )


FLOAT_REDUCTIONS = [
    "reduce_l1",
    "reduce_l2",
    "reduce_log_sum",
    "reduce_log_sum_exp",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_product",
    "reduce_sum",
    "reduce_sum_square",
]


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("name", FLOAT_REDUCTIONS)
def test_float_reductions(contexts, data_type, name):
    x = RNG.uniform(0.5, 1.5, (2, 3, 4))
    for axes in (None, [], [1], [2, 0]):
        for keep in (False, True):
            compare(contexts, reduction(name, axes=axes, keep_dimensions=keep), data_type, exact=False, x=x)


@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_layer_normalization_axes(contexts, data_type):
    shape = (2, 3, 4, 5)
    for axes in ([3], [2, 3], [3, 2], [0, 2], [1], [3, 1, 0], []):
        sizes = [shape[a] for a in axes]
        x, s, b = RNG.uniform(-1, 1, shape), RNG.uniform(0.5, 1.5, sizes), RNG.uniform(-1, 1, sizes)
        compare(contexts, lambda bl, x, axes=axes: bl.layer_normalization(x, axes=axes), data_type, exact=False, x=x)
        compare(
            contexts,
            lambda bl, x, s, b, axes=axes: bl.layer_normalization(x, scale=s, bias=b, axes=axes, epsilon=1e-3),
            data_type,
            exact=False,
            x=x,
            s=s,
            b=b,
        )


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_instance_normalization(contexts, data_type, layout):
    x = RNG.uniform(-1, 1, (2, 3, 4, 5))
    c = 3 if layout == "nchw" else 5
    s, b = RNG.uniform(0.5, 1.5, c), RNG.uniform(-1, 1, c)
    compare(contexts, lambda bl, x: bl.instance_normalization(x, layout=layout), data_type, exact=False, x=x)
    compare(
        contexts,
        lambda bl, x, s, b: bl.instance_normalization(x, scale=s, bias=b, layout=layout),
        data_type,
        exact=False,
        x=x,
        s=s,
        b=b,
    )


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 4, 5)])
def test_batch_normalization_axes(contexts, data_type, shape):
    x = RNG.uniform(-1, 1, shape)
    for axis in range(len(shape)):
        c = shape[axis]
        m, v, s, b = RNG.uniform(-1, 1, c), RNG.uniform(0.5, 1.5, c), RNG.uniform(0.5, 1.5, c), RNG.uniform(-1, 1, c)
        compare(
            contexts,
            lambda bl, x, m, v, axis=axis: bl.batch_normalization(x, m, v, axis=axis),
            data_type,
            False,
            x=x,
            m=m,
            v=v,
        )
        compare(
            contexts,
            lambda bl, x, m, v, s, b, axis=axis: bl.batch_normalization(
                x, m, v, scale=s, bias=b, axis=axis, epsilon=1e-3
            ),
            data_type,
            False,
            x=x,
            m=m,
            v=v,
            s=s,
            b=b,
        )
