"""Gradients of the element-wise unary operators against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(3)

# The domain each operator is checked on (kept away from kinks and poles).
DOMAINS = {
    "abs": (0.1, 2.0),  # sign is applied below
    "cos": (-3.0, 3.0),
    "erf": (-2.0, 2.0),
    "exp": (-2.0, 2.0),
    "identity": (-2.0, 2.0),
    "log": (0.2, 3.0),
    "neg": (-2.0, 2.0),
    "reciprocal": (0.3, 2.0),  # sign is applied below
    "sin": (-3.0, 3.0),
    "sqrt": (0.2, 3.0),
    "tan": (-1.2, 1.2),
}


@pytest.mark.parametrize("shape", [[], [4], [2, 3]])
@pytest.mark.parametrize("op", sorted(DOMAINS))
def test_smooth(op, shape):
    x = rng.uniform(*DOMAINS[op], shape)
    if op in ("abs", "reciprocal"):
        x = x * rng.choice([-1.0, 1.0], shape)
    check_gradients(lambda b, v: getattr(b, op)(v), {"x": x})


@pytest.mark.parametrize("op", ["ceil", "floor", "round_even", "sign"])
def test_piecewise_constant(op):
    # Zero gradient away from the steps; the other term keeps the loss connected.
    x = rng.uniform(-3, 3, [2, 3])
    x = np.where(np.abs(x - np.round(x)) < 0.1, x + 0.25, x)
    x = np.where(np.abs(x) < 0.1, 0.3, x)
    x = np.where(np.abs(x - np.round(x) - 0.5) < 0.1, x + 0.2, x)  # roundEven's steps at halves
    check_gradients(lambda b, v: b.add(getattr(b, op)(v), b.mul(v, v)), {"x": x})


def test_piecewise_constant_only():
    # With the loss reached only through floor, the gradient is all zeros.
    import webml
    from webml.train import grad

    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    x = b.input("x", {"dataType": "float32", "shape": [3]})
    (dx,) = grad(b, b.reduce_sum(b.floor(x)), [x])
    out = ctx.compute(b.build({"dx": dx}), {})["dx"]  # a constant: the graph no longer reads x
    np.testing.assert_array_equal(out, np.zeros(3))


def test_logical_stops_gradient():
    # Comparisons on the path (as where()'s condition) pass no gradient to their inputs:
    # d/dx sum(where(x > 0 and not isNaN(x), x * x, 3 * x)) = 2x or 3.
    import webml
    from webml.ops.registry import GRADIENTS
    from webml.train import grad

    assert "where" in GRADIENTS
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    x = b.input("x", {"dataType": "float32", "shape": [4]})
    mask = b.logical_not(b.logical_or(b.is_nan(x), b.lesser_or_equal(x, b.constant("float32", 0))))
    loss = b.reduce_sum(b.where(mask, b.mul(x, x), b.mul(x, b.constant("float32", 3))))
    (dx,) = grad(b, loss, [x])
    out = ctx.compute(b.build({"dx": dx}), {"x": np.array([0.5, -1.5, 2.0, -0.1])})["dx"]
    np.testing.assert_allclose(out, [1.0, 3.0, 4.0, 3.0])


def test_chain():
    x = rng.uniform(0.5, 1.5, [2, 3])
    check_gradients(lambda b, v: b.log(b.add(b.exp(b.sin(v)), b.sqrt(b.abs(b.erf(v))))), {"x": x})
