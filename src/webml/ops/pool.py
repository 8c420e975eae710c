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
from dataclasses import dataclass

import numpy as np

from ..dtypes import numpy_dtype
from ..ir import OperandDesc, Value
from .checks import FLOATS, LONG_MAX, SPEC_TYPES, check_shape, limit, list_option, nonzero, one_of, unsigned_longs
from .conv import FROM_NCHW, INPUT_LAYOUTS, TO_NCHW, dims, fitted_end_padding, layout_shape, spatial, transposed
from .registry import Call, gradient, op

LAYOUTS = INPUT_LAYOUTS  # nchw, nhwc
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
    input_height, input_width = spatial(input.shape, layout)
    window = list_option(call, window_dimensions, "window_dimensions", 2, (input_height, input_width))
    nonzero(call, window, "window_dimensions")
    padding = list_option(call, padding, "padding", 4, (0, 0, 0, 0))
    strides = nonzero(call, list_option(call, strides, "strides", 2, (1, 1)), "strides")
    if output_sizes is not None and len(output_sizes) != 2:
        raise call.error(f"output_sizes must have 2 values, got {len(output_sizes)}: {list(output_sizes)}")
    dilations = nonzero(call, list_option(call, dilations, "dilations", 2, (1, 1)), "dilations")

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
        if size > LONG_MAX:
            raise call.error(f"the output {name} {size} is not a valid dimension (it exceeds 2^31-1)")
    x = dims(input.shape, layout)
    shape = check_shape(call, layout_shape(layout, x["n"], x["c"], output_height, output_width))
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


@dataclass(frozen=True)
class PoolGeometry:
    """A pool node's windows along its two spatial axes (height, width), as the backends and the gradient
    rules read them.  ``end`` is the end padding fitted to the output (:func:`fitted_end_padding`): the
    output's windows span exactly the padded input, whichever rounding or output_sizes chose its size.
    """

    layout: str
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    window: tuple[int, int]
    begin: tuple[int, int]
    end: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]

    @classmethod
    def of(cls, input_shape, output_shape, *, window_dimensions, padding, strides, dilations, layout):
        """The geometry of a node with these input and output shapes and attributes."""
        in_hw, out_hw, begin = spatial(input_shape, layout), spatial(output_shape, layout), (padding[0], padding[2])
        end = tuple(map(fitted_end_padding, in_hw, out_hw, window_dimensions, begin, strides, dilations))
        return cls(layout, in_hw, out_hw, tuple(window_dimensions), begin, end, tuple(strides), tuple(dilations))

    def axis(self, d: int) -> tuple[int, int, int, int, int, int]:
        """(size, out, window, begin, stride, dilation) of spatial axis ``d``: :func:`window_taps`' arguments."""
        return self.in_hw[d], self.out_hw[d], self.window[d], self.begin[d], self.strides[d], self.dilations[d]

    def counts(self) -> np.ndarray:
        """[outH, outW]: the number of input elements in each window."""
        return np.outer(window_taps(*self.axis(0))[2], window_taps(*self.axis(1))[2])


# -- gradients ------------------------------------------------------------------
#
# Each window's cotangent goes back to the input elements of the window by a
# convTranspose2d with groups = channels: a ones filter spreads it over the
# window (average, l2), a one-hot filter per window tap puts it on one element
# (max).  The convTranspose2d crops the padding off again, so padding
# receives nothing.  The rules work in nchw, transposing nhwc in and out.


def _constant(g, values: np.ndarray, data_type: str):
    return g.b.constant({"dataType": data_type, "shape": list(values.shape)}, values.astype(numpy_dtype(data_type)))


def _scatter(g, geometry: PoolGeometry, cotangent, filter_values, groups: int):
    """convTranspose2d of nchw ``cotangent`` [N, C * K, oh, ow] with the [C * K, 1, kh, kw] filter, groups C."""
    return g.b.conv_transpose2d(
        cotangent,
        _constant(g, filter_values, cotangent.data_type),
        padding=[geometry.begin[0], geometry.end[0], geometry.begin[1], geometry.end[1]],
        strides=list(geometry.strides),
        dilations=list(geometry.dilations),
        groups=groups,
        output_sizes=list(geometry.in_hw),
    )


