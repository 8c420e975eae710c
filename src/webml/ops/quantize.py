"""quantizeLinear and dequantizeLinear (spec §7.9.x).

Both take a ``scale`` and a ``zeroPoint`` of one shape that is *blockwise
broadcast* to the input's shape: each scale element covers a block of
``input.shape[i] // scale.shape[i]`` elements along every axis.

The 4-bit types int4/uint4 (a Chromium and WPT extension, not in the spec's
tables) are accepted as quantized types alongside the spec's uint8, int8,
uint32 and int32.
"""

from __future__ import annotations

from ..ir import OperandDesc, Value
from .checks import FLOATS, blockwise_broadcastable, limit
from .registry import MAX_RANK, Call, gradient, op

QUANTIZED_TYPES = ("uint8", "int8", "uint32", "int32", "int4", "uint4")
FLOAT = limit(FLOATS)
QUANTIZED = limit(QUANTIZED_TYPES)


def _blockwise_shape(call: Call, input: Value, scale: Value, zero_point: Value) -> tuple[int, ...]:
    """scale's shape, once checked against zeroPoint's and input's (the spec's rank and shape steps).

    The spec requires scale and zeroPoint to have input's rank.  This WPT
    revision (and Chromium then) also accepted a lower rank aligned to input's
    trailing dimensions; webml follows the spec, and those WPT cases are
    listed in the expected failures.
    """
    for name, operand in (("scale", scale), ("zeroPoint", zero_point)):
        if operand.rank != input.rank:
            raise call.error(f"{name} rank {operand.rank} must equal input rank {input.rank}")
    if scale.shape != zero_point.shape:
        raise call.error(f"scale shape {list(scale.shape)} must equal zeroPoint shape {list(zero_point.shape)}")
    if not blockwise_broadcastable(scale.shape, input.shape):
        raise call.error(
            f"scale and zeroPoint shape {list(scale.shape)} is not blockwise broadcastable to input "
            f"shape {list(input.shape)}: each dimension must divide input's"
        )
    return scale.shape


def _emit(call: Call, input: Value, scale: Value, zero_point: Value, typed: tuple[str, Value], output_type: str):
    """The node, once the operand ``typed`` (name, operand) has input's data type and the shapes are checked."""
    name, operand = typed
    if operand.data_type != input.data_type:
        raise call.error(f"{name} data type {operand.data_type} must match input's {input.data_type}")
    _blockwise_shape(call, input, scale, zero_point)
    return call.emit({"input": input, "scale": scale, "zero_point": zero_point}, OperandDesc(output_type, input.shape))


@op("quantizeLinear", family="quantize", input=FLOAT, scale=FLOAT, zeroPoint=QUANTIZED, output=QUANTIZED)
def quantize_linear(call: Call, input: Value, scale: Value, zero_point: Value) -> Value:
    """clamp(roundEven(input / scale) + zeroPoint) to zeroPoint's type; the output has that type."""
    return _emit(call, input, scale, zero_point, ("scale", scale), zero_point.data_type)


@op("dequantizeLinear", family="quantize", input=QUANTIZED, scale=FLOAT, zeroPoint=QUANTIZED, output=FLOAT)
def dequantize_linear(call: Call, input: Value, scale: Value, zero_point: Value) -> Value:
    """(input - zeroPoint) * scale; the output has scale's type."""
    return _emit(call, input, scale, zero_point, ("zeroPoint", zero_point), scale.data_type)


# -- gradients ------------------------------------------------------------------


@gradient("quantizeLinear")
def _quantize_linear_grad(g, input, scale, zero_point):
    return {}  # integer output (rounded): no gradient flows


@gradient("dequantizeLinear")
def _dequantize_linear_grad(g, input, scale, zero_point):
    """Only to scale (input and zeroPoint are integers): the block sums of dy * (input - zeroPoint)."""
    b = g.b
    ones = b.expand(g.scalar(1, scale), scale.shape) if scale.shape else g.scalar(1, scale)
    terms = b.mul(g.dout, b.dequantize_linear(input, ones, zero_point))  # dy * (input - zeroPoint)
    # Split each blocked dimension into (blocks, block size) and sum the block sizes.
    shape, axes = [], []
    for size, blocks in zip(input.shape, scale.shape):
        if blocks == 1:
            axes.append(len(shape))
            shape.append(size)
        elif blocks == size:
            shape.append(size)
        else:
            axes.append(len(shape) + 1)
            shape += [blocks, size // blocks]
    if len(shape) > MAX_RANK:
        raise TypeError(
            f"dequantizeLinear gradient: the blocks of input shape {list(input.shape)} need rank {len(shape)}"
        )
    summed = b.reduce_sum(b.reshape(terms, shape), axes=axes) if axes else terms
    return {"scale": b.reshape(summed, list(scale.shape))}
