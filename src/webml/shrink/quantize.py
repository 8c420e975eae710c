"""Weight-only quantization in NumPy: the integers, scales and zero points of one weight.

A weight is quantized along two axes: the *output-channel* axis gets one
scale per channel, and the *input* (reduction) axis is cut into blocks of
``block_size`` elements with one scale each (int4), or kept whole (int8, and
int4 where the block size does not divide the axis).  Every other axis
shares its scales.  The scales have the weight's rank, so they are the
spec's blockwise-broadcast ``scale`` of ``dequantizeLinear``, and
``(q - zero_point) * scale`` (each scale repeated over its block) gives back
the weight to within half a step.

Symmetric: ``scale = max|w| / qmax`` and ``zero_point = 0``.  Asymmetric:
``scale = (max - min) / (qmax - qmin)`` and ``zero_point = qmin - round(min / scale)``,
so that the block's range maps onto the type's whole range and 0 stays
exact.  A block of zeros gets scale 1.  Rounding is half to even, as the
spec's quantizeLinear.
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


def _repeat(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each element of ``values`` repeated over its block of ``shape`` (blockwise broadcast)."""
    for axis, (size, count) in enumerate(zip(shape, values.shape, strict=True)):
        values = np.repeat(values, size // count, axis=axis)
    return values


def quantize_weight(
    weight: np.ndarray, data_type: str, blocks: tuple[int, ...], *, symmetric: bool = True
) -> Quantized:
    """``weight`` quantized to ``data_type`` ("int8" or "int4") with one scale per block (``blocks`` is
    the scales' shape, e.g. from :func:`block_shape`)."""
    qmin, qmax = BITS[data_type]
    w = weight.astype(np.float64)
    odd = tuple(range(1, 2 * w.ndim, 2))
    grouped = _blocked(w, blocks)
    if symmetric:
        scale = np.abs(grouped).max(axis=odd) / qmax
        zero_point = np.zeros(blocks)
    else:
        low = np.minimum(grouped.min(axis=odd), 0.0)  # 0 stays in range (and exact)
        high = np.maximum(grouped.max(axis=odd), 0.0)
        scale = (high - low) / (qmax - qmin)
        zero_point = np.zeros(blocks)
        nonzero = scale > 0
        zero_point[nonzero] = np.clip(qmin - np.round(low[nonzero] / scale[nonzero]), qmin, qmax)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    # Quantize with the float32 scale that the graph holds, as quantizeLinear would.
    q = np.round(w / _repeat(scale.astype(np.float64), w.shape)) + _repeat(zero_point, w.shape)
    dtype = _NUMPY[data_type]
    return Quantized(data_type, np.clip(q, qmin, qmax).astype(dtype), scale, zero_point.astype(dtype))


def dequantize(q: Quantized) -> np.ndarray:
    """``(values - zero_point) * scale`` with the scales repeated over their blocks, in float32."""
    shape = q.values.shape
    difference = q.values.astype(np.float64) - _repeat(q.zero_point.astype(np.float64), shape)
    return (difference * _repeat(q.scale.astype(np.float64), shape)).astype(np.float32)
