"""Gradients of the shape and data-movement operators against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from gradcheck import check_gradients
from webml.train import grad

rng = np.random.default_rng(3)


def test_cast_stops_gradients():
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    x = b.input("x", {"dataType": "float32", "shape": [2, 3]})
    y = b.input("y", {"dataType": "float32", "shape": [2, 3]})
    through_cast = b.cast(b.cast(x, "float16"), "float32")
    loss = b.reduce_sum(b.add(through_cast, b.mul(y, y)))
    dx, dy = grad(b, loss, [x, y])
    feeds = {"x": rng.standard_normal([2, 3]), "y": rng.standard_normal([2, 3])}
    result = ctx.compute(b.build({"loss": loss, "dx": dx, "dy": dy}), feeds)
    np.testing.assert_array_equal(result["dx"], np.zeros([2, 3]))
    np.testing.assert_allclose(result["dy"], 2 * feeds["y"])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat(axis):
    shapes = [[2, 3, 2], [2, 3, 2], [2, 3, 2]]
    shapes[1][axis] = 1
    shapes[2][axis] = 3
    inputs = {f"x{i}": rng.standard_normal(s) for i, s in enumerate(shapes)}
    check_gradients(lambda bl, *xs: bl.concat(list(xs), axis), inputs)


def test_concat_same_operand_twice():
    x = rng.standard_normal([2, 3])
    check_gradients(lambda bl, v: bl.concat([v, v, bl.neg(v)], 1), {"x": x})


@pytest.mark.parametrize("shapes", [([3], [2, 3]), ([2, 1], [2, 4]), ([1, 3, 1], [2, 2, 3, 2]), ([], [2, 2])])
def test_expand(shapes):
    check_gradients(lambda bl, v: bl.expand(v, shapes[1]), {"x": rng.standard_normal(shapes[0])})


def test_reshape():
    check_gradients(lambda bl, v: bl.reshape(v, [3, 1, 4]), {"x": rng.standard_normal([2, 6])})


@pytest.mark.parametrize(
    "begin,end",
    [([1, 0], [2, 1]), ([0, 2], [0, 0]), ([2, 1], [1, 2]), ([0, 0], [0, 0])],
)
@pytest.mark.parametrize("mode", ["constant", "edge", "reflection"])
def test_pad(mode, begin, end):
    x = rng.standard_normal([3, 4])
    check_gradients(lambda bl, v: bl.pad(v, begin, end, mode=mode, value=1.5), {"x": x})


@pytest.mark.parametrize("mode", ["constant", "edge", "reflection"])
def test_pad_rank3(mode):
    x = rng.standard_normal([2, 3, 4])
    check_gradients(lambda bl, v: bl.pad(v, [1, 2, 0], [1, 0, 3], mode=mode), {"x": x})


def test_pad_edge_size_one():
    x = rng.standard_normal([1, 3])
    check_gradients(lambda bl, v: bl.pad(v, [2, 1], [3, 0], mode="edge"), {"x": x})


@pytest.mark.parametrize("axes", [None, [], [1], [0, 2]])
def test_reverse(axes):
    x = rng.standard_normal([2, 3, 2])
    check_gradients(lambda bl, v: bl.reverse(v, axes=axes) if axes is not None else bl.reverse(v), {"x": x})


@pytest.mark.parametrize(
    "starts,sizes,strides",
    [
        ([1, 0], [2, 4], None),
        ([0, 1], [3, 3], [2, 1]),
        ([1, 0], [4, 4], [3, 2]),
        ([2, 1], [1, 3], [2, 3]),
        ([0, 0], [5, 4], [1, 1]),
    ],
)
def test_slice(starts, sizes, strides):
    x = rng.standard_normal([5, 4])
    options = {} if strides is None else {"strides": strides}
    check_gradients(lambda bl, v: bl.slice(v, starts, sizes, **options), {"x": x})


def test_slice_rank3_strides():
    x = rng.standard_normal([3, 5, 4])
    check_gradients(lambda bl, v: bl.slice(v, [1, 0, 1], [2, 5, 3], strides=[1, 2, 2]), {"x": x})


@pytest.mark.parametrize("splits,axis", [(3, 1), ([1, 2, 3], 1), (2, 0)])
def test_split(splits, axis):
    x = rng.standard_normal([4, 6])

    def build(bl, v):
        parts = bl.split(v, splits, axis=axis)
        return bl.concat([bl.mul(p, p) for p in parts], axis)

    check_gradients(build, {"x": x})


def test_split_unused_outputs():
    x = rng.standard_normal([2, 6])
    # Only parts 0 and 2 reach the loss: part 1 gets no cotangent.
    check_gradients(lambda bl, v: bl.add(*bl.split(v, 3, axis=1)[::2]), {"x": x})


@pytest.mark.parametrize("repetitions", [[1, 1], [2, 1], [1, 3], [2, 3]])
def test_tile(repetitions):
    check_gradients(lambda bl, v: bl.tile(v, repetitions), {"x": rng.standard_normal([2, 3])})


def test_tile_rank3():
    check_gradients(lambda bl, v: bl.tile(v, [2, 1, 2]), {"x": rng.standard_normal([2, 2, 3])})


@pytest.mark.parametrize("permutation", [None, [0, 2, 1], [1, 2, 0], [2, 0, 1]])
def test_transpose(permutation):
    x = rng.standard_normal([2, 3, 4])
    options = {} if permutation is None else {"permutation": permutation}
    check_gradients(lambda bl, v: bl.transpose(v, **options), {"x": x})


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("diagonal", [-1, 0, 2])
def test_triangular(upper, diagonal):
    x = rng.standard_normal([2, 3, 4])
    check_gradients(lambda bl, v: bl.triangular(v, upper=upper, diagonal=diagonal), {"x": x})


@pytest.mark.parametrize(
    "shapes",
    [([2, 3], [2, 3], [2, 3]), ([2, 3], [3], [2, 1]), ([1, 3], [2, 1], []), ([2, 2, 3], [3], [1, 3])],
)
def test_where(shapes):
    cond_shape, t_shape, f_shape = shapes
    cond = (rng.random(cond_shape) > 0.5).astype(np.uint8)

    def build(bl, t, f):
        c = bl.constant({"dataType": "uint8", "shape": cond_shape}, cond)
        return bl.where(c, t, f)

    check_gradients(build, {"t": rng.standard_normal(t_shape), "f": rng.standard_normal(f_shape)})
