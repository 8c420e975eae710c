"""Reference kernels of the normalization operators.

Each follows the emulation in the operator's section of the spec, evaluated
in float64: ``scale * ((x - mean) / sqrt(variance + epsilon)) + bias``, with
an absent scale taken as 1 and an absent bias as 0.  ``epsilon`` arrives
already cast to the input's data type.
"""

from __future__ import annotations

import numpy as np

from .kernels import kernel


def _affine(x, mean, variance, scale, bias, epsilon):
    """scale * ((x - mean) / sqrt(variance + epsilon)) + bias; the operands broadcast against x."""
    y = (x - mean) / np.sqrt(variance + epsilon)
    if scale is not None:
        y = scale * y
    if bias is not None:
        y = y + bias
    return y


def _along(vector, axis: int, rank: int):
    """Reshape a 1-D per-feature operand to broadcast along ``axis`` of a rank-``rank`` tensor."""
    if vector is None:
        return None
    shape = [1] * rank
    shape[axis] = vector.size
    return vector.reshape(shape)


def _moments(x, axes: tuple[int, ...]):
    """The mean and (biased) variance over ``axes``, kept as size-1 dimensions (reduceMean twice)."""
    mean = np.mean(x, axis=axes, keepdims=True)
    variance = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    return mean, variance


@kernel("batchNormalization")
def batch_normalization(input, mean, variance, scale=None, bias=None, *, out, axis, epsilon):
    r = input.ndim
    return _affine(
        input,
        _along(mean, axis, r),
        _along(variance, axis, r),
        _along(scale, axis, r),
        _along(bias, axis, r),
        epsilon,
    )


@kernel("instanceNormalization")
def instance_normalization(input, scale=None, bias=None, *, out, epsilon, layout):
    # Per sample and channel, over the spatial dimensions.
    channel, spatial = (1, (2, 3)) if layout == "nchw" else (3, (1, 2))
    mean, variance = _moments(input, spatial)
    return _affine(input, mean, variance, _along(scale, channel, 4), _along(bias, channel, 4), epsilon)


def _over_axes(operand, axes: tuple[int, ...], rank: int):
    """Place an operand whose dimensions are input dimensions ``axes`` (in that order) to broadcast against it."""
    if operand is None:
        return None
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    shape = [1] * rank
    for a in axes:
        shape[a] = operand.shape[axes.index(a)]
    return np.transpose(operand, order).reshape(shape)


@kernel("layerNormalization")
def layer_normalization(input, scale=None, bias=None, *, out, axes, epsilon):
    # With no axes nothing is reduced: the mean is x itself and the variance 0.
    mean, variance = _moments(input, tuple(axes))
    r = input.ndim
    return _affine(input, mean, variance, _over_axes(scale, axes, r), _over_axes(bias, axes, r), epsilon)
