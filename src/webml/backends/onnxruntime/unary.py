"""ONNX lowerings of the unary operators."""

from __future__ import annotations

import numpy as np

from .lowering import Lowerer, Op, lowering

ALL = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
SIGNED = ("float32", "float16", "int32", "int64", "int8")
FLOATS = ("float32", "float16")

_FLOAT_OPS = {
    "ceil": "Ceil",
    "cos": "Cos",
    "erf": "Erf",
    "exp": "Exp",
    "floor": "Floor",
    "log": "Log",
    "reciprocal": "Reciprocal",
    "roundEven": "Round",  # ONNX Round rounds halves to even
    "sin": "Sin",
    "sqrt": "Sqrt",
    "tan": "Tan",
}


@lowering(*_FLOAT_OPS, input=FLOATS)
def float_unary(lw: Lowerer, n: Op) -> None:
    lw.emit(_FLOAT_OPS[n.node.op], [n.input], n.output)


@lowering("identity", input=ALL)
def identity(lw: Lowerer, n: Op) -> None:
    lw.emit("Identity", [n.input], n.output)


@lowering("abs", "neg", input=SIGNED)
def abs_neg(lw: Lowerer, n: Op) -> None:
    x = n.input
    if n.in_type not in FLOATS:
        # The integer kernels wrap (-(-128) is -128 in int8); the reference saturates
        # to the maximum, which is what raising the minimum by one first gives.
        lowest = np.iinfo(np.dtype(n.in_type)).min
        x = lw.emit("Max", [x, lw.const(np.array(lowest + 1, dtype=np.dtype(n.in_type)))])
    lw.emit("Abs" if n.node.op == "abs" else "Neg", [x], n.output)


@lowering("sign", input=SIGNED)
def sign(lw: Lowerer, n: Op) -> None:
    if n.in_type not in FLOATS:
        lw.emit("Sign", [n.input], n.output)
        return
    # ONNX Sign gives NaN for NaN; the spec's "0 otherwise" gives 0.
    zero = lw.const(np.zeros((), dtype=np.dtype(n.in_type)))
    lw.emit("Where", [lw.emit("IsNaN", [n.input]), zero, lw.emit("Sign", [n.input])], n.output)
