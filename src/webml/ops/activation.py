"""Activation operators: clamp, elu, gelu, hardSigmoid, hardSwish, leakyRelu, linear,
prelu, relu, sigmoid, softmax, softplus, softsign, tanh.

All but prelu return a copy of the input's descriptor; their options (scalar
multipliers and bounds) are cast to the input's data type as the spec's
method steps say, so the kernel computes with exactly the values the spec's
operator holds.
"""

from __future__ import annotations

import math
from typing import Any

from .. import dtypes
from ..ir import OperandDesc, Value
from .checks import (
    FLOATS,
    SPEC_TYPES,
    axis_in_rank,
    broadcast_bidirectional,
    check_shape,
    limit,
    number,
    same_type,
)
from .registry import Call, gradient, op
from .unary import derivative

FLOAT = limit(FLOATS)
# relu and prelu also take the signed integer types int64, int32 and int8.
FLOAT_SIGNED_INT = limit((*FLOATS, "int64", "int32", "int8"))


def double(call: Call, value: Any, name: str, data_type: str) -> float:
    """A WebIDL (restricted) ``double`` option, cast to ``data_type`` (the spec's *cast*).

    ``double`` rejects NaN and the infinities; the cast may still round a
    finite value to an infinity of a narrower type (e.g. 1e6 in float16).
    """
    v = number(call, value, name)
    try:
        f = float(v)
    except OverflowError:  # an int beyond float64's range is not a finite double
        f = math.inf
    if not math.isfinite(f):
        raise call.error(f"{name} must be a finite number, got {value!r}")
    return dtypes.cast_number(f, data_type)


def same_as_input(call: Call, input: Value, **attrs: Any) -> Value:
    """Emit the node; its output is a copy of the input's descriptor (*copying an MLOperand*)."""
    return call.emit({"input": input}, OperandDesc(input.data_type, input.shape), **attrs)


def with_doubles(call: Call, input: Value, **options: Any) -> Value:
    """Emit the node of an activation whose options are ``double`` multipliers (alpha, beta)."""
    return same_as_input(call, input, **{name: double(call, v, name, input.data_type) for name, v in options.items()})


def plain(call: Call, input: Value) -> Value:
    """The rule of the activations without options: the data type was checked by the limits."""
    return same_as_input(call, input)


for _name in ("gelu", "hardSwish", "sigmoid", "softplus", "softsign", "tanh"):
    op(_name, family="activation", input=FLOAT, output=FLOAT)(plain)

op("relu", family="activation", input=FLOAT_SIGNED_INT, output=FLOAT_SIGNED_INT)(plain)


@op("clamp", family="activation", input=limit(SPEC_TYPES), output=limit(SPEC_TYPES))
def clamp(call: Call, input: Value, *, min_value: Any = None, max_value: Any = None) -> Value:
    """Clamp to [min_value, max_value]; either bound may be omitted.

    An omitted bound is the spec's unbounded default: -Infinity for the
    minimum, +Infinity for the maximum.  (The spec's text swaps the two
    defaults, an evident slip: as written, ``clamp(x)`` would always throw,
    contradicting its note and WPT.)  Both bounds are MLNumbers (``unrestricted
    double`` or bigint), so infinities and NaN are accepted; after the cast to
    the input's type an integer type saturates them to its range.  (WPT's
    "Throw if options.minValue is -Infinity" predates MLNumber and is marked
    there "to be removed once infinite minValue is allowed".)
    """
    lo = -math.inf if min_value is None else number(call, min_value, "min_value")
    hi = math.inf if max_value is None else number(call, max_value, "max_value")
    lo = dtypes.cast_number(lo, input.data_type)
    hi = dtypes.cast_number(hi, input.data_type)
    if lo > hi:
        raise call.error(
            f"min_value {lo} must not be greater than max_value {hi} (after the cast to {input.data_type})"
        )
    return same_as_input(call, input, min_value=lo, max_value=hi)


@op("elu", family="activation", input=FLOAT, output=FLOAT)
def elu(call: Call, input: Value, *, alpha: Any = 1.0) -> Value:
    """max(0, x) + alpha * (exp(min(0, x)) - 1)."""
    return with_doubles(call, input, alpha=alpha)


@op("hardSigmoid", family="activation", input=FLOAT, output=FLOAT)
def hard_sigmoid(call: Call, input: Value, *, alpha: Any = 0.2, beta: Any = 0.5) -> Value:
    """max(0, min(1, alpha * x + beta))."""
    return with_doubles(call, input, alpha=alpha, beta=beta)


@op("leakyRelu", family="activation", input=FLOAT, output=FLOAT)
def leaky_relu(call: Call, input: Value, *, alpha: Any = 0.01) -> Value:
    """max(0, x) + alpha * min(0, x)."""
    return with_doubles(call, input, alpha=alpha)


@op("linear", family="activation", input=FLOAT, output=FLOAT)
def linear(call: Call, input: Value, *, alpha: Any = 1.0, beta: Any = 0.0) -> Value:
    """alpha * x + beta."""
    return with_doubles(call, input, alpha=alpha, beta=beta)


@op("prelu", family="activation", input=FLOAT_SIGNED_INT, slope=FLOAT_SIGNED_INT, output=FLOAT_SIGNED_INT)
def prelu(call: Call, input: Value, slope: Value) -> Value:
    """max(0, x) + slope * min(0, x), with input and slope bidirectionally broadcast.

    The spec's method steps broadcast bidirectionally (the output takes the
    larger rank), though WPT's test names still speak of the older
    unidirectional rule; every WPT case passes under both.
    """
    same_type(call, input, slope, names=("input", "slope"))
    shape = broadcast_bidirectional(slope.shape, input.shape)
    if shape is None:
        slope_shape, input_shape = list(slope.shape), list(input.shape)
        raise call.error(f"slope shape {slope_shape} is not broadcastable with input shape {input_shape}")
    return call.emit({"input": input, "slope": slope}, OperandDesc(input.data_type, check_shape(call, shape)))


