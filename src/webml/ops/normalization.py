"""Normalization operators: batchNormalization, instanceNormalization, layerNormalization.

Each returns a copy of the input's descriptor.  The optional ``scale`` and
``bias`` operands (and batchNormalization's ``mean`` and ``variance``) must
have the input's data type and a shape given by the input's normalized
dimensions; ``epsilon`` is cast to the input's data type as the method steps
say, so the kernel computes with exactly the value the spec's operator holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir import OperandDesc, Value
from .activation import double
from .checks import FLOATS, axes_in_rank, axis_in_rank, limit, one_of, same_type
from .registry import Call, gradient, op, optional

FLOAT = limit(FLOATS)
FLOAT_1D = limit(FLOATS, 1, 1)
LAYOUTS = ("nchw", "nhwc")


def check_operand(call: Call, input: Value, operand: Value | None, name: str, shape: Sequence[int]) -> None:
    """An operand argument (absent when None) must have the input's data type and ``shape``."""
    if operand is None:
        return
    same_type(call, input, operand, names=("input", name))
    if tuple(operand.shape) != tuple(shape):
        raise call.error(f"{name} shape {list(operand.shape)} must be {list(shape)}")


def normalized(call: Call, input: Value, operands: dict[str, Value | None], **attrs: Any) -> Value:
    """Emit the node; its output is a copy of the input's descriptor (*copying an MLOperand*)."""
    return call.emit({"input": input, **operands}, OperandDesc(input.data_type, input.shape), **attrs)


@op(
    "batchNormalization",
    family="normalization",
    input=limit(FLOATS, 1),
    mean=FLOAT_1D,
    variance=FLOAT_1D,
    scale=optional(FLOAT_1D),
    bias=optional(FLOAT_1D),
    output=limit(FLOATS, 1),
)
def batch_normalization(
    call: Call,
    input: Value,
    mean: Value,
    variance: Value,
    *,
    scale: Value | None = None,
    bias: Value | None = None,
    axis: Any = 1,
    epsilon: Any = 1e-5,
) -> Value:
    """scale * (input - mean) / sqrt(variance + epsilon) + bias, per feature along ``axis``.

    ``mean``, ``variance``, ``scale`` and ``bias`` are 1-D, of size
    input.shape[axis].
    """
    axis = axis_in_rank(call, axis, input.rank)
    features = (input.shape[axis],)
    check_operand(call, input, mean, "mean", features)
    check_operand(call, input, variance, "variance", features)
    epsilon = double(call, epsilon, "epsilon", input.data_type)
    check_operand(call, input, scale, "scale", features)
    check_operand(call, input, bias, "bias", features)
    return normalized(
        call, input, {"mean": mean, "variance": variance, "scale": scale, "bias": bias}, axis=axis, epsilon=epsilon
    )


@op(
    "instanceNormalization",
    family="normalization",
    input=limit(FLOATS, 4, 4),
    scale=optional(FLOAT_1D),
    bias=optional(FLOAT_1D),
    output=limit(FLOATS, 4, 4),
)
def instance_normalization(
    call: Call,
    input: Value,
    *,
    scale: Value | None = None,
    bias: Value | None = None,
    epsilon: Any = 1e-5,
    layout: Any = "nchw",
) -> Value:
    """Normalize each channel of each sample over its spatial dimensions.

    ``scale`` and ``bias`` are 1-D, of the channel count (dimension 1 for
    "nchw", 3 for "nhwc").
    """
    # layout is a WebIDL enum: converted (and rejected) before the method steps.
    layout = one_of(call, layout, LAYOUTS, "layout")
    epsilon = double(call, epsilon, "epsilon", input.data_type)
    channels = (input.shape[1 if layout == "nchw" else 3],)
    check_operand(call, input, scale, "scale", channels)
    check_operand(call, input, bias, "bias", channels)
    return normalized(call, input, {"scale": scale, "bias": bias}, epsilon=epsilon, layout=layout)


@op(
    "layerNormalization", family="normalization", input=FLOAT, scale=optional(FLOAT), bias=optional(FLOAT), output=FLOAT
)
def layer_normalization(
    call: Call,
    input: Value,
    *,
    scale: Value | None = None,
    bias: Value | None = None,
    axes: Any = None,
    epsilon: Any = 1e-5,
) -> Value:
    """Normalize over ``axes`` (default: every dimension but the first).

    ``scale`` and ``bias`` have the sizes of the input's dimensions ``axes``,
    in the order of ``axes``.
    """
    if axes is None:
        axes = tuple(range(1, input.rank))  # empty for rank 0 and 1
    else:
        axes = axes_in_rank(call, axes, input.rank)
    epsilon = double(call, epsilon, "epsilon", input.data_type)
    sizes = tuple(input.shape[a] for a in axes)
    for operand, name in ((scale, "scale"), (bias, "bias")):
        if operand is None:
            continue
        same_type(call, input, operand, names=("input", name))
        if operand.rank != len(axes):
            raise call.error(f"{name} rank {operand.rank} must equal the number of axes {list(axes)} ({len(axes)})")
    check_operand(call, input, scale, "scale", sizes)
    check_operand(call, input, bias, "bias", sizes)
    return normalized(call, input, {"scale": scale, "bias": bias}, axes=axes, epsilon=epsilon)


