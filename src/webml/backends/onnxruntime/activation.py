"""ONNX lowerings of the activation operators."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from ... import dtypes
from ...ops.checks import FLOATS, INT64_MAX, INT64_MIN, NUMERIC, SIGNED
from .lowering import Arg, Lowerer, lowering

# The operators whose ONNX namesake computes the spec's formula, with the
# spec's options as ONNX attributes of the same names.
_DIRECT = {
    "elu": "Elu",
    "hardSigmoid": "HardSigmoid",
    "leakyRelu": "LeakyRelu",
    "hardSwish": "HardSwish",
    "softplus": "Softplus",
    "softsign": "Softsign",
    "tanh": "Tanh",
}


@lowering(*_DIRECT, input=FLOATS)
def direct(lw: Lowerer, input: Arg, *, out: Arg, **attrs: float) -> None:
    # alpha/beta were cast to the input's type, so as float attributes they are exact.
    options = {k: float(v) for k, v in attrs.items() if k in ("alpha", "beta")}
    lw.emit(_DIRECT[lw.op], [input], out, **options)


@lowering("sigmoid", input=FLOATS)
def sigmoid(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    if input.data_type == "float16":  # within 2 ULP of the reference over every float16 value
        lw.emit("Sigmoid", [input], out)
        return
    # ONNX Runtime's float32 (and float64) Sigmoid is a clamped rational
    # approximation: hundreds of ULP off from x < -5 and 0 below -15.9, far
    # outside WPT's 34 ULP.  1 / (1 + exp(-x)) is within 2 ULP down to the
    # subnormal outputs (x < -87), which become 0.
    e = lw.emit("Exp", [lw.emit("Neg", [input])])
    lw.emit("Reciprocal", [lw.emit("Add", [e, lw.const(1.0, "float32")])], out)


@lowering("gelu", input=FLOATS)
def gelu(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    lw.emit("Gelu", [input], out, approximate="none")


@lowering("softmax", input=FLOATS)
def softmax(lw: Lowerer, input: Arg, *, out: Arg, axis: int) -> None:
    lw.emit("Softmax", [input], out, axis=int(axis))


@lowering("linear", input=FLOATS)
def linear(lw: Lowerer, input: Arg, *, out: Arg, alpha: float, beta: float) -> None:
    # x * 1 is x exactly; x + 0 is x up to the sign of a zero result, which no
    # comparison of numbers tells apart, so neither node is emitted for nothing.
    alpha, beta = float(alpha), float(beta)
    x = input
    if alpha != 1.0:
        x = lw.emit("Mul", [x, lw.const(alpha, input.data_type)], out if beta == 0.0 else 1)
    if beta != 0.0:
        lw.emit("Add", [x, lw.const(beta, input.data_type)], out)
    elif x == input:
        lw.emit("Identity", [x], out)


@lowering("relu", input=SIGNED)
def relu(lw: Lowerer, input: Arg, *, out: Arg) -> None:
    if input.data_type == "int64":  # ONNX Runtime's Relu has no int64 kernel
        lw.emit("Max", [input, lw.const(0, "int64")], out)
        return
    lw.emit("Relu", [input], out)


@lowering("clamp", input=NUMERIC)
def clamp(lw: Lowerer, input: Arg, *, out: Arg, min_value: float, max_value: float) -> None:
    # Clip (opset 13) has kernels for every numeric type; an integer bound at
    # the type's limit clamps nothing and is left out.
    data_type, lo, hi = input.data_type, min_value, max_value
    if data_type in FLOATS:
        if math.isnan(lo) or math.isnan(hi):
            # max(x, NaN) is NaN in the spec's emulation (and the reference): every element is NaN.
            lw.emit("Add", [input, lw.const(math.nan, data_type)], out)
            return
        if lo == -math.inf and hi == math.inf:
            lw.emit("Identity", [input], out)
            return
        # An omitted Clip bound is the type's largest finite value in ONNX
        # Runtime, which clamps the infinities: both bounds are given.
        lo_in, hi_in = lw.const(lo, data_type), lw.const(hi, data_type)
    else:
        info = np.iinfo(dtypes.numpy_dtype(data_type))
        lo_in = None if lo <= info.min else lw.const(lo, data_type)
        hi_in = None if hi >= info.max else lw.const(hi, data_type)
    if lo_in is None and hi_in is None:
        lw.emit("Identity", [input], out)
    else:
        lw.emit("Clip", [input, lo_in, hi_in], out)


@lowering("prelu", input=SIGNED)
def prelu(lw: Lowerer, input: Arg, slope: Arg, *, out: Arg) -> None:
    x, data_type = input, input.data_type
    if data_type in FLOATS:
        # PRelu broadcasts slope to x unidirectionally; the spec broadcasts both ways.
        if tuple(x.shape) == tuple(out.shape):
            lw.emit("PRelu", [x, slope], out)
        else:
            lw.emit("PRelu", [lw.emit("Expand", [x, lw.ints(out.shape)]), slope], out)
        return
    # ONNX Runtime's PRelu is float-only.  x > 0 ? x : slope * x, the product
    # saturated to the type's range as in the reference (exact arithmetic, then
    # the saturating cast to the output type).
    zero = lw.const(0, data_type)
    positive = lw.emit("Greater", [x, zero])
    if data_type == "int64":
        # Mul wraps on overflow: where the exact product leaves the int64 range
        # (as judged in float64, like the reference), take the bound instead.
        product = lw.emit("Mul", [slope, x])
        doubles = [lw.emit("Cast", [v], to=TensorProto.DOUBLE) for v in (slope, x)]
        approx = lw.emit("Mul", doubles)
        too_high = lw.emit("GreaterOrEqual", [approx, lw.const(np.float64(2.0**63))])
        too_low = lw.emit("Less", [approx, lw.const(np.float64(-(2.0**63)))])
        product = lw.emit("Where", [too_high, lw.const(INT64_MAX, "int64"), product])
        product = lw.emit("Where", [too_low, lw.const(INT64_MIN, "int64"), product])
    else:
        # int8/int32 products are exact in int64; saturate to the type's range.
        info = np.iinfo(dtypes.numpy_dtype(data_type))
        wide = lw.emit("Mul", [lw.cast(slope, "int64"), lw.cast(x, "int64")])
        wide = lw.emit("Clip", [wide, lw.const(int(info.min), "int64"), lw.const(int(info.max), "int64")])
        product = lw.cast(wide, data_type)
    lw.emit("Where", [positive, x, product], out)