@op("softmax", family="activation", input=limit(FLOATS, 1), output=limit(FLOATS, 1))
def softmax(call: Call, input: Value, axis: Any) -> Value:
    """exp(x) / sum(exp(x)) along ``axis`` (an unsigned long less than the input's rank)."""
    return same_as_input(call, input, axis=axis_in_rank(call, axis, input.rank))


# -- gradients ------------------------------------------------------------------
# At a kink (relu, leakyRelu, prelu and elu at 0, hardSigmoid/hardSwish at their
# corners) the one-sided derivative from the left is used, as frameworks do;
# clamp passes the gradient at its bounds (x == min or x == max).


def _positive(g, x):
    return g.b.greater(x, g.scalar(0, x))


@gradient("relu")
def _relu_grad(g, input):
    return {"input": g.b.where(_positive(g, input), g.dout, g.scalar(0, input))}


@gradient("leakyRelu")
def _leaky_relu_grad(g, input, *, alpha):
    return {"input": g.b.where(_positive(g, input), g.dout, g.b.mul(g.dout, g.scalar(alpha, input)))}


@gradient("elu")
def _elu_grad(g, input, *, alpha):
    # For x <= 0, d/dx alpha * (exp(x) - 1) = alpha * exp(x) = out + alpha.
    negative = g.b.mul(g.dout, g.b.add(g.out, g.scalar(alpha, input)))
    return {"input": g.b.where(_positive(g, input), g.dout, negative)}


@gradient("prelu")
def _prelu_grad(g, input, slope):
    positive = _positive(g, input)
    zero = g.scalar(0, input)
    dx = g.b.where(positive, g.dout, g.b.mul(g.dout, slope))
    dslope = g.b.where(positive, zero, g.b.mul(g.dout, input))
    return {"input": dx, "slope": dslope}  # autodiff sums each back to its operand's shape


@gradient("clamp")
def _clamp_grad(g, input, *, min_value, max_value):
    inside = None
    if min_value != -math.inf:
        inside = g.b.greater_or_equal(input, g.scalar(min_value, input))
    if max_value != math.inf:
        below = g.b.lesser_or_equal(input, g.scalar(max_value, input))
        inside = below if inside is None else g.b.logical_and(inside, below)
    if inside is None:
        return {"input": g.dout}
    return {"input": g.b.where(inside, g.dout, g.scalar(0, input))}


@gradient("linear")
def _linear_grad(g, input, *, alpha, beta):
    return {"input": g.b.mul(g.dout, g.scalar(alpha, input))}


@gradient("hardSigmoid")
def _hard_sigmoid_grad(g, input, *, alpha, beta):
    x, slope = input, g.scalar(alpha, input)
    t = g.b.add(g.b.mul(x, slope), g.scalar(beta, x))
    inside = g.b.logical_and(g.b.greater(t, g.scalar(0, x)), g.b.lesser(t, g.scalar(1, x)))
    return {"input": g.b.where(inside, g.b.mul(g.dout, slope), g.scalar(0, x))}


@derivative("hardSwish")
def _hard_swish_derivative(g, x, y):
    # x * min(6, max(0, x + 3)) / 6: 0 below -3, 1 above 3, (2x + 3) / 6 between.
    middle = g.b.div(g.b.add(g.b.mul(x, g.scalar(2, x)), g.scalar(3, x)), g.scalar(6, x))
    return g.b.where(
        g.b.lesser_or_equal(x, g.scalar(-3, x)),
        g.scalar(0, x),
        g.b.where(g.b.greater(x, g.scalar(3, x)), g.scalar(1, x), middle),
    )


@derivative("gelu")
def _gelu_derivative(g, x, y):
    # 0.5 * (1 + erf(x / sqrt 2)) + x * exp(-x^2 / 2) / sqrt(2 pi)
    cdf = g.b.mul(g.scalar(0.5, x), g.b.add(g.scalar(1, x), g.b.erf(g.b.mul(x, g.scalar(1 / math.sqrt(2), x)))))
    pdf = g.b.mul(g.b.exp(g.b.mul(g.b.mul(x, x), g.scalar(-0.5, x))), g.scalar(1 / math.sqrt(2 * math.pi), x))
    return g.b.add(cdf, g.b.mul(x, pdf))


@derivative("sigmoid")
def _sigmoid_derivative(g, x, y):
    return g.b.mul(y, g.b.sub(g.scalar(1, y), y))


@derivative("tanh")
def _tanh_derivative(g, x, y):
    return g.b.sub(g.scalar(1, y), g.b.mul(y, y))


@derivative("softplus")
def _softplus_derivative(g, x, y):
    return g.b.sigmoid(x)


@gradient("softsign")
def _softsign_grad(g, input):
    # d/dx x / (1 + |x|) = 1 / (1 + |x|)^2
    d = g.b.add(g.scalar(1, input), g.b.abs(input))
    return {"input": g.b.div(g.dout, g.b.mul(d, d))}


@gradient("softmax")
def _softmax_grad(g, input, *, axis):
    # y * (dout - sum(dout * y, axis))
    y = g.out
    total = g.b.reduce_sum(g.b.mul(g.dout, y), axes=[axis], keep_dimensions=True)
    return {"input": g.b.mul(y, g.b.sub(g.dout, total))}
