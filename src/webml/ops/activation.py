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
from .registry import Call, op

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
    return call.emit([input], OperandDesc(input.data_type, input.shape), **attrs)


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
    return same_as_input(call, input, alpha=double(call, alpha, "alpha", input.data_type))


@op("hardSigmoid", family="activation", input=FLOAT, output=FLOAT)
def hard_sigmoid(call: Call, input: Value, *, alpha: Any = 0.2, beta: Any = 0.5) -> Value:
    """max(0, min(1, alpha * x + beta))."""
    return same_as_input(
        call,
        input,
        alpha=double(call, alpha, "alpha", input.data_type),
        beta=double(call, beta, "beta", input.data_type),
    )


@op("leakyRelu", family="activation", input=FLOAT, output=FLOAT)
def leaky_relu(call: Call, input: Value, *, alpha: Any = 0.01) -> Value:
    """max(0, x) + alpha * min(0, x)."""
    return same_as_input(call, input, alpha=double(call, alpha, "alpha", input.data_type))


@op("linear", family="activation", input=FLOAT, output=FLOAT)
def linear(call: Call, input: Value, *, alpha: Any = 1.0, beta: Any = 0.0) -> Value:
    """alpha * x + beta."""
    return same_as_input(
        call,
        input,
        alpha=double(call, alpha, "alpha", input.data_type),
        beta=double(call, beta, "beta", input.data_type),
    )


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
    return call.emit([input, slope], OperandDesc(input.data_type, check_shape(call, shape)))


@op("softmax", family="activation", input=limit(FLOATS, 1), output=limit(FLOATS, 1))
def softmax(call: Call, input: Value, axis: Any) -> Value:
    """exp(x) / sum(exp(x)) along ``axis`` (an unsigned long less than the input's rank)."""
    return same_as_input(call, input, axis=axis_in_rank(call, axis, input.rank))
