"""ONNX lowerings of the normalization operators.

instanceNormalization maps onto ONNX's InstanceNormalization (transposed to
and from NCHW for "nhwc"), layerNormalization onto LayerNormalization (which
normalizes trailing axes: other axes are transposed to the end); absent
scales and biases become ones and zeros.  batchNormalization is decomposed
(see there).
"""

from __future__ import annotations

import numpy as np

from ...ops.checks import FLOATS
from .lowering import Arg, Lowerer, lowering, storage_dtype


def _filled(lw: Lowerer, name: str | None, value: float, shape, data_type: str) -> str:
    """``name``, or a constant of ``shape`` filled with ``value`` when the operand is absent."""
    if name is not None:
        return name
    return lw.const(np.full(tuple(shape), value, dtype=storage_dtype(data_type)))


@lowering("batchNormalization", input=FLOATS)
def batch_normalization(
    lw: Lowerer, input: Arg, mean: Arg, variance: Arg, scale: Arg | None = None, bias: Arg | None = None,
    *, out: Arg, axis: int, epsilon: float,
) -> None:
    # Not ONNX BatchNormalization: its kernel folds the mean into the bias (x * a + (bias - mean * a)),
    # which cancels catastrophically for x near the mean and misses WPT's tolerance.  Here the
    # per-feature factor a = scale / sqrt(variance + epsilon) is computed on the 1-D operands and
    # the input sees three element-wise nodes: (x - mean) * a + bias.
    axis, dt, shape = int(axis), input.data_type, input.shape
    std = lw.emit("Sqrt", [lw.emit("Add", [variance, lw.const(epsilon, dt)])])
    factor = lw.emit("Div", [_filled(lw, scale, 1.0, (), dt), std])
    trailing = len(shape) - 1 - axis
    if trailing:  # 1-D operands broadcast along the last axis: give them trailing unit dimensions
        target = lw.ints([shape[axis]] + [1] * trailing)
        mean, factor = (lw.emit("Reshape", [v, target]) for v in (mean, factor))
        bias = None if bias is None else lw.emit("Reshape", [bias, target])
    y = lw.emit("Mul", [lw.emit("Sub", [input, mean]), factor], 1 if bias is not None else out)
    if bias is not None:
        lw.emit("Add", [y, bias], out)


@lowering("instanceNormalization", input=FLOATS)
def instance_normalization(
    lw: Lowerer, input: Arg, scale: Arg | None = None, bias: Arg | None = None, *, out: Arg, epsilon: float, layout: str
) -> None:
    epsilon, dt = float(epsilon), input.data_type
    channels = input.shape[1 if layout == "nchw" else 3]
    scale = _filled(lw, scale, 1.0, (channels,), dt)
    bias = _filled(lw, bias, 0.0, (channels,), dt)
    if layout == "nchw":
        lw.emit("InstanceNormalization", [input, scale, bias], out, epsilon=epsilon)
        return
    nchw = lw.emit("Transpose", [input], perm=[0, 3, 1, 2])
    y = lw.emit("InstanceNormalization", [nchw, scale, bias], epsilon=epsilon)
    lw.emit("Transpose", [y], out, perm=[0, 2, 3, 1])


@lowering("layerNormalization", input=FLOATS)
def layer_normalization(
    lw: Lowerer,
    input: Arg,
    scale: Arg | None = None,
    bias: Arg | None = None,
    *,
    out: Arg,
    axes: tuple[int, ...],
    epsilon: float,
) -> None:
    x, axes, epsilon = input, tuple(int(a) for a in axes), float(epsilon)
    shape, dt, rank = input.shape, input.data_type, input.rank
    if not axes:
        # Nothing is reduced: the mean is x and the variance 0, so (x - x) / sqrt(epsilon) is 0
        # (NaN for infinite or NaN x); scale and bias are scalars.
        y = lw.emit("Sub", [x, x], 1 if scale is not None or bias is not None else out)
        if scale is not None:
            y = lw.emit("Mul", [y, scale], 1 if bias is not None else out)
        if bias is not None:
            lw.emit("Add", [y, bias], out)
        return
    ordered = tuple(sorted(axes))
    if axes != ordered:
        # scale and bias follow the order of axes; LayerNormalization wants the input's order.
        order = sorted(range(len(axes)), key=lambda i: axes[i])
        scale = None if scale is None else lw.emit("Transpose", [scale], perm=order)
        bias = None if bias is None else lw.emit("Transpose", [bias], perm=order)
    scale = _filled(lw, scale, 1.0, [shape[a] for a in ordered], dt)
    first = rank - len(ordered)
    # An empty name for the absent bias crashes ONNX Runtime 1.32's kernel: leave it out.
    operands = [scale] if bias is None else [scale, bias]
    if ordered == tuple(range(first, rank)):
        lw.emit("LayerNormalization", [x, *operands], out, axis=first, epsilon=epsilon)
        return
    # Move the normalized axes to the end, normalize, and move them back.
    perm = [a for a in range(rank) if a not in ordered] + list(ordered)
    inverse = [perm.index(a) for a in range(rank)]
    moved = lw.emit("Transpose", [x], perm=perm)
    y = lw.emit("LayerNormalization", [moved, *operands], axis=first, epsilon=epsilon)
    lw.emit("Transpose", [y], out, perm=inverse)
