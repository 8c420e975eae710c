"""Gradients of the indexing operators against central finite differences (repeated indices included)."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(5)


def _indices(bl, values, data_type="int32"):
    values = np.asarray(values)
    return bl.constant({"dataType": data_type, "shape": list(values.shape)}, values.astype(data_type))


@pytest.mark.parametrize(
    "shape,indices,axis",
    [
        ([4, 3], [0, 2, 2, 3, 0], 0),  # repeated
        ([4, 3], [[1, 1], [2, 0]], 1),  # repeated, 2-D indices
        ([2, 3, 4], [3, -1, 0, -4], 2),  # negative (-1 == 3, -4 == 0)
        ([3, 2], 1, 0),  # scalar index
        ([3, 4], [7, -9, 1], 1),  # out of range: clamped
    ],
)
@pytest.mark.parametrize("data_type", ["int32", "int64"])
def test_gather(shape, indices, axis, data_type):
    x = rng.standard_normal(shape)
    check_gradients(lambda bl, v: bl.gather(v, _indices(bl, indices, data_type), axis=axis), {"x": x})


def test_gather_uint32():
    x = rng.standard_normal([3, 2])
    check_gradients(lambda bl, v: bl.gather(v, _indices(bl, [2, 2, 0], "uint32")), {"x": x})


@pytest.mark.parametrize(
    "shape,indices,axis",
    [
        ([3, 2], [[0, 1], [0, 0], [2, 0], [0, 1]], 0),  # more rows than input, repeated
        ([2, 4], [[3, 3, 0], [1, -1, 1]], 1),
        ([2, 3, 2], [[[1, 1]], [[0, 2]]], 1),
    ],
)
def test_gather_elements(shape, indices, axis):
    x = rng.standard_normal(shape)
    check_gradients(lambda bl, v: bl.gather_elements(v, _indices(bl, indices), axis=axis), {"x": x})


@pytest.mark.parametrize(
    "shape,indices",
    [
        ([3, 4], [[0, 1], [2, 3], [0, 1], [-1, 0]]),  # full coordinates, repeated (-1, 0) == (2, 0)
        ([3, 2, 2], [[1], [1], [0]]),  # slices, repeated
        ([3, 2, 2], [[[2, 1], [0, 0]], [[2, 1], [1, 1]]]),  # batch of 2x2 coordinate pairs
        ([4, 2], [3, 1]),  # one coordinate, scalar output
    ],
)
def test_gather_nd(shape, indices):
    x = rng.standard_normal(shape)
    check_gradients(lambda bl, v: bl.gather_nd(v, _indices(bl, indices, "int64")), {"x": x})


@pytest.mark.parametrize(
    "shape,indices,axis",
    [
        ([4, 3], [[1, 0, 3], [2, 0, 0]], 0),
        ([4, 3], [[1, 0, 3], [1, 0, 3]], 0),  # every column repeated: one update of each pair is overwritten
        ([2, 4], [[3, 3], [0, -4]], 1),  # repeated within a row (-4 == 0)
    ],
)
def test_scatter_elements(shape, indices, axis):
    x = rng.standard_normal(shape)
    u = rng.standard_normal(np.shape(indices))
    check_gradients(
        lambda bl, v, w: bl.scatter_elements(v, _indices(bl, indices), w, axis=axis), {"input": x, "updates": u}
    )


@pytest.mark.parametrize(
    "shape,indices",
    [
        ([3, 4], [[0, 1], [2, 3]]),
        ([3, 4], [[0, 1], [2, 3], [0, 1]]),  # repeated element
        ([4, 2, 2], [[1], [3], [1]]),  # repeated slice
        ([3, 2], [[-1], [2]]),  # repeated slice through a negative index
        ([3, 2], [1, 0]),  # a single element
    ],
)
def test_scatter_nd(shape, indices):
    x = rng.standard_normal(shape)
    indices_arr = np.asarray(indices)
    u = rng.standard_normal(indices_arr.shape[:-1] + tuple(shape[indices_arr.shape[-1] :]))
    check_gradients(lambda bl, v, w: bl.scatter_nd(v, _indices(bl, indices), w), {"input": x, "updates": u})


def test_gather_then_scatter_chain():
    # Gradients flow through a gather into a scatter's updates.
    x = rng.standard_normal([4, 3])
    y = rng.standard_normal([2, 3])

    def build(bl, v, w):
        picked = bl.gather(v, _indices(bl, [3, 3]), axis=0)
        return bl.scatter_nd(w, _indices(bl, [[1], [0]]), bl.mul(picked, picked))

    check_gradients(build, {"x": x, "y": y})
