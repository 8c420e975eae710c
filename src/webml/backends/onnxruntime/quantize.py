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

import ml_dtypes
import numpy as np
from onnx import TensorProto

from ... import dtypes
from ...ops.checks import FLOATS
from ...ops.quantize import QUANTIZED_TYPES
from .lowering import Arg, Lowerer, lowering


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


def _layout(input: Arg, scale: Arg) -> tuple[dict, list[int] | None]:
    """The ONNX attributes (axis, block_size) and the shape scale and zeroPoint must take.

    None as the shape means a scalar (per tensor).
    """
    input_shape, scale_shape = list(input.shape), list(scale.shape)
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


def _blockwise(input: Arg, scale: Arg) -> bool:
    """Whether ONNX would need ``block_size`` for these parameters (decided before emitting any node)."""
    return "block_size" in _layout(input, scale)[0]


def _parameters(lw: Lowerer, input: Arg, scale: Arg, zero_point: Arg) -> tuple[str, str, dict]:
    """scale and zeroPoint in the layout ONNX takes, and the node attributes."""
    attrs, target = _layout(input, scale)
    params = []
    for name in (scale, zero_point):
        if target is None:
            params.append(lw.emit("Reshape", [name, lw.ints([])]))
        elif "block_size" not in attrs:
            params.append(lw.emit("Reshape", [name, lw.ints(target)]))
        else:
            params.append(_repeat(lw, name, scale.shape, target))
    return params[0], params[1], attrs


def _broadcastable(lw: Lowerer, input: Arg, parameter: Arg) -> str:
    """scale or zeroPoint (``parameter``) repeated into its blocks where NumPy broadcasting would not do it."""
    target = [s if s == 1 else d for s, d in zip(parameter.shape, input.shape, strict=True)]
    return _repeat(lw, parameter, parameter.shape, target)


@lowering("quantizeLinear", input=FLOATS, zeroPoint=QUANTIZED_TYPES)
def quantize_linear(lw: Lowerer, input: Arg, scale: Arg, zero_point: Arg, *, out: Arg) -> None:
    out_type = out.data_type
    if out_type in ("int32", "uint32"):
        _quantize_wide(lw, input, scale, zero_point, out)
        return
    if not lw.blockwise_quantize and _blockwise(input, scale):
        _quantize_wide(lw, input, scale, zero_point, out)
        return
    onnx_scale, onnx_zero_point, attrs = _parameters(lw, input, scale, zero_point)
    quantize_inputs = [input, onnx_scale, onnx_zero_point]
    signed = out_type in ("int8", "int4")
    # ONNX Runtime quantizes NaN to the signed types' minimum; the spec's cast gives 0.
    target = lw.fresh("quantized") if signed else out
    if out_type not in ("int4", "uint4"):
        lw.emit("QuantizeLinear", quantize_inputs, target, **attrs)
    else:
        # int4/uint4: quantize to the carrying 8-bit type, saturate to the 4-bit range.
        quantized = lw.emit("QuantizeLinear", quantize_inputs, **attrs)
        low, high = dtypes.int_bounds(out_type)
        lw.emit("Clip", [quantized, lw.const(low, out_type), lw.const(high, out_type)], target)
    if signed:
        lw.emit("Where", [lw.emit("IsNaN", [input]), lw.const(0, out_type), target], out)


def _quantize_wide(lw: Lowerer, input: Arg, scale: Arg, zero_point: Arg, out: Arg) -> None:
    """roundEven(input / scale) + zeroPoint in float64, saturated (NaN -> 0), as the reference computes."""
    scale_double = _double(lw, _broadcastable(lw, input, scale))
    zero_point_double = _double(lw, _broadcastable(lw, input, zero_point))
    rounded = lw.emit("Round", [lw.emit("Div", [_double(lw, input), scale_double])])
    value = lw.emit("Add", [rounded, zero_point_double])
    low, high = dtypes.int_bounds(out.data_type)
    clipped = lw.emit("Clip", [value, lw.const(np.float64(low)), lw.const(np.float64(high))])
    finite = lw.emit("Where", [lw.emit("IsNaN", [clipped]), lw.const(np.float64(0)), clipped])
    lw.cast(finite, out.data_type, out)


def _dequantize_elementwise(lw: Lowerer, input: Arg, scale: Arg, zero_point: Arg, out: Arg) -> None:
    """(input - zeroPoint) * scale as Sub and Mul in float32 with the parameters repeated into their
    blocks, for a target without block-wise DequantizeLinear (on constant weights OpenVINO reads
    Convert -> Subtract -> Multiply as its compressed-weights pattern)."""
    difference = lw.emit("Sub", [lw.cast(input, "float32"), lw.cast(_broadcastable(lw, input, zero_point), "float32")])
    scale_repeated = _broadcastable(lw, input, scale)
    if scale.data_type == "float32":
        lw.emit("Mul", [difference, scale_repeated], out)
    else:
        lw.cast(lw.emit("Mul", [difference, lw.cast(scale_repeated, "float32")]), out.data_type, out)


@lowering("dequantizeLinear", input=QUANTIZED_TYPES, scale=FLOATS)
def dequantize_linear(lw: Lowerer, input: Arg, scale: Arg, zero_point: Arg, *, out: Arg) -> None:
    if input.data_type in ("int32", "uint32"):
        # ONNX Runtime subtracts in int32 (overflow) and has no uint32 kernel:
        # (input - zeroPoint) in int64, times scale in float64, as the reference.
        zero_point_long = lw.cast(_broadcastable(lw, input, zero_point), "int64")
        difference = _double(lw, lw.emit("Sub", [lw.cast(input, "int64"), zero_point_long]))
        scale_double = _double(lw, _broadcastable(lw, input, scale))
        lw.cast(lw.emit("Mul", [difference, scale_double]), out.data_type, out)
        return
    if not lw.blockwise_quantize and _blockwise(input, scale):
        _dequantize_elementwise(lw, input, scale, zero_point, out)
        return
    onnx_scale, onnx_zero_point, attrs = _parameters(lw, input, scale, zero_point)
    zero = lw.constant_value(zero_point)
    value = lw.constant_value(input)
    if lw.weights.embed_all and input.data_type in ("int4", "uint4") and value is not None and zero is not None:
        if not np.any(zero):
            # A saved model holds a constant 4-bit input as ONNX int4/uint4 (half the bytes of the
            # carrying 8-bit type), so an int4-shrunk model's file is the size of its weights; the
            # zero zero point is ONNX's default, left out (an 8-bit one would not match the type).
            four_bit = ml_dtypes.int4 if input.data_type == "int4" else ml_dtypes.uint4
            packed = lw.add_initializer(np.asarray(value).astype(four_bit).reshape(input.shape), "four_bit")
            lw.emit("DequantizeLinear", [packed, onnx_scale], out, **attrs)
            return
    lw.emit("DequantizeLinear", [input, onnx_scale, onnx_zero_point], out, **attrs)
