"""Pooling operators: averagePool2d, l2Pool2d, maxPool2d (spec §7.9 "Pooling operations").

One rule, the spec's *create a pooling operation*, serves all three; they
differ only in their allowed data types.  The output size of each spatial
dimension is the spec's *calculate conv output size*
``(inputSize - ((window - 1) * dilation + 1) + padBegin + padEnd) / stride + 1``,
rounded down or up by ``output_shape_rounding``, or given by ``output_sizes``,
which must be one of the two roundings.

Two of the spec's steps are not followed as written (both contradict WPT and
Chromium; webmachinelearning/webnn PR #770 calls the first one bogus):

* "If outputSizes exists ... set padding to « 0, 0, 0, 0 »": padding is kept;
  WPT's "outputSizes ignores roundingType" cases need it for their sizes.
* "If its items [outputSizes] are not smaller than the items ... for strides,
  then throw": read literally it rejects WPT's valid ``outputSizes=[3, 3]``
  with ``strides=[2, 2]``; output sizes are checked as valid dimensions instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir import OperandDesc, Value
from .checks import FLOATS, SPEC_TYPES, check_shape, limit, one_of, unsigned_longs
from .registry import Call, op

LAYOUTS = ("nchw", "nhwc")
ROUNDING_TYPES = ("floor", "ceil")

FLOAT4D = limit(FLOATS, 4, 4)
ANY4D = limit(SPEC_TYPES, 4, 4)


def conv_output_sizes(
    input_size: int, window: int, begin: int, end: int, stride: int, dilation: int
) -> tuple[int, int]:
    """floor and ceil of the spec's *calculate conv output size*

    ``(inputSize - effectiveWindow + begin + end) / stride + 1``, in exact
    integer arithmetic (paddings reach 2^32 - 1, beyond float precision).
    """
    effective_window = (window - 1) * dilation + 1
    numerator = input_size - effective_window + begin + end
    return numerator // stride + 1, -(-numerator // stride) + 1


def _list_option(call: Call, value: Sequence[int] | None, name: str, length: int, default: Sequence[int]):
    """An optional ``sequence<unsigned long>`` option of the given length (default when absent)."""
    if value is None:
        return tuple(default)
    values = unsigned_longs(call, value, name)
    if len(values) != length:
        raise call.error(f"the length of {name} ({len(values)}) must be {length}")
    return values


def _nonzero(call: Call, values: Sequence[int], name: str) -> None:
    for i, v in enumerate(values):
        if v == 0:
            raise call.error(f"{name}[{i}] must be greater than 0, got {list(values)}")


def pool2d(
    call: Call,
    input: Value,
    *,
    window_dimensions: Sequence[int] | None = None,
    padding: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    dilations: Sequence[int] | None = None,
    layout: str = "nchw",
    output_shape_rounding: str = "floor",
    output_sizes: Sequence[int] | None = None,
    rounding_type: str | None = None,
) -> Value:
    """Pool each window of the two spatial dimensions of a 4-D ``input``.

    ``rounding_type`` is the earlier name of ``output_shape_rounding`` (Chromium
    and this WPT revision use it); giving both with different values is an error.
    """
    # WebIDL conversion of the options dictionary: enums and unsigned long sequences.
    layout = one_of(call, layout, LAYOUTS, "layout")
    rounding = one_of(call, output_shape_rounding, ROUNDING_TYPES, "output_shape_rounding")
    if rounding_type is not None:
        rounding_type = one_of(call, rounding_type, ROUNDING_TYPES, "rounding_type")
        if output_shape_rounding != "floor" and rounding_type != rounding:
            raise call.error(
                f"rounding_type {rounding_type!r} (the earlier name of output_shape_rounding) "
                f"contradicts output_shape_rounding {rounding!r}"
            )
        rounding = rounding_type
    if output_sizes is not None:
        output_sizes = unsigned_longs(call, output_sizes, "output_sizes")

    # The input's rank (4) and data type were checked by the limits.
    if layout == "nchw":
        batches, channels, input_height, input_width = input.shape
    else:
        batches, input_height, input_width, channels = input.shape

    window = _list_option(call, window_dimensions, "window_dimensions", 2, (input_height, input_width))
    _nonzero(call, window, "window_dimensions")
    padding = _list_option(call, padding, "padding", 4, (0, 0, 0, 0))
    strides = _list_option(call, strides, "strides", 2, (1, 1))
    _nonzero(call, strides, "strides")
    if output_sizes is not None and len(output_sizes) != 2:
        raise call.error(f"the length of output_sizes ({len(output_sizes)}) must be 2")
    dilations = _list_option(call, dilations, "dilations", 2, (1, 1))
    _nonzero(call, dilations, "dilations")

    # Calculate the output shape.
    height = conv_output_sizes(input_height, window[0], padding[0], padding[1], strides[0], dilations[0])
    width = conv_output_sizes(input_width, window[1], padding[2], padding[3], strides[1], dilations[1])
    if output_sizes is not None:
        output_height, output_width = output_sizes
        if (output_height, output_width) not in ((height[0], width[0]), (height[1], width[1])):
            raise call.error(
                f"output_sizes {list(output_sizes)} must be the floor {[height[0], width[0]]} or the "
                f"ceiling {[height[1], width[1]]} of the calculated output sizes"
            )
    else:
        index = ROUNDING_TYPES.index(rounding)
        output_height, output_width = height[index], width[index]
    for name, size in (("height", output_height), ("width", output_width)):
        if size <= 0:
            raise call.error(
                f"the output {name} {size} is not a valid dimension: the window (window_dimensions "
                f"{list(window)}, dilations {list(dilations)}) must fit in the padded input "
                f"({input_height}x{input_width}, padding {list(padding)})"
            )
        if size > 2**31 - 1:
            raise call.error(f"the output {name} {size} is not a valid dimension (it exceeds 2^31-1)")
    if layout == "nchw":
        shape = (batches, channels, output_height, output_width)
    else:
        shape = (batches, output_height, output_width, channels)
    shape = check_shape(call, shape)
    return call.emit(
        [input],
        OperandDesc(input.data_type, shape),
        window_dimensions=window,
        padding=padding,
        strides=strides,
        dilations=dilations,
        layout=layout,
    )


# averagePool2d and l2Pool2d take floats only; maxPool2d any data type.
op("averagePool2d", family="pool", input=FLOAT4D, output=FLOAT4D)(pool2d)
op("l2Pool2d", family="pool", input=FLOAT4D, output=FLOAT4D)(pool2d)
op("maxPool2d", family="pool", input=ANY4D, output=ANY4D)(pool2d)
