"""ONNX lowerings of the logical operators.

webml's outputs are uint8 holding 0 or 1, ONNX's comparisons give bool: each
lowering ends in a Cast to uint8.  The logical operators take uint8 inputs
where any non-zero value is true (as the reference kernels do).
"""

from __future__ import annotations

import numpy as np

from .lowering import Lowerer, Op, lowering

ALL = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
_COMPARISONS = {
    "equal": "Equal",
    "greater": "Greater",
    "greaterOrEqual": "GreaterOrEqual",
    "lesser": "Less",
    "lesserOrEqual": "LessOrEqual",
}


@lowering(*_COMPARISONS, a=ALL)
def comparison(lw: Lowerer, n: Op) -> None:
    lw.cast(lw.emit(_COMPARISONS[n.node.op], n.inputs), "uint8", n.output)


@lowering("notEqual", a=ALL)
def not_equal(lw: Lowerer, n: Op) -> None:
    # NaN != x is true: Not(Equal) gives it, as Equal(NaN, x) is false.
    lw.cast(lw.emit("Not", [lw.emit("Equal", n.inputs)]), "uint8", n.output)


@lowering("logicalNot", a=("uint8",))
def logical_not(lw: Lowerer, n: Op) -> None:
    zero = lw.const(np.zeros((), dtype=np.uint8))
    lw.cast(lw.emit("Equal", [n.input, zero]), "uint8", n.output)


@lowering("logicalAnd", "logicalOr", a=("uint8",))
def logical_and_or(lw: Lowerer, n: Op) -> None:
    # On uint8, a and b are both non-zero iff min(a, b) is, either is iff max(a, b) is;
    # Cast to bool maps non-zero to true.
    combined = lw.emit("Min" if n.node.op == "logicalAnd" else "Max", n.inputs)
    lw.cast(lw.cast(combined, "bool"), "uint8", n.output)


@lowering("logicalXor", a=("uint8",))
def logical_xor(lw: Lowerer, n: Op) -> None:
    a, b = (lw.cast(i, "bool") for i in n.inputs)
    lw.cast(lw.emit("Xor", [a, b]), "uint8", n.output)


@lowering("isNaN", a=("float32", "float16"))
def is_nan(lw: Lowerer, n: Op) -> None:
    lw.cast(lw.emit("IsNaN", [n.input]), "uint8", n.output)


@lowering("isInfinite", a=("float32", "float16"))
def is_infinite(lw: Lowerer, n: Op) -> None:
    lw.cast(lw.emit("IsInf", [n.input]), "uint8", n.output)
