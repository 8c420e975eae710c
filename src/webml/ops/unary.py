"""Element-wise unary operations (spec "Element-wise unary operations").

Every operator's output is a copy of its input's descriptor; they differ only
in the data types they allow (the *allowedDataTypes* argument of the spec's
"create an element-wise unary operation"), which the builder checks from the
limits registered here before the rule runs.
"""

from __future__ import annotations

from ..ir import OperandDesc, Value
from .checks import ANY, FLOATS, limit
from .registry import Call, op

# abs, neg and sign: floats and the signed integer types the spec lists.
SIGNED_LIMIT = limit(("float32", "float16", "int64", "int32", "int8"))
FLOAT_LIMIT = limit(FLOATS)


def unary(call: Call, input: Value) -> Value:
    """The shared rule: the output has the input's data type and shape."""
    return call.emit([input], OperandDesc(input.data_type, input.shape))


for _name in ("abs", "neg", "sign"):
    op(_name, family="unary", input=SIGNED_LIMIT, output=SIGNED_LIMIT)(unary)

FLOAT_OPS = ("ceil", "cos", "erf", "exp", "floor", "log", "reciprocal", "roundEven", "sin", "sqrt", "tan")
for _name in FLOAT_OPS:
    op(_name, family="unary", input=FLOAT_LIMIT, output=FLOAT_LIMIT)(unary)

op("identity", family="unary", input=ANY, output=ANY)(unary)
