"""QuantizeLinear and DequantizeLinear.

ONNX's scale and zero point are a scalar (per tensor), 1-D along ``axis``
(per axis) or, from opset 21, blocked along ``axis``; each is reshaped to
the input's rank so that WebNN's blockwise broadcasting covers it.
"""

from __future__ import annotations

import numpy as np

from ..common import prod
from . import axis_index, onnx_op


def _check(node, attrs, analysis):
    # Both attributes are newer than the operators (output_dtype: opset 21, saturate: QuantizeLinear-19 only).
    if attrs.get("output_dtype", 0):
        return "output_dtype is not supported"
    if attrs.get("saturate", 1) != 1:
        return "saturate=0 is not supported"
    return None


def _to_rank(imp, operand, x_shape, axis):
    """A scalar or per-axis (or blocked) scale/zero point, reshaped to the input's rank."""
    rank = len(x_shape)
    shape = list(operand.shape)
    if len(shape) == rank:
        return operand
    target = [1] * rank
    if len(shape) == 1 and shape[0] != 1:
        target[axis] = shape[0]
    return imp.builder.reshape(operand, target)


def _arguments(imp, node, attrs, zero_type):
    x = imp.operand(node, 0)
    scale = imp.operand(node, 1)
    rank = len(x.shape)
    # The axis matters only for a per-axis (or blocked) scale; ONNX ignores it for a per-tensor one.  It is an
    # attribute from opset 13 (before, scales are per tensor), hence the schema's default of 1 here too.
    axis = axis_index(imp, attrs.get("axis", 1), rank) if rank and prod(scale.shape) > 1 else 0
    if rank == 0:
        x = imp.builder.reshape(x, [1])
    x_shape = list(x.shape)
    if imp.has(node, 2):
        zero = imp.operand(node, 2)
    else:
        zero = imp.constant(np.zeros(scale.shape), zero_type or x.data_type)
    scale = _to_rank(imp, scale, x_shape, axis)
    zero = _to_rank(imp, zero, x_shape, axis)
    return x, scale, zero, rank


@onnx_op("DequantizeLinear", check=_check)
def dequantize_linear(imp, node, attrs):
    x, scale, zero, rank = _arguments(imp, node, attrs, None)
    y = imp.builder.dequantize_linear(x, scale, zero)
    return imp.builder.reshape(y, []) if rank == 0 else y


@onnx_op("QuantizeLinear", check=_check)
def quantize_linear(imp, node, attrs):
    x, scale, zero, rank = _arguments(imp, node, attrs, "uint8")
    if scale.data_type != x.data_type:
        scale = imp.builder.cast(scale, x.data_type)
    y = imp.builder.quantize_linear(x, scale, zero)
    return imp.builder.reshape(y, []) if rank == 0 else y
