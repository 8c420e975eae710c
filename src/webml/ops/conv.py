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
from typing import Any, NamedTuple

from ..ir import OperandDesc, Value
from .checks import FLOATS, check_shape, limit, list_option, nonzero, one_of, same_type, unsigned_long, valid_dimension
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


def spatial(shape: Sequence[int], layout: str) -> tuple[int, int]:
    """The (height, width) of a 4-D shape in ``layout`` (an input layout or a filter layout)."""
    d = dims(shape, layout)
    return d["h"], d["w"]


def layout_shape(layout: str, batches: int, channels: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The 4-D shape of these sizes in input ``layout`` ("nchw" or "nhwc")."""
    return (batches, channels, height, width) if layout == "nchw" else (batches, height, width, channels)


def permutation(source: str, target: str) -> tuple[int, ...]:
    """The transpose permutation taking axes named by ``source`` to the order ``target``.

    ``permutation("nhwc", "nchw") == (0, 3, 1, 2)``; the identity when the layouts are the same.
    """
    return tuple(source.index(axis) for axis in target)


IDENTITY = (0, 1, 2, 3)
# Permutations bringing each layout to the canonical one, which ONNX's Conv and
# ConvTranspose use as well: nchw for inputs, oihw for conv2d filters, iohw for
# convTranspose2d filters; FROM_NCHW takes an nchw result back to the input layout.
TO_NCHW = {layout: permutation(layout, "nchw") for layout in INPUT_LAYOUTS}
FROM_NCHW = {layout: permutation("nchw", layout) for layout in INPUT_LAYOUTS}
TO_OIHW = {layout: permutation(layout, "oihw") for layout in CONV2D_FILTER_LAYOUTS}
TO_IOHW = {layout: permutation(layout, "iohw") for layout in CONV_TRANSPOSE2D_FILTER_LAYOUTS}


def transposed(b, operand, order: Sequence[int]):
    """``operand`` transposed by ``order`` with builder ``b`` (``operand`` itself for the identity)."""
    return operand if tuple(order) == IDENTITY else b.transpose(operand, permutation=list(order))


def conv_output_size(input_size: int, filter_size: int, begin: int, end: int, stride: int, dilation: int) -> int:
    """The spec's *calculate conv output size*, floored (the conv2d steps floor it)."""
    effective_filter_size = (filter_size - 1) * dilation + 1
    # floor(a / stride + 1) == a // stride + 1 for integers, negative a included.
    return (input_size - effective_filter_size + begin + end) // stride + 1


def window_span(count: int, window: int, stride: int, dilation: int) -> int:
    """How many positions ``count`` windows of ``window`` taps cover, from the first tap of the first
    window to the last tap of the last (windows ``stride`` apart, taps ``dilation`` apart)."""
    return (count - 1) * stride + (window - 1) * dilation + 1


def conv_transpose_output_size(
    input_size: int, filter_size: int, begin: int, end: int, stride: int, dilation: int
) -> int:
    """The spec's *calculate convtranspose output size*."""
    return window_span(input_size, filter_size, stride, dilation) - begin - end


def fitted_end_padding(size: int, out: int, window: int, begin: int, stride: int, dilation: int) -> int:
    """The end padding of an axis of ``size`` after which its ``out`` windows span exactly the padded axis.

    0 where they end before the axis does: a floored output size may leave trailing input unread.
    """
    return max(window_span(out, window, stride, dilation) - begin - size, 0)


class _Geometry(NamedTuple):
    """The options both operators share, converted and checked; the node attributes besides groups."""

    padding: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    input_layout: str
    filter_layout: str


def _geometry(
    call: Call,
    input: Value,
    filter: Value,
    filter_layouts: Sequence[str],
    padding: Any,
    strides: Any,
    dilations: Any,
    input_layout: Any,
    filter_layout: Any,
) -> _Geometry:
    """Layouts, then padding (4 items), strides and dilations (2 non-zero items each), in the spec's order."""
    input_layout = one_of(call, input_layout, INPUT_LAYOUTS, "input_layout")
    filter_layout = one_of(call, filter_layout, filter_layouts, "filter_layout")
    same_type(call, input, filter, names=("input", "filter"))
    return _Geometry(
        list_option(call, padding, "padding", 4, (0, 0, 0, 0)),
        nonzero(call, list_option(call, strides, "strides", 2, (1, 1)), "strides"),
        nonzero(call, list_option(call, dilations, "dilations", 2, (1, 1)), "dilations"),
        input_layout,
        filter_layout,
    )


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


def _emit(call: Call, operands: dict[str, Value | None], geometry: _Geometry, groups: int, sizes) -> Value:
    """The node, its output laid out like the input; ``sizes`` are the output's (batches, channels, height,
    width), whose spatial sizes must be valid dimensions."""
    batches, channels, height, width = sizes
    for name, size in (("height", height), ("width", width)):
        if not valid_dimension(size):
            raise call.error(f"the output {name} {size} is not a valid dimension (it must be in [1, 2^31-1])")
    shape = check_shape(call, layout_shape(geometry.input_layout, batches, channels, height, width))
    return call.emit(
        operands,
        OperandDesc(operands["input"].data_type, shape),
        padding=geometry.padding,
        strides=geometry.strides,
        dilations=geometry.dilations,
        groups=groups,
        input_layout=geometry.input_layout,
        filter_layout=geometry.filter_layout,
    )


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
    o = _geometry(call, input, filter, CONV2D_FILTER_LAYOUTS, padding, strides, dilations, input_layout, filter_layout)
    groups = _groups(call, groups)

    x = dims(input.shape, o.input_layout)
    f = dims(filter.shape, o.filter_layout)
    input_channels, output_channels = x["c"], f["o"]
    if input_channels % groups != 0:
        raise call.error(f"input channels {input_channels} must be divisible by groups {groups}")
    if input_channels // groups != f["i"]:
        raise call.error(
            f"input channels / groups ({input_channels} / {groups} = {input_channels // groups}) must equal "
            f"the filter's input channels {f['i']} (filter shape {list(filter.shape)}, layout {o.filter_layout})"
        )
    if output_channels % groups != 0:
        raise call.error(f"output channels {output_channels} must be divisible by groups {groups}")
    _check_bias(call, input, bias, output_channels)

    height = conv_output_size(x["h"], f["h"], o.padding[0], o.padding[1], o.strides[0], o.dilations[0])
    width = conv_output_size(x["w"], f["w"], o.padding[2], o.padding[3], o.strides[1], o.dilations[1])
    operands = {"input": input, "filter": filter, "bias": bias}
    return _emit(call, operands, o, groups, (x["n"], output_channels, height, width))


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
    layouts = CONV_TRANSPOSE2D_FILTER_LAYOUTS
    o = _geometry(call, input, filter, layouts, padding, strides, dilations, input_layout, filter_layout)
    output_padding = list_option(call, output_padding, "output_padding", 2, (0, 0))
    if output_sizes is not None:
        output_sizes = list_option(call, output_sizes, "output_sizes", 2, ())
    elif output_padding[0] >= o.strides[0] or output_padding[1] >= o.strides[1]:
        # Only checked without output_sizes: output_sizes make output_padding unused.
        raise call.error(f"output_padding {list(output_padding)} must be smaller than strides {list(o.strides)}")
    groups = _groups(call, groups)

    x = dims(input.shape, o.input_layout)
    f = dims(filter.shape, o.filter_layout)
    input_channels = x["c"]
    if input_channels != f["i"]:
        raise call.error(
            f"input channels {input_channels} must equal the filter's input channels {f['i']} "
            f"(filter shape {list(filter.shape)}, layout {o.filter_layout})"
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
        conv_transpose_output_size(x["h"], f["h"], o.padding[0], o.padding[1], o.strides[0], o.dilations[0]),
        conv_transpose_output_size(x["w"], f["w"], o.padding[2], o.padding[3], o.strides[1], o.dilations[1]),
    )
    if output_sizes is not None:
        for i, name in enumerate(("height", "width")):
            if not calculated[i] <= output_sizes[i] < calculated[i] + o.strides[i]:
                raise call.error(
                    f"output_sizes[{i}] (output {name}) {output_sizes[i]} must be in "
                    f"[{calculated[i]}, {calculated[i] + o.strides[i]}) given the input, filter, padding, "
                    "strides and dilations"
                )
        height, width = output_sizes
    else:
        height, width = calculated[0] + output_padding[0], calculated[1] + output_padding[1]
    operands = {"input": input, "filter": filter, "bias": bias}
    return _emit(call, operands, o, groups, (x["n"], output_channels, height, width))
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


def _filter_grad(g, input, cotangent, layout, groups, padding, strides, dilations, kernel):
    """sum over n, y, x of input_padded[n, (g, c), y*s + i*d, x*s + j*d] * cotangent[n, (g, o), y, x]

    as an operand of shape [C/groups, O, kh, kw] (C input, O cotangent channels).
    """
    b = g.b
    n, c, h, w = (dims(input.shape, layout)[axis] for axis in "nchw")
    if layout == "nchw":
        split = b.reshape(input, [n, groups, c // groups, h, w])
        order = [2, 1, 0, 3, 4]
    else:
        split = b.reshape(input, [n, h, w, groups, c // groups])
        order = [4, 3, 0, 1, 2]
    # [C/groups, groups * N, H, W]: the batch is the channel within a group.
    swapped = b.reshape(b.transpose(split, permutation=order), [c // groups, groups * n, h, w])
    if layout == "nchw":  # [N, O, oh, ow] -> oihw [O, N, oh, ow]
        filt, filter_layout = b.transpose(cotangent, permutation=[1, 0, 2, 3]), "oihw"
    else:  # [N, oh, ow, O] is already ihwo
        filt, filter_layout = cotangent, "ihwo"
    out_hw = spatial(cotangent.shape, layout)
    pads = []
    for axis, size in enumerate((h, w)):
        begin = padding[2 * axis]
        # Exactly the span the taps read (or less: the result is cut to the kernel size).
        pads += [begin, fitted_end_padding(size, out_hw[axis], kernel[axis], begin, strides[axis], dilations[axis])]
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


def _with_bias_grad(g, grads: dict, bias, layout: str) -> dict:
    """``grads`` and, where the node has a bias, its cotangent: dout summed over all but the channels."""
    if bias is not None:
        grads["bias"] = g.b.reduce_sum(g.dout, axes=[0, 2, 3] if layout == "nchw" else [0, 1, 2])
    return grads


@gradient("conv2d")
def _conv2d_grad(g, input, filter, bias=None, *, padding, strides, dilations, groups, input_layout, filter_layout):
    dy = g.dout
    common = {"padding": list(padding), "strides": list(strides), "dilations": list(dilations)}
    if filter_layout in _CONV_TO_TRANSPOSE_LAYOUT:
        wt, wt_layout = filter, _CONV_TO_TRANSPOSE_LAYOUT[filter_layout]
    else:  # ohwi -> oihw, read as iohw
        wt, wt_layout = transposed(g.b, filter, TO_OIHW[filter_layout]), "iohw"
    dx = g.b.conv_transpose2d(
        dy,
        wt,
        output_sizes=list(spatial(input.shape, input_layout)),
        groups=groups,
        input_layout=input_layout,
        filter_layout=wt_layout,
        **common,
    )
    kernel = spatial(filter.shape, filter_layout)
    dw = _filter_grad(g, input, dy, input_layout, groups, padding, strides, dilations, kernel)
    dw = transposed(g.b, dw, permutation("iohw", filter_layout))  # from [C/groups, O, kh, kw]
    return _with_bias_grad(g, {"input": dx, "filter": dw}, bias, input_layout)


@gradient("convTranspose2d")
def _conv_transpose2d_grad(
    g, input, filter, bias=None, *, padding, strides, dilations, groups, input_layout, filter_layout
):
    dy = g.dout
    dx = g.b.conv2d(
        dy,
        filter,
        padding=list(padding),
        strides=list(strides),
        dilations=list(dilations),
        groups=groups,
        input_layout=input_layout,
        filter_layout=_TRANSPOSE_TO_CONV_LAYOUT[filter_layout],
    )
    if tuple(dx.shape) != tuple(input.shape):  # not expected: conv2d's output size inverts convTranspose2d's
        raise TypeError(f"convTranspose2d gradient: shape {list(dx.shape)} != input shape {list(input.shape)}")
    kernel = spatial(filter.shape, filter_layout)
    # The forward conv2d of the adjoint has input dy and output x: [O/groups, C, kh, kw] (o, i, h, w).
    dw = _filter_grad(g, dy, input, input_layout, groups, padding, strides, dilations, kernel)
    dw = transposed(g.b, dw, permutation("oihw", filter_layout))
    return _with_bias_grad(g, {"input": dx, "filter": dw}, bias, input_layout)
