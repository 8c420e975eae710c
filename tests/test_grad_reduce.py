"""Gradients of the reductions (but reduceSum), argMin/argMax and cumulativeSum against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from gradcheck import check_gradients
from webml.train import grad

rng = np.random.default_rng(5)

AXES = [
    ([2, 3, 4], None, False),
    ([2, 3, 4], [1], False),
    ([2, 3, 4], [2, 0], True),
    ([3, 4], [], False),
    ([5], [0], True),
    ([], None, False),
]

SMOOTH = ["reduce_mean", "reduce_sum_square", "reduce_l1", "reduce_l2", "reduce_log_sum", "reduce_log_sum_exp"]


def sample(op, shape):
    if op == "reduce_log_sum":
        return rng.uniform(0.5, 2.0, shape)
    if op == "reduce_l1":  # away from the kink at 0
        return rng.uniform(0.2, 1.0, shape) * rng.choice([-1, 1], shape)
    if op == "reduce_product":
        return rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    if op in ("reduce_max", "reduce_min"):  # distinct values, well apart
        return rng.permutation(np.prod(shape, dtype=int)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("op", [*SMOOTH, "reduce_max", "reduce_min", "reduce_product"])
@pytest.mark.parametrize("case", range(len(AXES)))
def test_reduction(op, case):
    shape, axes, keep = AXES[case]
    options = {"keep_dimensions": keep} | ({} if axes is None else {"axes": axes})
    check_gradients(lambda b, x: getattr(b, op)(x, **options), {"x": sample(op, shape)})


def gradient_of(build, x, weights):
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    xi = b.input("x", {"dataType": "float32", "shape": list(x.shape)})
    y = build(b, xi)
    w = b.constant({"dataType": "float32", "shape": list(y.shape)}, np.asarray(weights, np.float32))
    (dx,) = grad(b, b.reduce_sum(b.mul(y, w)), [xi])
    return ctx.compute(b.build({"dx": dx}), {"x": x})["dx"]


@pytest.mark.parametrize(("op", "axes"), [("reduce_max", [1]), ("reduce_min", [0, 1])])
def test_extremum_ties_go_to_the_first(op, axes):
    x = np.array([[2.0, 5.0, 5.0], [5.0, 2.0, 2.0]])
    weights = [3.0, 4.0] if axes == [1] else 3.0
    expected = [[0.0, 3.0, 0.0], [4.0, 0.0, 0.0]] if axes == [1] else [[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    np.testing.assert_array_equal(gradient_of(lambda b, x: getattr(b, op)(x, axes=axes), x, weights), expected)


@pytest.mark.parametrize("zeros", [1, 2])
def test_reduce_product_with_zeros(zeros):
    x = np.array([[2.0, 0.0, 3.0, 0.5], [1.5, 0.0, -2.0, 0.0 if zeros == 2 else 4.0]])
    result = gradient_of(lambda b, x: b.reduce_product(x, axes=[1]), x, [1.0, 2.0])
    expected = [[0.0, 3.0, 0.0, 0.0], [0.0, 2.0 * -12.0, 0.0, 0.0] if zeros == 1 else [0.0, 0.0, 0.0, 0.0]]
    np.testing.assert_array_equal(result, expected)
    check_gradients(lambda b, x: b.reduce_product(x, axes=[0]), {"x": x[:, :1] + 0.0})


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("shape", "axis"), [([5], 0), ([2, 4, 3], 1)])
def test_cumulative_sum(shape, axis, exclusive, reverse):
    check_gradients(
        lambda b, x: b.cumulative_sum(x, axis, exclusive=exclusive, reversed=reverse),
        {"x": rng.standard_normal(shape)},
    )


@pytest.mark.parametrize("op", ["arg_max", "arg_min"])
def test_no_gradient_through_arg(op):
    # The indices stop the gradient: only the other path counts.
    def build(b, x):
        index = b.cast(getattr(b, op)(x, 1, keep_dimensions=True), "float32")
        return b.add(b.mul(x, b.expand(index, list(x.shape))), x)

    x = np.array([[1.0, 3.0, 2.0], [4.0, 0.0, 1.0]])
    expected = np.array([[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])  # index + 1
    np.testing.assert_array_equal(
        gradient_of(build, x, np.ones([2, 3])), expected if op == "arg_max" else [[1, 1, 1], [2, 2, 2]]
    )
