"""ONNX lowerings of the quantize operators.

webml's scale and zeroPoint have the input's rank and are *blockwise*
broadcast: each element covers a block of ``input.shape[i] // scale.shape[i]``
elements along every axis.  ONNX's QuantizeLinear/DequantizeLinear (opset 21)
know three layouts: per tensor (a scalar), per axis (a 1-D vector) and
blocked along one axis (the input's shape except along that axis).  The
lowering picks the one that fits and, for blocks along several axes, repeats
scale and zeroPoint along all but one axis (Reshape/Expand, which ONNX Runtime
folds for constants).

int4/uint4 are carried as int8/uint8: quantizing saturates to the 4-bit range
with a Clip, dequantizing needs nothing.  int32/uint32, which ONNX's operators
do not quantize to (nor, for uint32, from), are computed in float64 and int64
as the reference kernels do, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto

from .lowering import Lowerer, Op, lowering

QUANTIZED = ("uint8", "int8", "uint32", "int32", "int4", "uint4")
_RANGES = {"int4": (-8, 7), "uint4": (0, 15), "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}


def _double(lw: Lowerer, name: str) -> str:
    return lw.emit("Cast", [name], to=TensorProto.DOUBLE)


def _repeat(lw: Lowerer, name: str, shape: Sequence[int], target: Sequence[int]) -> str:
    """``name`` (of ``shape``) with each element repeated into its block of ``target``.

    Every ``target[i]`` is a multiple of ``shape[i]``.
    """
    shape, target = list(shape), list(target)
    if shape == target:
        return name
    if all(s == t or s == 1 for s, t in zip(shape, target, strict=True)):
        return lw.emit("Expand", [name, lw.ints(target)])  # plain broadcasting
    split, blocks = [], []
    for s, t in zip(shape, target, strict=True):
        split += [s, 1]
        blocks += [s, t // s]
    expanded = lw.emit("Expand", [lw.emit("Reshape", [name, lw.ints(split)]), lw.ints(blocks)])
    return lw.emit("Reshape", [expanded, lw.ints(target)])


def _layout(n: Op) -> tuple[dict, list[int] | None]:
    """The ONNX attributes (axis, block_size) and the shape scale and zeroPoint must take.

    None as the shape means a scalar (per tensor).
    """
    input_shape, scale_shape = list(n.in_descs[0].shape), list(n.in_descs[1].shape)
    blocked = [i for i, (s, d) in enumerate(zip(scale_shape, input_shape, strict=True)) if s != 1]
    if not blocked:
        return {}, None
    if len(blocked) == 1 and scale_shape[blocked[0]] == input_shape[blocked[0]]:
        axis = blocked[0]
        return {"axis": axis}, [input_shape[axis]]
    # Block along the axis of the largest blocks; repeat along the others.
    axis = max(blocked, key=lambda i: input_shape[i] // scale_shape[i])
    target = list(input_shape)
    target[axis] = scale_shape[axis]
    return {"axis": axis, "block_size": input_shape[axis] // scale_shape[axis]}, target


def _parameters(lw: Lowerer, n: Op) -> tuple[str, str, dict]:
    """scale and zeroPoint in the layout ONNX takes, and the node attributes."""
    attrs, target = _layout(n)
    scale_shape = n.in_descs[1].shape
    params = []
    for name in n.inputs[1:3]:
        assert name is not None
        if target is None:
            params.append(lw.emit("Reshape", [name, lw.ints([])]))
        elif "block_size" not in attrs:
            params.append(lw.emit("Reshape", [name, lw.ints(target)]))
        else:
            params.append(_repeat(lw, name, scale_shape, target))
    return params[0], params[1], attrs


def _broadcastable(lw: Lowerer, n: Op, name: str) -> str:
    """scale or zeroPoint repeated into its blocks where NumPy broadcasting would not do it."""
    input_shape, scale_shape = n.in_descs[0].shape, n.in_descs[1].shape
    target = [s if s == 1 else d for s, d in zip(scale_shape, input_shape, strict=True)]
    return _repeat(lw, name, scale_shape, target)


@lowering("quantizeLinear", input=("float32", "float16"), zeroPoint=QUANTIZED)
def quantize_linear(lw: Lowerer, n: Op) -> None:
    out_type = n.out_type
    if out_type in ("int32", "uint32"):
        _quantize_wide(lw, n)
        return
    scale, zero_point, attrs = _parameters(lw, n)
    signed = out_type in ("int8", "int4")
    # ONNX Runtime quantizes NaN to the signed types' minimum; the spec's cast gives 0.
    target = lw.fresh("quantized") if signed else n.output
    if out_type not in _RANGES:
        lw.emit("QuantizeLinear", [n.input, scale, zero_point], target, **attrs)
    else:
        # int4/uint4: quantize to the carrying 8-bit type, saturate to the 4-bit range.
        quantized = lw.emit("QuantizeLinear", [n.input, scale, zero_point], **attrs)
        low, high = _RANGES[out_type]
        lw.emit("Clip", [quantized, lw.const(low, out_type), lw.const(high, out_type)], target)
    if signed:
        lw.emit("Where", [lw.emit("IsNaN", [n.input]), lw.const(0, out_type), target], n.output)


def _quantize_wide(lw: Lowerer, n: Op) -> None:
    """roundEven(input / scale) + zeroPoint in float64, saturated (NaN -> 0), as the reference computes."""
    scale = _double(lw, _broadcastable(lw, n, n.inputs[1]))
    zero_point = _double(lw, _broadcastable(lw, n, n.inputs[2]))
    rounded = lw.emit("Round", [lw.emit("Div", [_double(lw, n.input), scale])])
    value = lw.emit("Add", [rounded, zero_point])
    low, high = _RANGES[n.out_type]
    clipped = lw.emit("Clip", [value, lw.const(np.float64(low)), lw.const(np.float64(high))])
    finite = lw.emit("Where", [lw.emit("IsNaN", [clipped]), lw.const(np.float64(0)), clipped])
    lw.cast(finite, n.out_type, n.output)


@lowering("dequantizeLinear", input=QUANTIZED, scale=("float32", "float16"))
def dequantize_linear(lw: Lowerer, n: Op) -> None:
    if n.in_type in ("int32", "uint32"):
        # ONNX Runtime subtracts in int32 (overflow) and has no uint32 kernel:
        # (input - zeroPoint) in int64, times scale in float64, as the reference.
        zero_point = lw.cast(_broadcastable(lw, n, n.inputs[2]), "int64")
        difference = _double(lw, lw.emit("Sub", [lw.cast(n.input, "int64"), zero_point]))
        scale = _double(lw, _broadcastable(lw, n, n.inputs[1]))
        lw.cast(lw.emit("Mul", [difference, scale]), n.out_type, n.output)
        return
    scale, zero_point, attrs = _parameters(lw, n)
    lw.emit("DequantizeLinear", [n.input, scale, zero_point], n.output, **attrs)
