"""ONNX lowerings of the element-wise binary operators."""

from __future__ import annotations

from ...ops.checks import FLOATS, NUMERIC
from .lowering import Arg, Lowerer, lowering

_ONNX = {"add": "Add", "sub": "Sub", "mul": "Mul", "max": "Max", "min": "Min"}


@lowering(*_ONNX, a=NUMERIC)
def arithmetic(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    lw.emit(_ONNX[lw.op], [a, b], out)


@lowering("div", a=NUMERIC)
def div(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    if a.data_type in FLOATS:
        lw.emit("Div", [a, b], out)
        return
    # Integer division by zero would trap in the kernel; the spec leaves the result
    # undefined, and webml gives 0 as the reference backend does.  Arithmetic masks
    # rather than Where, which ONNX Runtime lacks for some integer types (uint64).
    is_zero = lw.cast(lw.emit("Equal", [b, lw.const(0, a.data_type)]), a.data_type)  # 1 where b == 0
    quotient = lw.emit("Div", [a, lw.emit("Add", [b, is_zero])])
    lw.emit("Mul", [quotient, lw.emit("Sub", [lw.const(1, a.data_type), is_zero])], out)


POW_TYPES = tuple(t for t in NUMERIC if t != "uint64")


# b and the output have a's type (spec), so they take no uint64 either.
@lowering("pow", a=POW_TYPES, b=POW_TYPES, output=POW_TYPES)
def power(lw: Lowerer, a: Arg, b: Arg, *, out: Arg) -> None:
    if a.data_type in (*FLOATS, "int32", "int64"):
        lw.emit("Pow", [a, b], out)
        return
    # ONNX Runtime's Pow has no 8-bit or unsigned kernels: compute in int64 (exact) and narrow.
    wide = lw.emit("Pow", [lw.cast(a, "int64"), lw.cast(b, "int64")])
    lw.cast(wide, out.data_type, out)
