"""Convolution operators: conv2d and convTranspose2d (spec §7.8 "conv2d", "convTranspose2d").

Both rules follow the spec's method steps in order: the option lists get
their defaults and lengths checked, the shapes are read through the input
and filter layouts, and the output's spatial sizes come from the spec's
*calculate conv output size* / *calculate convtranspose output size*.  Sizes
are computed with Python integers, so the overflow cases of WPT (huge
dilations, huge groups) end as invalid dimensions rather than wrapping.

The kernel gets the normalized options; it reads the output sizes from the
output descriptor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir import OperandDesc, Value
from .checks import FLOATS, check_shape, limit, one_of, same_type, unsigned_long, unsigned_longs, valid_dimension
from .registry import Call, op

INPUT_LAYOUTS = ("nchw", "nhwc")
CONV2D_FILTER_LAYOUTS = ("oihw", "hwio", "ohwi", "ihwo")
CONV_TRANSPOSE2D_FILTER_LAYOUTS = ("iohw", "hwoi", "ohwi")

# The spec's tables (the same for both operators): float32/float16, 4-D
# input, filter and output, 1-D bias; "same type as input" is in the rules.
LIMITS = {
    "input": limit(FLOATS, 4, 4),
    "filter": limit(FLOATS, 4, 4),
    "bias": limit(FLOATS, 1, 1),
    "output": limit(FLOATS, 4, 4),
}


def dims(shape: Sequence[int], layout: str) -> dict[str, int]:
    """Name the dimensions of a 4-D shape by its layout's letters (``dims(s, "nhwc")["c"]``).

    In conv2d filter layouts o is outputChannels and i filterInputChannels; in
    convTranspose2d ones i is filterInputChannels and o filterOutputChannels.
    """
    return dict(zip(layout, shape))


def conv_output_size(input_size: int, filter_size: int, begin: int, end: int, stride: int, dilation: int) -> int:
    """The spec's *calculate conv output size*, floored (the conv2d steps floor it)."""
    effective_filter_size = (filter_size - 1) * dilation + 1
    # floor(a / stride + 1) == a // stride + 1 for integers, negative a included.
    return (input_size - effective_filter_size + begin + end) // stride + 1


def conv_transpose_output_size(
    input_size: int, filter_size: int, begin: int, end: int, stride: int, dilation: int
) -> int:
    """The spec's *calculate convtranspose output size*."""
    effective_filter_size = (filter_size - 1) * dilation + 1
    return (input_size - 1) * stride + effective_filter_size - begin - end


def _list_option(call: Call, value: Any, name: str, size: int, default: tuple[int, ...]) -> tuple[int, ...]:
    """A ``sequence<[EnforceRange] unsigned long>`` option: the default if absent, else exactly ``size`` items."""
    if value is None:
        return default
    values = unsigned_longs(call, value, name)
    if len(values) != size:
        raise call.error(f"{name} must have {size} values, got {len(values)}: {list(values)}")
    return values


def _nonzero(call: Call, values: tuple[int, ...], name: str) -> tuple[int, ...]:
    if 0 in values:
        raise call.error(f"{name} {list(values)} must not contain 0")
    return values


