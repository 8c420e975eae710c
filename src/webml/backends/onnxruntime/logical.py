"""ONNX lowerings of the logical operators.

webml's outputs are uint8 holding 0 or 1, ONNX's comparisons give bool: each
lowering ends in a Cast to uint8.  The logical operators take uint8 inputs
where any non-zero value is true (as the reference kernels do).
"""

from __future__ import annotations

from ...ops.checks import FLOATS, NUMERIC
from .lowering import Arg, Lowerer, lowering

# a > b is emitted as b < a (NaN included, the same result): OpenVINO, which compiles these
# models too, answers true for some lanes of Greater/GreaterOrEqual with a NaN operand (2026.4).
_COMPARISONS = {
    "equal": ("Equal", False),
    "greater": ("Less", True),
    "greaterOrEqual": ("LessOrEqual", True),
    "lesser": ("Less", False),
    "lesserOrEqual": ("LessOrEqual", False),
}
_ONNX_TESTS = {"isNaN": "IsNaN", "isInfinite": "IsInf"}


@lowering(*_COMPARISONS, a=NUMERIC)
def comparison(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    op_type, swapped = _COMPARISONS[lw.op]
    lw.cast(lw.emit(op_type, [b, a] if swapped else [a, b]), "uint8", out)


@lowering("notEqual", a=NUMERIC)
def not_equal(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    # NaN != x is true: Not(Equal) gives it, as Equal(NaN, x) is false.
    lw.cast(lw.emit("Not", [lw.emit("Equal", [a, b])]), "uint8", out)


@lowering("logicalNot", a=("uint8",))
def logical_not(lw: Lowerer, a: Arg, *, out: Arg) -> None:
    lw.cast(lw.emit("Equal", [a, lw.const(0, "uint8")]), "uint8", out)


@lowering("logicalAnd", "logicalOr", a=("uint8",))
def logical_and_or(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    # On uint8, a and b are both non-zero iff min(a, b) is, either is iff max(a, b) is;
    # Cast to bool maps non-zero to true.
    combined = lw.emit("Min" if lw.op == "logicalAnd" else "Max", [a, b])
    lw.cast(lw.cast(combined, "bool"), "uint8", out)


@lowering("logicalXor", a=("uint8",))
def logical_xor(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    lw.cast(lw.emit("Xor", [lw.cast(a, "bool"), lw.cast(b, "bool")]), "uint8", out)


@lowering(*_ONNX_TESTS, a=FLOATS)
def float_test(lw: Lowerer, a: Arg, *, out: Arg) -> None:
    lw.cast(lw.emit(_ONNX_TESTS[lw.op], [a]), "uint8", out)
