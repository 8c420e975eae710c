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
from .registry import Call, op

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


def normalized(call: Call, input: Value, inputs: Sequence[Value | None], **attrs: Any) -> Value:
    """Emit the node; its output is a copy of the input's descriptor (*copying an MLOperand*)."""
    return call.emit(inputs, OperandDesc(input.data_type, input.shape), **attrs)


@op(
    "batchNormalization",
    family="normalization",
    input=limit(FLOATS, 1),
    mean=FLOAT_1D,
    variance=FLOAT_1D,
    scale=FLOAT_1D,
    bias=FLOAT_1D,
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
    return normalized(call, input, [input, mean, variance, scale, bias], axis=axis, epsilon=epsilon)


@op(
    "instanceNormalization",
    family="normalization",
    input=limit(FLOATS, 4, 4),
    scale=FLOAT_1D,
    bias=FLOAT_1D,
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
    return normalized(call, input, [input, scale, bias], epsilon=epsilon, layout=layout)


@op("layerNormalization", family="normalization", input=FLOAT, scale=FLOAT, bias=FLOAT, output=FLOAT)
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
    return normalized(call, input, [input, scale, bias], axes=axes, epsilon=epsilon)
