"""Element-wise unary operations (spec "Element-wise unary operations").

Every operator's output is a copy of its input's descriptor; they differ only
in the data types they allow (the *allowedDataTypes* argument of the spec's
"create an element-wise unary operation"), which the builder checks from the
limits registered here before the rule runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

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


def derivative(*names: str) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    """Register the gradient rule of the one-operand operators ``names`` from their derivative.

    The decorated ``fn(g, x, y)`` builds dy/dx from the input x and the output
    y; the rule passes back dout * dy/dx (the chain rule), whatever the options.
    """

    def decorate(fn: Callable[..., Value]) -> Callable[..., Value]:
        @gradient(*names)
        def rule(g: Any, input: Any, **_attrs: Any) -> dict[str, Any]:
            return {"input": g.b.mul(g.dout, fn(g, input, g.out))}

        return fn

    return decorate


@gradient("ceil", "floor", "roundEven", "sign")
def _piecewise_constant_grad(g, input):
    # Zero almost everywhere (undefined at the steps): no gradient flows.
    return {}


@gradient("identity")
def _identity_grad(g, input):
    return {"input": g.dout}


@gradient("neg")
def _neg_grad(g, input):
    return {"input": g.b.neg(g.dout)}


@derivative("abs")
def _abs_derivative(g, x, y):
    return g.b.sign(x)  # 0 at x == 0


@derivative("exp")
def _exp_derivative(g, x, y):
    return y


@gradient("log")
def _log_grad(g, input):
    return {"input": g.b.div(g.dout, input)}


@gradient("sqrt")
def _sqrt_grad(g, input):
    y = g.out
    return {"input": g.b.div(g.dout, g.b.mul(y, g.scalar(2, y)))}


@gradient("reciprocal")
def _reciprocal_grad(g, input):
    y = g.out
    return {"input": g.b.neg(g.b.mul(g.dout, g.b.mul(y, y)))}


@derivative("sin")
def _sin_derivative(g, x, y):
    return g.b.cos(x)


@gradient("cos")
def _cos_grad(g, input):
    return {"input": g.b.neg(g.b.mul(g.dout, g.b.sin(input)))}


@derivative("tan")
def _tan_derivative(g, x, y):
    return g.b.add(g.scalar(1, y), g.b.mul(y, y))  # 1 + tan(x)^2


@derivative("erf")
def _erf_derivative(g, x, y):
    # 2 / sqrt(pi) * exp(-x^2)
    density = g.b.exp(g.b.neg(g.b.mul(x, x)))
    return g.b.mul(density, g.scalar(2 / math.sqrt(math.pi), x))
