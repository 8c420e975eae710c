"""Reference kernels of quantizeLinear and dequantizeLinear."""

from __future__ import annotations

import numpy as np

from .kernels import kernel


def blockwise_expand(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat each element of ``values`` into its block of ``shape`` (the spec's blockwiseExpand).

    A lower-rank ``values`` is first aligned to the trailing dimensions (see
    ``webml.ops.quantize``).
    """
    out = values.reshape((1,) * (len(shape) - values.ndim) + values.shape)
    for axis, size in enumerate(shape):
        if out.shape[axis] != size:
            out = np.repeat(out, size // out.shape[axis], axis=axis)
    return out


@kernel("quantizeLinear")
def quantize_linear(input, scale, zero_point, *, out):
    scale = blockwise_expand(scale, input.shape)
    zero_point = blockwise_expand(zero_point, input.shape)
    # np.rint rounds half to even; the runtime's cast to zeroPoint's type
    # saturates to its range (NaN -> 0), the spec's final clamp and cast.
    return np.rint(input / scale) + zero_point


@kernel("dequantizeLinear")
def dequantize_linear(input, scale, zero_point, *, out):
    scale = blockwise_expand(scale, input.shape)
    zero_point = blockwise_expand(zero_point, input.shape)
    return (input - zero_point) * scale
