"""Element-wise unary operations (spec "Element-wise unary operations").

Every operator's output is a copy of its input's descriptor; they differ only
in the data types they allow (the *allowedDataTypes* argument of the spec's
"create an element-wise unary operation"), which the builder checks from the
limits registered here before the rule runs.
"""

from __future__ import annotations

import math

from ..ir import OperandDesc, Value
from .checks import ANY, FLOATS, limit
from .registry import Call, gradient, op

# abs, neg and sign: floats and the signed integer types the spec lists.
SIGNED_LIMIT = limit(("float32", "float16", "int64", "int32", "int8"))
FLOAT_LIMIT = limit(FLOATS)


def unary(call: Call, input: Value) -> Value:
    """The shared rule: the output has the input's data type and shape."""
    return call.emit({"input": input}, OperandDesc(input.data_type, input.shape))


for _name in ("abs", "neg", "sign"):
    op(_name, family="unary", input=SIGNED_LIMIT, output=SIGNED_LIMIT)(unary)

FLOAT_OPS = ("ceil", "cos", "erf", "exp", "floor", "log", "reciprocal", "roundEven", "sin", "sqrt", "tan")
for _name in FLOAT_OPS:
    op(_name, family="unary", input=FLOAT_LIMIT, output=FLOAT_LIMIT)(unary)

op("identity", family="unary", input=ANY, output=ANY)(unary)


# -- gradients ------------------------------------------------------------------


@gradient("ceil", "floor", "roundEven", "sign")
def _piecewise_constant_grad(g):
    # Zero almost everywhere (undefined at the steps): no gradient flows.
    return [None]


@gradient("identity")
def _identity_grad(g):
    return [g.dout]


@gradient("neg")
def _neg_grad(g):
    return [g.b.neg(g.dout)]


@gradient("abs")
def _abs_grad(g):
    # sign(x): 0 at x == 0.
    (x,) = g.inputs
    return [g.b.mul(g.dout, g.b.sign(x))]


@gradient("exp")
def _exp_grad(g):
    return [g.b.mul(g.dout, g.out)]


@gradient("log")
def _log_grad(g):
    (x,) = g.inputs
    return [g.b.div(g.dout, x)]


@gradient("sqrt")
def _sqrt_grad(g):
    y = g.out
    return [g.b.div(g.dout, g.b.mul(y, g.scalar(2, y)))]


@gradient("reciprocal")
def _reciprocal_grad(g):
    y = g.out
    return [g.b.neg(g.b.mul(g.dout, g.b.mul(y, y)))]


@gradient("sin")
def _sin_grad(g):
    (x,) = g.inputs
    return [g.b.mul(g.dout, g.b.cos(x))]


@gradient("cos")
def _cos_grad(g):
    (x,) = g.inputs
    return [g.b.neg(g.b.mul(g.dout, g.b.sin(x)))]


@gradient("tan")
def _tan_grad(g):
    # 1 + tan(x)^2
    y = g.out
    return [g.b.mul(g.dout, g.b.add(g.scalar(1, y), g.b.mul(y, y)))]


@gradient("erf")
def _erf_grad(g):
    # 2 / sqrt(pi) * exp(-x^2)
    (x,) = g.inputs
    density = g.b.exp(g.b.neg(g.b.mul(x, x)))
    return [g.b.mul(g.dout, g.b.mul(density, g.scalar(2 / math.sqrt(math.pi), x)))]
