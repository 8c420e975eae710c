"""Reference kernels of the activation operators.

Each follows the expression (or emulation) in the operator's section of the
spec, evaluated in float64; scalar options arrive already cast to the
input's data type.  Where a mathematically equal form is more accurate in
float64 it is used and named.
"""

from __future__ import annotations

import math

import numpy as np

from ...ops.checks import INT64_MAX, INT64_MIN
from .kernels import kernel
from .unary import erf_float64


@kernel("clamp")
def clamp(input, *, out, min_value, max_value):
    # min(max(x, minValue), maxValue) as in the spec's emulation: NaN inputs
    # stay NaN.  Integers stay integers (int64 or uint64 arrays; the bounds
    # were cast to the input's type, so they fit), so the result is exact.
    return np.minimum(np.maximum(input, min_value), max_value)


@kernel("elu")
def elu(input, *, out, alpha):
    # alpha * (exp(min(0, x)) - 1), with expm1 for the same value without cancellation.
    return np.maximum(input, 0.0) + alpha * np.expm1(np.minimum(input, 0.0))


@kernel("gelu")
def gelu(input, *, out):
    return 0.5 * input * (1.0 + erf_float64(input / math.sqrt(2.0)))


@kernel("hardSigmoid")
def hard_sigmoid(input, *, out, alpha, beta):
    return np.maximum(0.0, np.minimum(1.0, alpha * input + beta))


@kernel("hardSwish")
def hard_swish(input, *, out):
    return input * np.maximum(0.0, np.minimum(6.0, input + 3.0)) / 6.0


@kernel("leakyRelu")
def leaky_relu(input, *, out, alpha):
    return np.maximum(input, 0.0) + alpha * np.minimum(input, 0.0)


@kernel("linear")
def linear(input, *, out, alpha, beta):
    return alpha * input + beta


@kernel("prelu")
def prelu(input, slope, *, out):
    # max(0, x) + slope * min(0, x): one term is always 0, so this is the
    # same as choosing between x and slope * x.
    if input.dtype.kind == "f":
        return np.maximum(input, 0.0) + slope * np.minimum(input, 0.0)
    return np.where(input > 0, input, _saturating_product(slope, np.minimum(input, 0)))


def _saturating_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b for int64 arrays, saturated to the int64 range instead of wrapping.

    The runtime then saturates to the output type, so an overflow gives the
    type's bound, as it would in exact arithmetic.
    """
    product = a * b
    approx = a.astype(np.float64) * b.astype(np.float64)
    product = np.where(approx >= 2.0**63, INT64_MAX, product)
    return np.where(approx < -(2.0**63), INT64_MIN, product)


@kernel("relu")
def relu(input, *, out):
    return np.maximum(input, 0)


@kernel("sigmoid")
def sigmoid(input, *, out):
    return 1.0 / (1.0 + np.exp(-input))


@kernel("softmax")
def softmax(input, *, out, axis):
    # exp(x - max) / sum(exp(x - max)): the spec's emulation subtracts the
    # maximum too, which keeps exp from overflowing.
    shifted = np.exp(input - np.max(input, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


@kernel("softplus")
def softplus(input, *, out):
    # ln(1 + exp(x)), computed as logaddexp(0, x): equal, but without
    # overflow of exp for large x or loss of precision for very negative x.
    return np.logaddexp(0.0, input)


@kernel("softsign")
def softsign(input, *, out):
    return input / (1.0 + np.abs(input))


@kernel("tanh")
def tanh(input, *, out):
    return np.tanh(input)
