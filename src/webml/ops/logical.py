"""Element-wise logical operations (spec "Element-wise logical operations").

Comparisons (equal ... lesserOrEqual) take any data type; logicalNot/And/Or/Xor
take uint8; isNaN/isInfinite take float32/float16.  Every output is uint8
holding 0 or 1, shaped like the (broadcast) input.
"""

from __future__ import annotations

from ..ir import OperandDesc, Value
from .checks import ANY, FLOATS, limit
from .elementwise import binary
from .registry import Call, gradient, op

UINT8 = limit(("uint8",))

# The spec's algorithm rejects non-uint8 inputs of the logical operators and
# non-float inputs of isNaN/isInfinite; those steps are these limits, which the
# builder checks before the rule runs (and opSupportLimits() reports).  The
# isNaN/isInfinite table says "any" for a, but its method steps allow floats only.
FLOAT = limit(FLOATS)


def logical_binary(call: Call, a: Value, b: Value) -> Value:
    """Shared rule of the two-operand operations: element-wise binary with a uint8 output."""
    return binary(call, a, b, output_type="uint8")


def logical_unary(call: Call, a: Value) -> Value:
    """Shared rule of the one-operand operations: a uint8 output of a's shape."""
    return call.emit({"a": a}, OperandDesc("uint8", a.shape))


for _name in ("equal", "notEqual", "greater", "greaterOrEqual", "lesser", "lesserOrEqual"):
    op(_name, family="logical", a=ANY, b=ANY, output=UINT8)(logical_binary)

for _name in ("logicalAnd", "logicalOr", "logicalXor"):
    op(_name, family="logical", a=UINT8, b=UINT8, output=UINT8)(logical_binary)

op("logicalNot", family="logical", a=UINT8, output=UINT8)(logical_unary)

op("isNaN", family="logical", a=FLOAT, output=UINT8)(logical_unary)
op("isInfinite", family="logical", a=FLOAT, output=UINT8)(logical_unary)


# -- gradients ------------------------------------------------------------------


@gradient(
    "equal",
    "notEqual",
    "greater",
    "greaterOrEqual",
    "lesser",
    "lesserOrEqual",
    "logicalAnd",
    "logicalOr",
    "logicalXor",
    "logicalNot",
    "isNaN",
    "isInfinite",
)
def _no_grad(g, **_operands):
    # The uint8 outputs carry no gradient (the loss is float, and where()'s
    # condition receives none), so nothing flows back to the inputs.
    return {}
