"""Gradients of the activation operators against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(2)


def away_from(x: np.ndarray, kinks: list[float], margin: float = 0.05) -> np.ndarray:
    """``x`` with every element moved at least ``margin`` away from each kink."""
    x = np.array(x, np.float64)
    for k in kinks:
        close = np.abs(x - k) < margin
        x[close] = k + np.where(x[close] >= k, margin, -margin) * 2
    return x


SHAPES = [[], [5], [2, 3, 4]]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["gelu", "sigmoid", "softplus", "softsign", "tanh"])
def test_smooth(op, shape):
    x = rng.uniform(-3, 3, shape)
    if op == "softsign":
        x = away_from(x, [0.0])
    check_gradients(lambda b, v: getattr(b, op)(v), {"x": x})


@pytest.mark.parametrize("shape", SHAPES)
def test_relu(shape):
    x = away_from(rng.standard_normal(shape), [0.0])
    check_gradients(lambda b, v: b.relu(v), {"x": x})


@pytest.mark.parametrize("alpha", [None, 0.3, -1.5])
def test_leaky_relu(alpha):
    x = away_from(rng.standard_normal([3, 4]), [0.0])
    options = {} if alpha is None else {"alpha": alpha}
    check_gradients(lambda b, v: b.leaky_relu(v, **options), {"x": x})


@pytest.mark.parametrize("alpha", [None, 0.5, 2.0])
def test_elu(alpha):
    x = away_from(rng.uniform(-3, 2, [3, 4]), [0.0])
    options = {} if alpha is None else {"alpha": alpha}
    check_gradients(lambda b, v: b.elu(v, **options), {"x": x})


@pytest.mark.parametrize("options", [{}, {"alpha": -0.7, "beta": 2.5}, {"alpha": 0.0}])
def test_linear(options):
    check_gradients(lambda b, v: b.linear(v, **options), {"x": rng.standard_normal([2, 3])})


@pytest.mark.parametrize("options", [{}, {"alpha": 0.4, "beta": 0.3}, {"alpha": -0.5, "beta": 0.25}])
def test_hard_sigmoid(options):
    alpha, beta = options.get("alpha", 0.2), options.get("beta", 0.5)
    # kinks where alpha * x + beta is 0 or 1
    x = away_from(rng.uniform(-5, 5, [4, 5]), [-beta / alpha, (1 - beta) / alpha])
    check_gradients(lambda b, v: b.hard_sigmoid(v, **options), {"x": x})


def test_hard_swish():
    x = away_from(rng.uniform(-5, 5, [4, 6]), [-3.0, 3.0])
    check_gradients(lambda b, v: b.hard_swish(v), {"x": x})


@pytest.mark.parametrize(
    "options", [{}, {"min_value": -0.5}, {"max_value": 0.7}, {"min_value": -0.5, "max_value": 0.7}]
)
def test_clamp(options):
    kinks = [options[k] for k in ("min_value", "max_value") if k in options]
    x = away_from(rng.uniform(-2, 2, [4, 5]), kinks)
    check_gradients(lambda b, v: b.clamp(v, **options), {"x": x})


@pytest.mark.parametrize(
    "shapes",
    [([2, 3], [2, 3]), ([2, 3, 4], [4]), ([2, 3, 4], [3, 1]), ([3, 1], [2, 1, 4]), ([4], []), ([], [2, 2])],
)
def test_prelu(shapes):
    x = away_from(rng.standard_normal(shapes[0]), [0.0])
    slope = rng.standard_normal(shapes[1])
    check_gradients(lambda b, v, s: b.prelu(v, s), {"x": x, "slope": slope})


@pytest.mark.parametrize(("shape", "axis"), [([5], 0), ([3, 4], 0), ([3, 4], 1), ([2, 3, 4], 1), ([2, 3, 4], 2)])
def test_softmax(shape, axis):
    check_gradients(lambda b, v: b.softmax(v, axis), {"x": rng.standard_normal(shape) * 2})


def test_chain():
    # A small composition: the rules combine with the element-wise ones.
    x = rng.standard_normal([3, 4])
    w = rng.standard_normal([3, 4])
    check_gradients(lambda b, v, u: b.softmax(b.tanh(b.mul(b.sigmoid(v), u)), 1), {"x": x, "w": w})
