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
from .registry import Call, gradient, op, optional

INPUT_LAYOUTS = ("nchw", "nhwc")
CONV2D_FILTER_LAYOUTS = ("oihw", "hwio", "ohwi", "ihwo")
CONV_TRANSPOSE2D_FILTER_LAYOUTS = ("iohw", "hwoi", "ohwi")

# The spec's tables (the same for both operators): float32/float16, 4-D
# input, filter and output, 1-D bias; "same type as input" is in the rules.
LIMITS = {
    "input": limit(FLOATS, 4, 4),
    "filter": limit(FLOATS, 4, 4),
    "bias": optional(limit(FLOATS, 1, 1)),
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
        {"input": input, "filter": filter, "bias": bias},
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
        {"input": input, "filter": filter, "bias": bias},
        desc,
        padding=padding,
        strides=strides,
        dilations=dilations,
        groups=groups,
        input_layout=input_layout,
        filter_layout=filter_layout,
    )


# -- gradients ------------------------------------------------------------------
#
# conv2d's input gradient is convTranspose2d of the cotangent with the same
# filter (an oihw conv2d filter read as an iohw convTranspose2d one), and
# convTranspose2d's is conv2d of the cotangent: each is the other's adjoint.
# Filter gradients are one conv2d between the (conv2d) input and the
# (conv2d) output cotangent with their roles swapped: the input's channels
# within a group become the batch, the batch becomes the channels, strides
# and dilations trade places, and the groups stay groups.

# A conv2d filter layout read as the convTranspose2d filter layout of its adjoint, and back
# (conv2d o/i are convTranspose2d i/o); conv2d's ohwi has no convTranspose2d twin.
_CONV_TO_TRANSPOSE_LAYOUT = {"oihw": "iohw", "hwio": "hwoi", "ihwo": "ohwi"}
_TRANSPOSE_TO_CONV_LAYOUT = {"iohw": "oihw", "hwoi": "hwio", "ohwi": "ihwo"}


def _spatial(operand, layout: str) -> tuple[int, int]:
    d = dims(operand.shape, layout)
    return d["h"], d["w"]


def _filter_grad(g, input, cotangent, layout, groups, padding, strides, dilations, kernel):
    """sum over n, y, x of input_padded[n, (g, c), y*s + i*d, x*s + j*d] * cotangent[n, (g, o), y, x]

    as an operand of shape [C/groups, O, kh, kw] (C input, O cotangent channels).
    """
    b = g.b
    if layout == "nchw":
        n, c, h, w = input.shape
        split = b.reshape(input, [n, groups, c // groups, h, w])
        order = [2, 1, 0, 3, 4]
    else:
        n, h, w, c = input.shape
        split = b.reshape(input, [n, h, w, groups, c // groups])
        order = [4, 3, 0, 1, 2]
    # [C/groups, groups * N, H, W]: the batch is the channel within a group.
    swapped = b.reshape(b.transpose(split, permutation=order), [c // groups, groups * n, h, w])
    if layout == "nchw":  # [N, O, oh, ow] -> oihw [O, N, oh, ow]
        filt, filter_layout = b.transpose(cotangent, permutation=[1, 0, 2, 3]), "oihw"
    else:  # [N, oh, ow, O] is already ihwo
        filt, filter_layout = cotangent, "ihwo"
    out_hw = _spatial(cotangent, layout)
    pads = []
    for axis, size in enumerate((h, w)):
        begin = padding[2 * axis]
        span = (out_hw[axis] - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1
        # Exactly the span the taps read (or less: the result is cut to the kernel size).
        pads += [begin, max(span - size - begin, 0)]
    result = b.conv2d(
        swapped,
        filt,
        padding=pads,
        strides=list(dilations),
        dilations=list(strides),
        groups=groups,
        filter_layout=filter_layout,
    )
    if tuple(result.shape[2:]) != tuple(kernel):
        result = b.slice(result, [0, 0, 0, 0], [result.shape[0], result.shape[1], *kernel])
    return result


def _to_filter_layout(g, grad, layout: str, letters: str):
    """``grad`` with axes named ``letters`` transposed to filter ``layout``."""
    permutation = [letters.index(ch) for ch in layout]
    return grad if permutation == [0, 1, 2, 3] else g.b.transpose(grad, permutation=permutation)


def _bias_grad(g, layout: str):
    return g.b.reduce_sum(g.dout, axes=[0, 2, 3] if layout == "nchw" else [0, 1, 2])


@gradient("conv2d")
def _conv2d_grad(g):
    x, w, bias = g.inputs
    a = g.attrs
    layout, filter_layout, groups = a["input_layout"], a["filter_layout"], a["groups"]
    dy = g.dout
    common = {"padding": list(a["padding"]), "strides": list(a["strides"]), "dilations": list(a["dilations"])}
    if filter_layout in _CONV_TO_TRANSPOSE_LAYOUT:
        wt, wt_layout = w, _CONV_TO_TRANSPOSE_LAYOUT[filter_layout]
    else:  # ohwi -> oihw, read as iohw
        wt, wt_layout = g.b.transpose(w, permutation=[0, 3, 1, 2]), "iohw"
    dx = g.b.conv_transpose2d(
        dy,
        wt,
        output_sizes=list(_spatial(x, layout)),
        groups=groups,
        input_layout=layout,
        filter_layout=wt_layout,
        **common,
    )
    f = dims(w.shape, filter_layout)
    dw = _filter_grad(g, x, dy, layout, groups, a["padding"], a["strides"], a["dilations"], (f["h"], f["w"]))
    dw = _to_filter_layout(g, dw, filter_layout, "iohw")  # [C/groups, O, kh, kw]
    return [dx, dw, None if bias is None else _bias_grad(g, layout)]


@gradient("convTranspose2d")
def _conv_transpose2d_grad(g):
    x, w, bias = g.inputs
    a = g.attrs
    layout, filter_layout, groups = a["input_layout"], a["filter_layout"], a["groups"]
    dy = g.dout
    dx = g.b.conv2d(
        dy,
        w,
        padding=list(a["padding"]),
        strides=list(a["strides"]),
        dilations=list(a["dilations"]),
        groups=groups,
        input_layout=layout,
        filter_layout=_TRANSPOSE_TO_CONV_LAYOUT[filter_layout],
    )
    if tuple(dx.shape) != tuple(x.shape):  # not expected: conv2d's output size inverts convTranspose2d's
        raise TypeError(f"convTranspose2d gradient: shape {list(dx.shape)} != input shape {list(x.shape)}")
    f = dims(w.shape, filter_layout)
    # The forward conv2d of the adjoint has input dy and output x: [O/groups, C, kh, kw] (o, i, h, w).
    dw = _filter_grad(g, dy, x, layout, groups, a["padding"], a["strides"], a["dilations"], (f["h"], f["w"]))
    dw = _to_filter_layout(g, dw, filter_layout, "oihw")
    return [dx, dw, None if bias is None else _bias_grad(g, layout)]
