"""Weight-only quantization in NumPy: the integers, scales and zero points of one weight.

A weight is quantized along two axes: the *output-channel* axis gets one
scale per channel, and the *input* (reduction) axis is cut into blocks of
``block_size`` elements with one scale each (int4), or kept whole (int8, and
int4 where the block size does not divide the axis).  Every other axis
shares its scales.  The scales have the weight's rank, so they are the
spec's blockwise-broadcast ``scale`` of ``dequantizeLinear``, and
``(q - zero_point) * scale`` (each scale repeated over its block) gives back
the weight to within half a step.

Symmetric: ``scale = max|w| / qmax`` and ``zero_point = 0``; for int4, whose 16 levels are one
more on the negative side, the scale is ``e / -8`` for the block's extreme ``e`` (the element of
largest magnitude, with its sign), so that ``e`` is exactly -8 and every level is used (as ONNX
Runtime's blockwise quantizer does; 15 levels instead cost MiniLM-L3 0.004 of mean cosine).  Asymmetric:
``scale = (max - min) / (qmax - qmin)`` and ``zero_point = qmin - round(min / scale)``,
so that the block's range maps onto the type's whole range and 0 stays
exact.  A block of zeros gets scale 1.  Rounding is half to even, as the
spec's quantizeLinear.

Sums kept (``keep_sums=True``, the default): rounding each weight on its own
shifts the sum of a block's weights by up to half a step per weight, which is
a shift of the layer's response to a constant (or smooth) input: it goes
through every later layer (EfficientNet-Lite0's first depthwise convolution
alone moved the logits by 0.10).  So after rounding, the ``k`` weights whose
rounding went furthest the wrong way are rounded the other way, ``k`` being
what brings the block's integer sum within half a step of the float sum;
each weight then stays within one step.  (The same idea as the bias
correction of Nagel et al., "Data-Free Quantization", ICCV 2019, applied to
the rounding itself, so it needs no data.)
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = ["BITS", "Quantized", "block_shape", "dequantize", "quantize_weight"]

#: The quantized types and their (min, max).
BITS = {"int8": (-128, 127), "int4": (-8, 7)}
_NUMPY = {"int8": np.dtype(np.int8), "int4": np.dtype(ml_dtypes.int4)}


@dataclass(frozen=True)
class Quantized:
    """``values`` (of ``data_type``), ``scale`` (float32) and ``zero_point`` (of ``data_type``), both of
    the blocks' shape, so that :func:`dequantize` gives the weight back."""

    data_type: str
    values: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray


def block_shape(shape: tuple[int, ...], out_axis: int, in_axis: int, block_size: int | None) -> tuple[int, ...]:
    """The shape of the scales: one per output channel, and per block of ``block_size`` along
    ``in_axis`` (None, or a size that does not divide the axis: the whole axis)."""
    blocks = [1] * len(shape)
    blocks[out_axis] = shape[out_axis]
    size = shape[in_axis]
    if block_size is not None and in_axis != out_axis and size % block_size == 0:
        blocks[in_axis] = size // block_size
    return tuple(blocks)


