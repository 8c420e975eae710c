"""Element-wise binary operations: add, sub, mul, div, max, min, pow (spec §7.9.9)."""

from __future__ import annotations

from ..ir import OperandDesc, Value
from .checks import ANY, broadcast_bidirectional, same_type
from .registry import Call, op


def binary(call: Call, a: Value, b: Value, output_type: str | None = None) -> Value:
    """The shared rule of two-operand element-wise operators: same data type,
    bidirectionally broadcastable shapes; the output has a's type unless given."""
    same_type(call, a, b, names=("a", "b"))
    shape = broadcast_bidirectional(a.shape, b.shape)
    if shape is None:
        raise call.error(f"the shapes of a {list(a.shape)} and b {list(b.shape)} are not broadcastable")
    return call.emit([a, b], OperandDesc(output_type or a.data_type, shape))


def arithmetic(call: Call, a: Value, b: Value) -> Value:
    """The rule of add, sub, mul, div, max, min and pow."""
    return binary(call, a, b)


for _name in ("add", "sub", "mul", "div", "max", "min", "pow"):
    op(_name, family="elementwise", a=ANY, b=ANY, output=ANY)(arithmetic)
