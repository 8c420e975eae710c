"""The onnxruntime lowering of resample2d agrees with the reference backend.

Nearest-neighbor exactly (including the sizes where ONNX Runtime's float32
coordinates pick the other neighbour near a tie, such as 36 -> 21), linear
within float32 rounding (integers exactly), every axes pair.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import webml

RNG = np.random.default_rng(5)
AXES = [(2, 3), (3, 2), (1, 2), (2, 1), (0, 1), (1, 3), (0, 3), (3, 0)]


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="onnxruntime")


def run_both(contexts, x, **options):
    results = []
    for context in contexts:
        b = webml.MLGraphBuilder(context)
        xo = b.input("x", {"dataType": x.dtype.name, "shape": list(x.shape)})
        graph = b.build({"out": b.resample2d(xo, **options)})
        results.append(context.compute(graph, {"x": x})["out"])
    reference, actual = results
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    return reference, actual


def data(shape, data_type):
    if data_type in ("int8", "uint8"):
        low, high = (-128, 127) if data_type == "int8" else (0, 255)
        return RNG.integers(low, high, size=shape, endpoint=True).astype(data_type)
    return RNG.standard_normal(shape).astype(data_type)


@pytest.mark.parametrize("data_type", ["float32", "float16", "int8", "uint8"])
@pytest.mark.parametrize("axes", AXES)
def test_nearest_is_exact(contexts, data_type, axes):
    # 36 -> 21 and 14 -> 19 are sizes where float32 coordinates fall on the wrong side of a tie.
    for (h, oh), (w, ow) in [((36, 21), (14, 19)), ((3, 4), (5, 2)), ((1, 3), (7, 1)), ((6, 6), (4, 9))]:
        shape = [2, 2, 2, 2]
        shape[axes[0]], shape[axes[1]] = h, w
        reference, actual = run_both(contexts, data(shape, data_type), sizes=[oh, ow], axes=list(axes))
        np.testing.assert_array_equal(actual, reference)


def test_nearest_every_size_pair(contexts):
    for h, oh in itertools.product(range(1, 24), repeat=2):
        x = data((1, 1, h, 3), "float32")
        reference, actual = run_both(contexts, x, sizes=[oh, 3])
        np.testing.assert_array_equal(actual, reference, err_msg=f"{h} -> {oh}")


@pytest.mark.parametrize("data_type", ["float32", "float16", "int8", "uint8"])
@pytest.mark.parametrize("axes", AXES)
def test_linear(contexts, data_type, axes):
    for (h, oh), (w, ow) in [((5, 8), (3, 7)), ((8, 3), (1, 4)), ((4, 4), (6, 2))]:
        shape = [2, 3, 2, 2]
        shape[axes[0]], shape[axes[1]] = h, w
        reference, actual = run_both(contexts, data(shape, data_type), mode="linear", sizes=[oh, ow], axes=list(axes))
        if data_type in ("int8", "uint8"):
            np.testing.assert_array_equal(actual, reference)
        else:
            tolerance = 1e-5 if data_type == "float32" else 2e-3
            np.testing.assert_allclose(actual, reference, rtol=tolerance, atol=tolerance)