def _spread_windows(g, geometry: PoolGeometry, cotangent):
    """The nchw [N, C, oh, ow] ``cotangent`` of each window added to each input element of it, nchw."""
    channels = cotangent.shape[1]
    return _scatter(g, geometry, cotangent, np.ones((channels, 1, *geometry.window)), channels)


@gradient("averagePool2d")
def _average_pool2d_grad(g, input, *, layout, **attrs):
    geometry = PoolGeometry.of(input.shape, g.out.shape, layout=layout, **attrs)
    dy = transposed(g.b, g.dout, TO_NCHW[layout])
    count = _constant(g, np.maximum(geometry.counts(), 1), dy.data_type)  # at least 1: no 0 / 0
    return {"input": transposed(g.b, _spread_windows(g, geometry, g.b.div(dy, count)), FROM_NCHW[layout])}


@gradient("l2Pool2d")
def _l2_pool2d_grad(g, input, *, layout, **attrs):
    # d sqrt(sum x^2) / dx = x / y (0 where y is 0).
    geometry = PoolGeometry.of(input.shape, g.out.shape, layout=layout, **attrs)
    x, y, dy = (transposed(g.b, operand, TO_NCHW[layout]) for operand in (input, g.out, g.dout))
    zero = g.b.equal(y, g.scalar(0, y))
    safe = g.b.where(zero, g.b.expand(g.scalar(1, y), y.shape), y)
    per_window = g.b.where(zero, g.b.expand(g.scalar(0, y), y.shape), g.b.div(dy, safe))
    return {"input": transposed(g.b, g.b.mul(x, _spread_windows(g, geometry, per_window)), FROM_NCHW[layout])}


@gradient("maxPool2d")
def _max_pool2d_grad(g, input, *, layout, **attrs):
    """To the element that is the window's maximum (the first one in the window, row by row, on ties)."""
    if input.data_type not in FLOATS:
        return {}
    b = g.b
    geometry = PoolGeometry.of(input.shape, g.out.shape, layout=layout, **attrs)
    out_hw = geometry.out_hw
    x, dy = transposed(b, input, TO_NCHW[layout]), transposed(b, g.dout, TO_NCHW[layout])
    n, c = x.shape[:2]
    if any(geometry.begin) or any(geometry.end):
        x = b.pad(x, [0, 0, *geometry.begin], [0, 0, *geometry.end], value=float("-inf"))
    (kh, kw), strides, dilations = geometry.window, geometry.strides, geometry.dilations
    taps = []
    for i in range(kh):
        for j in range(kw):
            tap = b.slice(
                x,
                [0, 0, i * dilations[0], j * dilations[1]],
                [n, c, *((o - 1) * stride + 1 for o, stride in zip(out_hw, strides))],
                strides=[1, 1, *strides],
            )
            taps.append(b.reshape(tap, [n, c, 1, *out_hw]))
    k = kh * kw
    stacked = b.concat(taps, 2) if k > 1 else taps[0]  # [N, C, K, oh, ow]
    first = b.arg_max(stacked, 2, keep_dimensions=True)  # the first maximum
    index = b.constant({"dataType": first.data_type, "shape": [1, 1, k, 1, 1]}, np.arange(k, dtype=np.int32))
    chosen = b.where(b.equal(first, index), b.reshape(dy, [n, c, 1, *out_hw]), g.scalar(0, dy))
    one_hot = np.tile(np.eye(k).reshape(k, 1, kh, kw), (c, 1, 1, 1))  # [C * K, 1, kh, kw]
    scattered = _scatter(g, geometry, b.reshape(chosen, [n, c * k, *out_hw]), one_hot, c)
    return {"input": transposed(b, scattered, FROM_NCHW[layout])}