def _blocked(array: np.ndarray, blocks: tuple[int, ...]) -> np.ndarray:
    """``array`` reshaped to (blocks[0], size0 // blocks[0], blocks[1], ...): each block's elements on odd axes."""
    shape = []
    for size, count in zip(array.shape, blocks, strict=True):
        shape += [count, size // count]
    return array.reshape(shape)


def _rows(array: np.ndarray, blocks: tuple[int, ...]) -> np.ndarray:
    """``array`` as one row per block (blocks in C order), each row its block's elements."""
    rank = array.ndim
    order = tuple(range(0, 2 * rank, 2)) + tuple(range(1, 2 * rank, 2))
    return _blocked(array, blocks).transpose(order).reshape(int(np.prod(blocks)), -1)


def _from_rows(rows: np.ndarray, shape: tuple[int, ...], blocks: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`_rows`: the array of ``shape`` whose blocks are ``rows``."""
    rank = len(shape)
    order = tuple(range(0, 2 * rank, 2)) + tuple(range(1, 2 * rank, 2))
    split = [n for size, count in zip(shape, blocks, strict=True) for n in (count, size // count)]
    return rows.reshape([split[i] for i in order]).transpose(np.argsort(order)).reshape(shape)


def _repeat(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each element of ``values`` repeated over its block of ``shape`` (blockwise broadcast)."""
    for axis, (size, count) in enumerate(zip(shape, values.shape, strict=True)):
        values = np.repeat(values, size // count, axis=axis)
    return values


def _round_keeping_sums(units: np.ndarray, blocks: tuple[int, ...], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``units`` (weights in steps) rounded into [``low``, ``high``] so that each block's integer sum is
    as near as the range allows to its float sum: per block, the ``k`` elements whose rounding erred
    most against the needed direction (and can move) go to their other neighbour (module docstring)."""
    flat, lo, hi = (_rows(np.broadcast_to(a, units.shape), blocks) for a in (units, low, high))
    rounded = np.clip(np.round(flat), lo, hi)
    need = np.round(flat.sum(axis=1) - rounded.sum(axis=1))[:, None]  # steps the block's sum is short by
    direction = np.sign(need)
    movable = (rounded + direction >= lo) & (rounded + direction <= hi)
    # Rank the elements by how far they were rounded against ``direction`` (their fraction towards it).
    fraction = np.where(movable, (flat - rounded) * direction, -np.inf)
    place = np.argsort(np.argsort(-fraction, axis=1, kind="stable"), axis=1, kind="stable")
    rounded += direction * ((place < np.abs(need)) & movable)
    return _from_rows(rounded, units.shape, blocks)


def quantize_weight(
    weight: np.ndarray,
    data_type: str,
    blocks: tuple[int, ...],
    *,
    symmetric: bool = True,
    keep_sums: bool = True,
) -> Quantized:
    """``weight`` quantized to ``data_type`` ("int8" or "int4") with one scale per block (``blocks`` is
    the scales' shape, e.g. from :func:`block_shape`); ``keep_sums`` rounds so that each block's sum
    is kept to within half a step (module docstring)."""
    qmin, qmax = BITS[data_type]
    w = weight.astype(np.float64)
    odd = tuple(range(1, 2 * w.ndim, 2))
    grouped = _blocked(w, blocks)
    if symmetric and data_type == "int4":
        # The block's extreme maps to -8 (the scale takes its sign): 16 levels instead of 15.
        rows = _rows(w, blocks)
        extreme = np.take_along_axis(rows, np.abs(rows).argmax(axis=1)[:, None], axis=1)[:, 0]
        scale = extreme.reshape(blocks) / qmin
        zero_point = np.zeros(blocks)
    elif symmetric:
        scale = np.abs(grouped).max(axis=odd) / qmax
        zero_point = np.zeros(blocks)
    else:
        low = np.minimum(grouped.min(axis=odd), 0.0)  # 0 stays in range (and exact)
        high = np.maximum(grouped.max(axis=odd), 0.0)
        scale = (high - low) / (qmax - qmin)
        zero_point = np.zeros(blocks)
        nonzero = scale > 0
        zero_point[nonzero] = np.clip(qmin - np.round(low[nonzero] / scale[nonzero]), qmin, qmax)
    scale = np.where(scale != 0, scale, 1.0).astype(np.float32)
    # Quantize with the float32 scale that the graph holds, as quantizeLinear would.
    units = w / _repeat(scale.astype(np.float64), w.shape)
    zero = _repeat(zero_point, w.shape)
    if keep_sums:
        q = _round_keeping_sums(units, blocks, qmin - zero, qmax - zero) + zero
    else:
        q = np.clip(np.round(units) + zero, qmin, qmax)
    dtype = _NUMPY[data_type]
    return Quantized(data_type, q.astype(dtype), scale, zero_point.astype(dtype))


def dequantize(q: Quantized) -> np.ndarray:
    """``(values - zero_point) * scale`` with the scales repeated over their blocks, in float32."""
    shape = q.values.shape
    difference = q.values.astype(np.float64) - _repeat(q.zero_point.astype(np.float64), shape)
    return (difference * _repeat(q.scale.astype(np.float64), shape)).astype(np.float32)
