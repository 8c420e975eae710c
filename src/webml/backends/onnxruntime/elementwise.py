"""ONNX lowerings of the element-wise binary operators."""

from __future__ import annotations

import numpy as np

from .lowering import Lowerer, Op, lowering

ALL = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
_ONNX = {"add": "Add", "sub": "Sub", "mul": "Mul", "max": "Max", "min": "Min"}


@lowering(*_ONNX, a=ALL)
def arithmetic(lw: Lowerer, n: Op) -> None:
    lw.emit(_ONNX[n.node.op], n.inputs, n.output)


@lowering("div", a=ALL)
def div(lw: Lowerer, n: Op) -> None:
    a, b = n.inputs
    if n.in_type in ("float32", "float16"):
        lw.emit("Div", [a, b], n.output)
        return
    # Integer division by zero would trap in the kernel; the spec leaves the result
    # undefined, and webml gives 0 as the reference backend does.  Arithmetic masks
    # rather than Where, which ONNX Runtime lacks for some integer types (uint64).
    dtype = np.dtype(_np(n.in_type))
    is_zero = lw.cast(lw.emit("Equal", [b, lw.const(np.zeros((), dtype=dtype))]), n.in_type)  # 1 where b == 0
    quotient = lw.emit("Div", [a, lw.emit("Add", [b, is_zero])])
    lw.emit("Mul", [quotient, lw.emit("Sub", [lw.const(np.ones((), dtype=dtype)), is_zero])], n.output)


POW_TYPES = ("float32", "float16", "int32", "int64", "int8", "uint8", "uint32")


# b and the output have a's type (spec), so they take no uint64 either.
@lowering("pow", a=POW_TYPES, b=POW_TYPES, output=POW_TYPES)
def power(lw: Lowerer, n: Op) -> None:
    if n.in_type in ("float32", "float16", "int32", "int64"):
        lw.emit("Pow", n.inputs, n.output)
        return
    # ONNX Runtime's Pow has no 8-bit or unsigned kernels: compute in int64 (exact) and narrow.
    wide = lw.emit("Pow", [lw.cast(i, "int64") for i in n.inputs])
    lw.cast(wide, n.out_type, n.output)


def _np(data_type: str) -> str:
    return {"int4": "int8", "uint4": "uint8"}.get(data_type, data_type)
