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

import numpy as np

from ..dtypes import numpy_dtype
from ..ir import OperandDesc, Value
from .checks import FLOATS, SPEC_TYPES, check_shape, limit, one_of, unsigned_longs
from .registry import Call, gradient, op

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


def window_taps(size: int, out: int, window: int, pad_begin: int, stride: int, dilation: int):
    """Along one spatial axis: ``(start, first, count)``, arrays of ``out`` int64.

    Output ``o``'s window has taps at input indices ``start[o] + k * dilation`` for ``k`` in
    ``[0, window)``; those inside the input ``[0, size)`` are ``k`` in ``[first, first + count)``.
    Computed without listing the taps, so a huge window or padding costs nothing (padding is
    no part of any window: every backend pools only these taps).
    """
    start = np.arange(out, dtype=np.int64) * stride - pad_begin
    first = np.clip(-(start // dilation), 0, None)  # ceil(-start / dilation), at least 0
    last = np.minimum(window - 1, (size - 1 - start) // dilation)
    return start, first, np.maximum(last - first + 1, 0)


def window_tap_indices(size: int, out: int, window: int, pad_begin: int, stride: int, dilation: int):
    """Along one spatial axis: ``(indices, mask)``, both ``(out, L)``: the input indices of each output's
    taps inside the input (:func:`window_taps`), padded to a common length ``L`` where ``mask`` is False."""
    start, first, count = window_taps(size, out, window, pad_begin, stride, dilation)
    steps = np.arange(max(int(count.max(initial=0)), 1), dtype=np.int64)
    mask = steps[None, :] < count[:, None]
    return np.where(mask, start[:, None] + (first[:, None] + steps[None, :]) * dilation, 0), mask


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
        {"input": input},
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


# -- gradients ------------------------------------------------------------------
#
# Each window's cotangent goes back to the input elements of the window by a
# convTranspose2d with groups = channels: a ones filter spreads it over the
# window (average, l2), a one-hot filter per window tap puts it on one element
# (max).  The convTranspose2d crops the padding off again, so padding
# receives nothing.  The rules work in nchw, transposing nhwc in and out.


def _nchw(g, operand):
    return operand if g.attrs["layout"] == "nchw" else g.b.transpose(operand, permutation=[0, 3, 1, 2])


def _from_nchw(g, operand):
    return operand if g.attrs["layout"] == "nchw" else g.b.transpose(operand, permutation=[0, 2, 3, 1])


def _geometry(g):
    """The input's and the output's spatial sizes."""
    a = g.attrs
    shape = g.inputs[0].shape
    out = g.out.shape
    hw = shape[2:] if a["layout"] == "nchw" else shape[1:3]
    out_hw = out[2:] if a["layout"] == "nchw" else out[1:3]
    return tuple(hw), tuple(out_hw)


def _span_padding(g, hw, out_hw):
    """Begin and end padding of each spatial axis that makes the windows span exactly the padded input."""
    a = g.attrs
    begins, ends = [], []
    for axis in (0, 1):
        begin = a["padding"][2 * axis]
        span = (out_hw[axis] - 1) * a["strides"][axis] + (a["window_dimensions"][axis] - 1) * a["dilations"][axis] + 1
        begins.append(begin)
        ends.append(max(span - begin - hw[axis], 0))
    return begins, ends


def _scatter(g, cotangent, filter_values, hw, out_hw):
    """convTranspose2d of nchw ``cotangent`` [N, C * K, oh, ow] with the [C * K, 1, kh, kw] filter, groups C."""
    a = g.attrs
    data_type = cotangent.data_type
    filt = g.b.constant(
        {"dataType": data_type, "shape": list(filter_values.shape)}, filter_values.astype(numpy_dtype(data_type))
    )
    begins, ends = _span_padding(g, hw, out_hw)
    return g.b.conv_transpose2d(
        cotangent,
        filt,
        padding=[begins[0], ends[0], begins[1], ends[1]],
        strides=list(a["strides"]),
        dilations=list(a["dilations"]),
        groups=g.inputs[0].shape[1 if a["layout"] == "nchw" else 3],
        output_sizes=list(hw),
    )


def _spread_windows(g, cotangent):
    """The nchw [N, C, oh, ow] ``cotangent`` of each window added to each input element of it, nchw."""
    hw, out_hw = _geometry(g)
    channels = cotangent.shape[1]
    window = g.attrs["window_dimensions"]
    return _scatter(g, cotangent, np.ones((channels, 1, *window)), hw, out_hw)


def _window_counts(g):
    """The number of input (not padding) elements in each window, [oh, ow] (at least 1)."""
    a = g.attrs
    hw, out_hw = _geometry(g)
    counts = []
    for axis in (0, 1):
        o = np.arange(out_hw[axis])[:, None]
        i = np.arange(a["window_dimensions"][axis])[None, :]
        position = o * a["strides"][axis] + i * a["dilations"][axis] - a["padding"][2 * axis]
        counts.append(((position >= 0) & (position < hw[axis])).sum(axis=1))
    return np.maximum(np.outer(counts[0], counts[1]), 1)


@gradient("averagePool2d")
def _average_pool2d_grad(g):
    dy = _nchw(g, g.dout)
    counts = _window_counts(g)
    data_type = dy.data_type
    count = g.b.constant({"dataType": data_type, "shape": list(counts.shape)}, counts.astype(numpy_dtype(data_type)))
    return [_from_nchw(g, _spread_windows(g, g.b.div(dy, count)))]


@gradient("l2Pool2d")
def _l2_pool2d_grad(g):
    # d sqrt(sum x^2) / dx = x / y (0 where y is 0).
    x, y, dy = _nchw(g, g.inputs[0]), _nchw(g, g.out), _nchw(g, g.dout)
    zero = g.b.equal(y, g.scalar(0, y))
    safe = g.b.where(zero, g.b.expand(g.scalar(1, y), y.shape), y)
    per_window = g.b.where(zero, g.b.expand(g.scalar(0, y), y.shape), g.b.div(dy, safe))
    return [_from_nchw(g, g.b.mul(x, _spread_windows(g, per_window)))]


@gradient("maxPool2d")
def _max_pool2d_grad(g):
    """To the element that is the window's maximum (the first one in the window, row by row, on ties)."""
    x = g.inputs[0]
    if x.data_type not in FLOATS:
        return [None]
    a = g.attrs
    b = g.b
    hw, out_hw = _geometry(g)
    x, dy = _nchw(g, x), _nchw(g, g.dout)
    n, c = x.shape[:2]
    begins, ends = _span_padding(g, hw, out_hw)
    if any(begins) or any(ends):
        x = b.pad(x, [0, 0, *begins], [0, 0, *ends], value=float("-inf"))
    kh, kw = a["window_dimensions"]
    taps = []
    for i in range(kh):
        for j in range(kw):
            tap = b.slice(
                x,
                [0, 0, i * a["dilations"][0], j * a["dilations"][1]],
                [n, c, *((o - 1) * stride + 1 for o, stride in zip(out_hw, a["strides"]))],
                strides=[1, 1, *a["strides"]],
            )
            taps.append(b.reshape(tap, [n, c, 1, *out_hw]))
    k = kh * kw
    stacked = b.concat(taps, 2) if k > 1 else taps[0]  # [N, C, K, oh, ow]
    first = b.arg_max(stacked, 2, keep_dimensions=True)  # the first maximum
    index = b.constant({"dataType": first.data_type, "shape": [1, 1, k, 1, 1]}, np.arange(k, dtype=np.int32))
    chosen = b.where(b.equal(first, index), b.reshape(dy, [n, c, 1, *out_hw]), g.scalar(0, dy))
    one_hot = np.tile(np.eye(k).reshape(k, 1, kh, kw), (c, 1, 1, 1))  # [C * K, 1, kh, kw]
    return [_from_nchw(g, _scatter(g, b.reshape(chosen, [n, c * k, *out_hw]), one_hot, hw, out_hw))]
