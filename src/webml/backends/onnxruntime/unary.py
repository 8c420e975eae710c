"""ONNX lowerings of the unary operators."""

from __future__ import annotations

import numpy as np

from ...ops.checks import FLOATS, NUMERIC, SIGNED
from .lowering import Arg, Lowerer, lowering

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
def float_unary(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    lw.emit(_FLOAT_OPS[lw.op], [input], out)


@lowering("identity", input=NUMERIC)
def identity(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    lw.emit("Identity", [input], out)


@lowering("abs", "neg", input=SIGNED)
def abs_neg(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    x = input
    if input.data_type not in FLOATS:
        # The integer kernels wrap (-(-128) is -128 in int8); the reference saturates
        # to the maximum, which is what raising the minimum by one first gives.
        lowest = np.iinfo(np.dtype(input.data_type)).min
        x = lw.emit("Max", [x, lw.const(lowest + 1, input.data_type)])
    lw.emit("Abs" if lw.op == "abs" else "Neg", [x], out)


@lowering("sign", input=SIGNED)
def sign(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    if input.data_type not in FLOATS:
        lw.emit("Sign", [input], out)
        return
    # ONNX Sign gives NaN for NaN; the spec's "0 otherwise" gives 0.
    zero = lw.const(0, input.data_type)
    lw.emit("Where", [lw.emit("IsNaN", [input]), zero, lw.emit("Sign", [input])], out)
