"""Element-wise binary operations: add, sub, mul, div, max, min, pow (spec §7.9.9)."""

from __future__ import annotations

from ..ir import OperandDesc, Value
from .checks import ANY, broadcast_bidirectional, same_type
from .registry import Call, gradient, op


def binary(call: Call, a: Value, b: Value, output_type: str | None = None) -> Value:
    """The shared rule of two-operand element-wise operators: same data type,
    bidirectionally broadcastable shapes; the output has a's type unless given."""
    same_type(call, a, b, names=("a", "b"))
    shape = broadcast_bidirectional(a.shape, b.shape)
    if shape is None:
        raise call.error(f"the shapes of a {list(a.shape)} and b {list(b.shape)} are not broadcastable")
    return call.emit({"a": a, "b": b}, OperandDesc(output_type or a.data_type, shape))


def arithmetic(call: Call, a: Value, b: Value) -> Value:
    """The rule of add, sub, mul, div, max, min and pow."""
    return binary(call, a, b)


for _name in ("add", "sub", "mul", "div", "max", "min", "pow"):
    op(_name, family="elementwise", a=ANY, b=ANY, output=ANY)(arithmetic)


# -- gradients ------------------------------------------------------------------
#
# Cotangents are of the broadcast output's shape; autodiff sums each back to
# its operand's shape.


@gradient("add")
def _add_grad(g, a, b):
    return {"a": g.dout, "b": g.dout}


@gradient("sub")
def _sub_grad(g, a, b):
    return {"a": g.dout, "b": g.b.neg(g.dout)}


@gradient("mul")
def _mul_grad(g, a, b):
    return {"a": g.b.mul(g.dout, b), "b": g.b.mul(g.dout, a)}


@gradient("div")
def _div_grad(g, a, b):
    da = g.b.div(g.dout, b)
    db = g.b.neg(g.b.mul(da, g.out))  # d(a/b)/db = -(a/b)/b
    return {"a": da, "b": db}


@gradient("max", "min")
def _extremum_grad(g, a, b):
    # The gradient goes to the input that was selected (to a on ties).
    take_a = g.b.equal(g.b.expand(a, g.out.shape) if a.shape != g.out.shape else a, g.out)
    zero = g.zeros_like(g.out)
    return {"a": g.b.where(take_a, g.dout, zero), "b": g.b.where(take_a, zero, g.dout)}


@gradient("pow")
def _pow_grad(g, a, b):
    bm1 = g.b.sub(b, g.scalar(1, b))
    da = g.b.mul(g.dout, g.b.mul(b, g.b.pow(a, bm1)))
    # d(a^b)/db = a^b * log(a), defined for a > 0 (0 elsewhere, as frameworks do)
    positive = g.b.greater(a, g.scalar(0, a))
    safe_a = g.b.where(positive, a, g.b.expand(g.scalar(1, a), a.shape) if a.shape else g.scalar(1, a))
    db = g.b.mul(g.dout, g.b.mul(g.out, g.b.log(safe_a)))
    return {"a": da, "b": db}