# -- gradients ------------------------------------------------------------------


def _broadcast_shape(rank: int, axes: Sequence[int], sizes: Sequence[int]) -> list[int]:
    shape = [1] * rank
    for axis, size in zip(axes, sizes):
        shape[axis] = size
    return shape


def _others(rank: int, axes: Sequence[int]) -> list[int]:
    return [i for i in range(rank) if i not in axes]


def _reduce_to(g, value, rank: int, axes: Sequence[int]):
    """Sum ``value`` over every dimension but ``axes`` (a tensor of those dimensions, in increasing order)."""
    return g.b.reduce_sum(value, axes=_others(rank, axes))


@gradient("batchNormalization")
def _batch_normalization_grad(g, input, mean, variance, scale=None, bias=None, *, axis, epsilon):
    # y = scale * (x - mean) * inv + bias, inv = (variance + epsilon)^-1/2, per feature along axis.
    b, dy, x, r = g.b, g.dout, input, len(input.shape)
    shape = _broadcast_shape(r, [axis], [x.shape[axis]])
    inv = b.div(g.scalar(1, x), b.sqrt(b.add(variance, g.scalar(epsilon, x))))  # [F]
    centered = b.sub(x, b.reshape(mean, shape))
    dy_scaled = dy if scale is None else b.mul(dy, b.reshape(scale, shape))
    dx = b.mul(dy_scaled, b.reshape(inv, shape))
    dmean = b.neg(_reduce_to(g, dx, r, [axis]))
    # d inv / d variance = -inv^3 / 2
    half_cube = b.mul(g.scalar(-0.5, x), b.mul(inv, b.mul(inv, inv)))
    dvariance = b.mul(_reduce_to(g, b.mul(dy_scaled, centered), r, [axis]), half_cube)
    dscale = None if scale is None else b.mul(_reduce_to(g, b.mul(dy, centered), r, [axis]), inv)
    dbias = None if bias is None else _reduce_to(g, dy, r, [axis])
    return {"input": dx, "mean": dmean, "variance": dvariance, "scale": dscale, "bias": dbias}


def _normalize_grad(g, x, epsilon: float, axes: Sequence[int], scale_shaped, dy):
    """d/dx of ((x - mean) / sqrt(variance + epsilon)) * scale over ``axes``; also x normalized."""
    b = g.b
    mean = b.reduce_mean(x, axes=list(axes), keep_dimensions=True)
    centered = b.sub(x, mean)
    variance = b.reduce_mean(b.mul(centered, centered), axes=list(axes), keep_dimensions=True)
    inv = b.div(g.scalar(1, x), b.sqrt(b.add(variance, g.scalar(epsilon, x))))
    normalized = b.mul(centered, inv)
    dnormalized = dy if scale_shaped is None else b.mul(dy, scale_shaped)
    # dx = inv * (dn - mean(dn) - n * mean(dn * n)) over the normalized axes.
    mean_d = b.reduce_mean(dnormalized, axes=list(axes), keep_dimensions=True)
    mean_dn = b.reduce_mean(b.mul(dnormalized, normalized), axes=list(axes), keep_dimensions=True)
    dx = b.mul(inv, b.sub(b.sub(dnormalized, mean_d), b.mul(normalized, mean_dn)))
    return dx, normalized


@gradient("instanceNormalization")
def _instance_normalization_grad(g, input, scale=None, bias=None, *, epsilon, layout):
    b, dy = g.b, g.dout
    channel, spatial = (1, (2, 3)) if layout == "nchw" else (3, (1, 2))
    shape = _broadcast_shape(4, [channel], [input.shape[channel]])
    dx, normalized = _normalize_grad(g, input, epsilon, spatial, None if scale is None else b.reshape(scale, shape), dy)
    dscale = None if scale is None else _reduce_to(g, b.mul(dy, normalized), 4, [channel])
    dbias = None if bias is None else _reduce_to(g, dy, 4, [channel])
    return {"input": dx, "scale": dscale, "bias": dbias}


@gradient("layerNormalization")
def _layer_normalization_grad(g, input, scale=None, bias=None, *, axes, epsilon):
    b, dy, axes, r = g.b, g.dout, tuple(axes), len(input.shape)
    # scale and bias have the dimensions axes in the order of axes; bring them to increasing order and back.
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    back = [order.index(i) for i in range(len(axes))]
    shape = _broadcast_shape(r, axes, [input.shape[a] for a in axes])

    def placed(operand):
        sorted_operand = operand if order == sorted(order) else b.transpose(operand, permutation=order)
        return b.reshape(sorted_operand, shape)

    def unplaced(value):  # dimensions in increasing axis order -> in the order of axes
        return value if back == sorted(back) else b.transpose(value, permutation=back)

    dx, normalized = _normalize_grad(g, input, epsilon, axes, None if scale is None else placed(scale), dy)
    dscale = None if scale is None else unplaced(_reduce_to(g, b.mul(dy, normalized), r, axes))
    dbias = None if bias is None else unplaced(_reduce_to(g, dy, r, axes))
    return {"input": dx, "scale": dscale, "bias": dbias}