def _common_options(
    call: Call, padding: Any, strides: Any, dilations: Any
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """padding (4 items), strides and dilations (2 non-zero items each), in the spec's order."""
    padding = _list_option(call, padding, "padding", 4, (0, 0, 0, 0))
    strides = _nonzero(call, _list_option(call, strides, "strides", 2, (1, 1)), "strides")
    dilations = _nonzero(call, _list_option(call, dilations, "dilations", 2, (1, 1)), "dilations")
    return padding, strides, dilations


def _groups(call: Call, groups: Any) -> int:
    groups = unsigned_long(call, groups, "groups")
    if groups == 0:
        raise call.error("groups must not be 0")
    return groups


def _check_bias(call: Call, input: Value, bias: Value | None, output_channels: int) -> None:
    """bias must be [outputChannels] of input's data type (rank and type family were checked by the limits)."""
    if bias is None:
        return
    if tuple(bias.shape) != (output_channels,):
        raise call.error(f"bias shape {list(bias.shape)} must be [outputChannels] = [{output_channels}]")
    same_type(call, input, bias, names=("input", "bias"))


def _output_desc(call: Call, input: Value, layout: str, batches: int, channels: int, height: int, width: int):
    """Check the spatial sizes are valid dimensions and lay the output out like the input."""
    for name, size in (("height", height), ("width", width)):
        if not valid_dimension(size):
            raise call.error(f"the output {name} {size} is not a valid dimension (it must be in [1, 2^31-1])")
    shape = (batches, channels, height, width) if layout == "nchw" else (batches, height, width, channels)
    return OperandDesc(input.data_type, check_shape(call, shape))


@op("conv2d", family="conv", **LIMITS)
def conv2d(
    call: Call,
    input: Value,
    filter: Value,
    *,
    padding: Any = None,
    strides: Any = None,
    dilations: Any = None,
    groups: Any = 1,
    input_layout: Any = "nchw",
    filter_layout: Any = "oihw",
    bias: Value | None = None,
) -> Value:
    """2-D convolution; output size 1 + (inputSize - (filterSize - 1) * dilation - 1 + padding) / stride."""
    input_layout = one_of(call, input_layout, INPUT_LAYOUTS, "input_layout")
    filter_layout = one_of(call, filter_layout, CONV2D_FILTER_LAYOUTS, "filter_layout")
    same_type(call, input, filter, names=("input", "filter"))
    padding, strides, dilations = _common_options(call, padding, strides, dilations)
    groups = _groups(call, groups)

    x = dims(input.shape, input_layout)
    f = dims(filter.shape, filter_layout)
    input_channels, output_channels = x["c"], f["o"]
    if input_channels % groups != 0:
        raise call.error(f"input channels {input_channels} must be divisible by groups {groups}")
    if input_channels // groups != f["i"]:
        raise call.error(
            f"input channels / groups ({input_channels} / {groups} = {input_channels // groups}) must equal "
            f"the filter's input channels {f['i']} (filter shape {list(filter.shape)}, layout {filter_layout})"
        )
    if output_channels % groups != 0:
        raise call.error(f"output channels {output_channels} must be divisible by groups {groups}")
    _check_bias(call, input, bias, output_channels)

    height = conv_output_size(x["h"], f["h"], padding[0], padding[1], strides[0], dilations[0])
    width = conv_output_size(x["w"], f["w"], padding[2], padding[3], strides[1], dilations[1])
    desc = _output_desc(call, input, input_layout, x["n"], output_channels, height, width)
    return call.emit(
        [input, filter, bias],
        desc,
        padding=padding,
        strides=strides,
        dilations=dilations,
        groups=groups,
        input_layout=input_layout,
        filter_layout=filter_layout,
    )


@op("convTranspose2d", family="conv", **LIMITS)
def conv_transpose2d(
    call: Call,
    input: Value,
    filter: Value,
    *,
    padding: Any = None,
    strides: Any = None,
    dilations: Any = None,
    output_padding: Any = None,
    output_sizes: Any = None,
    groups: Any = 1,
    input_layout: Any = "nchw",
    filter_layout: Any = "iohw",
    bias: Value | None = None,
) -> Value:
    """2-D transposed convolution; output size (inputSize - 1) * stride + (filterSize - 1) * dilation + 1
    - padding + outputPadding, or output_sizes when given."""
    input_layout = one_of(call, input_layout, INPUT_LAYOUTS, "input_layout")
    filter_layout = one_of(call, filter_layout, CONV_TRANSPOSE2D_FILTER_LAYOUTS, "filter_layout")
    same_type(call, input, filter, names=("input", "filter"))
    padding, strides, dilations = _common_options(call, padding, strides, dilations)
    output_padding = _list_option(call, output_padding, "output_padding", 2, (0, 0))
    if output_sizes is not None:
        output_sizes = _list_option(call, output_sizes, "output_sizes", 2, ())
    elif output_padding[0] >= strides[0] or output_padding[1] >= strides[1]:
        # Only checked without output_sizes: output_sizes make output_padding unused.
        raise call.error(f"output_padding {list(output_padding)} must be smaller than strides {list(strides)}")
    groups = _groups(call, groups)

    x = dims(input.shape, input_layout)
    f = dims(filter.shape, filter_layout)
    input_channels = x["c"]
    if input_channels != f["i"]:
        raise call.error(
            f"input channels {input_channels} must equal the filter's input channels {f['i']} "
            f"(filter shape {list(filter.shape)}, layout {filter_layout})"
        )
    # The spec does not require input channels divisible by groups here (WPT
    # builds groups=3 over one channel); the kernel cannot compute such a node.
    output_channels = f["o"] * groups
    if not valid_dimension(output_channels):
        raise call.error(
            f"output channels (filter output channels {f['o']} * groups {groups} = {output_channels}) "
            "is not a valid dimension"
        )
    _check_bias(call, input, bias, output_channels)

    calculated = (
        conv_transpose_output_size(x["h"], f["h"], padding[0], padding[1], strides[0], dilations[0]),
        conv_transpose_output_size(x["w"], f["w"], padding[2], padding[3], strides[1], dilations[1]),
    )
    if output_sizes is not None:
        for i, name in enumerate(("height", "width")):
            if not calculated[i] <= output_sizes[i] < calculated[i] + strides[i]:
                raise call.error(
                    f"output_sizes[{i}] (output {name}) {output_sizes[i]} must be in "
                    f"[{calculated[i]}, {calculated[i] + strides[i]}) given the input, filter, padding, "
                    "strides and dilations"
                )
        height, width = output_sizes
    else:
        height, width = calculated[0] + output_padding[0], calculated[1] + output_padding[1]
    desc = _output_desc(call, input, input_layout, x["n"], output_channels, height, width)
    return call.emit(
        [input, filter, bias],
        desc,
        padding=padding,
        strides=strides,
        dilations=dilations,
        groups=groups,
        input_layout=input_layout,
        filter_layout=filter_layout,
    )
