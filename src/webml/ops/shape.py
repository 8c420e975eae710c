"""Shape and data-movement operators: cast, concat, expand, pad, reshape, reverse,
slice, split, tile, transpose, triangular, where (spec §7.9).

Each rule follows its operator's method steps in order.  Output shapes also
pass :func:`~webml.ops.checks.check_shape` (every dimension and the element
count a valid dimension, the rank at most ``MAX_RANK``), the spec's *check
dimensions*, which the WPT "output tensor byte length exceeds limit" tests rely on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..ir import OperandDesc, Value
from .checks import (
    ALL_TYPES,
    ANY,
    axes_in_rank,
    broadcast_bidirectional,
    broadcast_unidirectional,
    check_shape,
    limit,
    long,
    number,
    one_of,
    same_type,
    unsigned_long,
    unsigned_longs,
    valid_dimension,
)
from .registry import MAX_RANK, Call, gradient, op, sequence

# A "valid tensor count" (spec): concat's inputs and split's outputs.
MAX_TENSOR_COUNT = 8192

PADDING_MODES = ("constant", "edge", "reflection")

# cast and reshape also take the 4-bit types (Chromium and the WPT
# quantization tests, whose harness casts int4/uint4 data to supported types).
ALL = limit(ALL_TYPES)
RANK1 = limit(ANY.data_types, 1)


def _valid_dimensions(call: Call, values: Sequence[int], name: str) -> None:
    for i, d in enumerate(values):
        if not valid_dimension(d):
            raise call.error(f"{name}[{i}] = {d} is not a valid dimension (an integer in [1, 2^31-1])")


def _moved(call: Call, input: Value, shape: Sequence[int], **attrs: Any) -> Value:
    """The node of an operator moving ``input``'s elements: its output has their data type, in ``shape``."""
    return call.emit({"input": input}, OperandDesc(input.data_type, tuple(shape)), **attrs)


def _lengths_are_rank(call: Call, input: Value, **sequences: Sequence[int]) -> None:
    """Each of ``sequences`` (by name) must hold one value per dimension of ``input``."""
    if all(len(values) == input.rank for values in sequences.values()):
        return
    lengths = " and ".join(f"{name} ({len(values)})" for name, values in sequences.items())
    plural, both = ("s", "both ") if len(sequences) > 1 else ("", "")
    raise call.error(f"the length{plural} of {lengths} must {both}equal the input rank {input.rank}")


# -- cast -------------------------------------------------------------------------


@op("cast", family="shape", input=ALL, output=ALL)
def cast(call: Call, input: Value, data_type: str) -> Value:
    """Cast each element to ``data_type`` (truncating floats toward zero for integer targets)."""
    one_of(call, data_type, ALL_TYPES, "data_type")
    return call.emit({"input": input}, OperandDesc(data_type, input.shape), data_type=data_type)


# -- concat -----------------------------------------------------------------------


@op("concat", family="shape", inputs=sequence(RANK1), output=RANK1)
def concat(call: Call, inputs: Sequence[Value], axis: int) -> Value:
    """Concatenate ``inputs`` (a list of operands) along ``axis``."""
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(v, Value) for v in inputs):
        raise call.error(f"inputs must be a sequence of MLOperand, got {inputs!r}")
    axis = unsigned_long(call, axis, "axis")
    if not 0 < len(inputs) <= MAX_TENSOR_COUNT:
        raise call.error(f"the number of inputs ({len(inputs)}) must be in [1, {MAX_TENSOR_COUNT}]")
    first = inputs[0]
    if axis >= first.rank:
        raise call.error(f"axis {axis} must be less than the inputs' rank {first.rank}")
    shape = list(first.shape)
    for index in range(1, len(inputs)):
        input = inputs[index]
        if input.data_type != first.data_type:
            raise call.error(f"inputs[{index}] data type {input.data_type} must match inputs[0]'s {first.data_type}")
        if input.rank != first.rank:
            raise call.error(f"inputs[{index}] rank {input.rank} must match inputs[0]'s rank {first.rank}")
        for dim in range(input.rank):
            if dim != axis and input.shape[dim] != first.shape[dim]:
                raise call.error(
                    f"inputs[{index}] shape {list(input.shape)} must match inputs[0]'s shape "
                    f"{list(first.shape)} except along axis {axis}"
                )
        shape[axis] += input.shape[axis]
    shape = check_shape(call, shape)
    return call.emit({"inputs": inputs}, OperandDesc(first.data_type, shape), axis=axis)


# -- expand, reshape, tile ----------------------------------------------------------


@op("expand", family="shape", input=ANY, output=ANY)
def expand(call: Call, input: Value, new_shape: Sequence[int]) -> Value:
    """Broadcast ``input`` (unidirectionally) to ``new_shape``."""
    new_shape = unsigned_longs(call, new_shape, "new_shape")
    shape = broadcast_unidirectional(input.shape, new_shape)
    if shape is None:
        raise call.error(
            f"input shape {list(input.shape)} is not unidirectionally broadcastable to new_shape {list(new_shape)}"
        )
    # The output's allowed ranks (any, up to MAX_RANK) and valid dimensions.
    shape = check_shape(call, shape)
    return _moved(call, input, shape, new_shape=shape)


@op("reshape", family="shape", input=ALL, output=ALL)
def reshape(call: Call, input: Value, new_shape: Sequence[int]) -> Value:
    """Give ``input``'s elements the shape ``new_shape`` (same element count)."""
    new_shape = unsigned_longs(call, new_shape, "new_shape")
    if len(new_shape) > MAX_RANK:
        raise call.error(f"the length of new_shape ({len(new_shape)}) exceeds the maximum rank {MAX_RANK}")
    _valid_dimensions(call, new_shape, "new_shape")
    count = math.prod(input.shape)
    if math.prod(new_shape) != count:
        raise call.error(
            f"new_shape {list(new_shape)} has {math.prod(new_shape)} elements, "
            f"input shape {list(input.shape)} has {count}"
        )
    return _moved(call, input, new_shape, new_shape=new_shape)


@op("tile", family="shape", input=ANY, output=ANY)
def tile(call: Call, input: Value, repetitions: Sequence[int]) -> Value:
    """Repeat ``input`` ``repetitions[d]`` times along each dimension d."""
    repetitions = unsigned_longs(call, repetitions, "repetitions")
    _lengths_are_rank(call, input, repetitions=repetitions)
    if 0 in repetitions:
        raise call.error(f"repetitions {list(repetitions)} must not contain 0")
    shape = check_shape(call, [d * r for d, r in zip(input.shape, repetitions)])
    return _moved(call, input, shape, repetitions=repetitions)


# -- pad --------------------------------------------------------------------------


# The spec allows any rank: a 0-D input takes empty paddings and is returned as
# it is (the 2025-03 WPT validation test "Throw if building pad for scalar
# input" and Chromium still refuse it; the refreshed conformance file pads one).
@op("pad", family="shape", input=ANY, output=ANY)
def pad(
    call: Call,
    input: Value,
    beginning_padding: Sequence[int],
    ending_padding: Sequence[int],
    *,
    mode: str = "constant",
    value: Any = 0,
) -> Value:
    """Pad each dimension with ``beginning_padding`` / ``ending_padding`` values."""
    beginning_padding = unsigned_longs(call, beginning_padding, "beginning_padding")
    ending_padding = unsigned_longs(call, ending_padding, "ending_padding")
    mode = one_of(call, mode, PADDING_MODES, "mode")
    value = number(call, value, "value")
    _lengths_are_rank(call, input, beginning_padding=beginning_padding, ending_padding=ending_padding)
    shape = list(input.shape)
    for index, size in enumerate(input.shape):
        # Reflection mirrors the inner values without the edge: at most size - 1 of them.
        if mode == "reflection":
            for name, padding in (("beginning_padding", beginning_padding), ("ending_padding", ending_padding)):
                if padding[index] >= size:
                    raise call.error(
                        f"{name}[{index}] = {padding[index]} must be less than the input size {size} "
                        f"of dimension {index} in reflection mode"
                    )
        shape[index] += beginning_padding[index] + ending_padding[index]
    shape = check_shape(call, shape)
    value = dtypes.cast_number(value, input.data_type)
    return _moved(
        call, input, shape, beginning_padding=beginning_padding, ending_padding=ending_padding, mode=mode, value=value
    )


# -- reverse, transpose -----------------------------------------------------------


@op("reverse", family="shape", input=ANY, output=ANY)
def reverse(call: Call, input: Value, *, axes: Sequence[int] | None = None) -> Value:
    """Reverse ``input`` along ``axes`` (all of them when absent, none when empty)."""
    if axes is None:
        axes = tuple(range(input.rank))
    else:
        axes = axes_in_rank(call, axes, input.rank, "axes")
    return _moved(call, input, input.shape, axes=axes)


@op("transpose", family="shape", input=ANY, output=ANY)
def transpose(call: Call, input: Value, *, permutation: Sequence[int] | None = None) -> Value:
    """Permute ``input``'s dimensions (reverse them by default)."""
    if permutation is None:
        permutation = tuple(reversed(range(input.rank)))
    else:
        permutation = unsigned_longs(call, permutation, "permutation")
        _lengths_are_rank(call, input, permutation=permutation)
        permutation = axes_in_rank(call, permutation, input.rank, "permutation")
    # The spec's steps copy input's descriptor; its prose, and WPT, permute the shape.
    shape = tuple(input.shape[p] for p in permutation)
    return _moved(call, input, shape, permutation=permutation)


# -- slice, split -----------------------------------------------------------------


@op("slice", family="shape", input=ANY, output=ANY)
def slice(
    call: Call,
    input: Value,
    starts: Sequence[int],
    sizes: Sequence[int],
    *,
    strides: Sequence[int] | None = None,
) -> Value:
    """Take ``sizes[d]`` elements from ``starts[d]`` every ``strides[d]`` along each dimension d."""
    starts = unsigned_longs(call, starts, "starts")
    sizes = unsigned_longs(call, sizes, "sizes")
    if strides is not None:
        strides = unsigned_longs(call, strides, "strides")
    if 0 in sizes:
        raise call.error(f"sizes {list(sizes)} must not contain 0")
    _lengths_are_rank(call, input, starts=starts, sizes=sizes)
    if strides is None:
        strides = (1,) * input.rank
    else:
        _lengths_are_rank(call, input, strides=strides)
    shape = []
    for index, input_size in enumerate(input.shape):
        start, size, stride = starts[index], sizes[index], strides[index]
        if stride < 1:
            raise call.error(f"strides[{index}] = {stride} must be at least 1")
        if start > input_size:
            raise call.error(f"starts[{index}] = {start} exceeds the input size {input_size}")
        if start + size > input_size:
            raise call.error(f"starts[{index}] + sizes[{index}] = {start + size} exceeds the input size {input_size}")
        shape.append(-(-size // stride))  # ceil(size / stride)
    return _moved(call, input, shape, starts=starts, sizes=sizes, strides=strides)


@op("split", family="shape", input=RANK1, outputs=RANK1)
def split(call: Call, input: Value, splits: int | Sequence[int], *, axis: int = 0) -> list[Value]:
    """Split ``input`` along ``axis`` into ``splits`` equal parts, or parts of the listed sizes."""
    axis = unsigned_long(call, axis, "axis")
    if axis >= input.rank:
        raise call.error(f"axis {axis} must be less than the input rank {input.rank}")
    dim = input.shape[axis]
    if not isinstance(splits, (int, float, np.integer)):
        sizes = unsigned_longs(call, splits, "splits")
        if not 0 < len(sizes) <= MAX_TENSOR_COUNT:
            raise call.error(f"the length of splits ({len(sizes)}) must be in [1, {MAX_TENSOR_COUNT}]")
        if 0 in sizes:
            raise call.error(f"splits {list(sizes)} must not contain 0")
        if sum(sizes) != dim:
            raise call.error(
                f"the sum of splits {list(sizes)} ({sum(sizes)}) must equal the input size {dim} along axis {axis}"
            )
    else:
        count = unsigned_long(call, splits, "splits")
        if not 0 < count <= MAX_TENSOR_COUNT:
            raise call.error(f"splits ({count}) must be in [1, {MAX_TENSOR_COUNT}]")
        if dim % count:
            raise call.error(f"splits ({count}) must evenly divide the input size {dim} along axis {axis}")
        sizes = (dim // count,) * count
    descs = [OperandDesc(input.data_type, (*input.shape[:axis], size, *input.shape[axis + 1 :])) for size in sizes]
    return call.emit({"input": input}, descs, splits=sizes, axis=axis)


# -- triangular, where ------------------------------------------------------------


@op("triangular", family="shape", input=limit(ANY.data_types, 2), output=limit(ANY.data_types, 2))
def triangular(call: Call, input: Value, *, upper: bool = True, diagonal: int = 0) -> Value:
    """Keep the upper (or lower) triangular part of the last two dimensions, shifted by ``diagonal``."""
    if not isinstance(upper, (bool, np.bool_)):
        raise call.error(f"upper must be a boolean, got {upper!r}")
    diagonal = long(call, diagonal, "diagonal")
    return _moved(call, input, input.shape, upper=bool(upper), diagonal=diagonal)


@op("where", family="shape", condition=limit(("uint8",)), trueValue=ANY, falseValue=ANY, output=ANY)
def where(call: Call, condition: Value, true_value: Value, false_value: Value) -> Value:
    """Select true_value where condition is non-zero, else false_value (broadcast)."""
    same_type(call, true_value, false_value, names=("true_value", "false_value"))
    shape = broadcast_bidirectional(true_value.shape, false_value.shape)
    if shape is None:
        raise call.error(
            f"the shapes of true_value {list(true_value.shape)} and false_value "
            f"{list(false_value.shape)} are not broadcastable"
        )
    values_shape = shape
    shape = broadcast_bidirectional(condition.shape, values_shape)
    if shape is None:
        raise call.error(f"the condition shape {list(condition.shape)} is not broadcastable with {list(values_shape)}")
    shape = check_shape(call, shape)
    return call.emit(
        {"condition": condition, "true_value": true_value, "false_value": false_value},
        OperandDesc(true_value.data_type, shape),
    )


# -- gradients ------------------------------------------------------------------


def _take(g, x, axis: int, start: int, size: int):
    """The ``size`` elements of ``x`` from ``start`` along ``axis``."""
    shape = x.shape
    starts = [0] * len(shape)
    sizes = list(shape)
    starts[axis], sizes[axis] = start, size
    return g.b.slice(x, starts, sizes)


def _zero_pad(g, x, axis: int, before: int, after: int):
    """``x`` with ``before``/``after`` zeros along ``axis``."""
    if before == 0 and after == 0:
        return x
    begin = [0] * len(x.shape)
    end = [0] * len(x.shape)
    begin[axis], end[axis] = before, after
    return g.b.pad(x, begin, end)


def _around(shape: Sequence[int], axis: int) -> tuple[int, int]:
    """The element counts before and after ``axis`` (to view a tensor as [P, n, A])."""
    return math.prod(shape[:axis]), math.prod(shape[axis + 1 :])


def _with(shape: Sequence[int], axis: int, size: int) -> list[int]:
    shape = list(shape)
    shape[axis] = size
    return shape


@gradient("cast")
def _cast_grad(g, input, **_):
    return {}  # cast stops gradients


@gradient("concat")
def _concat_grad(g, inputs, *, axis):
    grads, offset = [], 0
    for x in inputs:
        size = x.shape[axis]
        grads.append(_take(g, g.dout, axis, offset, size))
        offset += size
    return {"inputs": grads}


@gradient("expand")
def _expand_grad(g, input, **_):
    return {"input": g.dout}  # autodiff sums it back to the input's shape


@gradient("reshape")
def _reshape_grad(g, input, **_):
    return {"input": g.b.reshape(g.dout, input.shape)}


@gradient("tile")
def _tile_grad(g, input, *, repetitions):
    # Output index k * n + i along an axis of size n comes from input index i: sum over the k.
    d = g.dout
    for axis, count in enumerate(repetitions):
        if count == 1:
            continue
        shape = d.shape
        n = shape[axis] // count
        before, after = _around(shape, axis)
        d = g.b.reduce_sum(g.b.reshape(d, [before, count, n, after]), axes=[1], keep_dimensions=False)
        d = g.b.reshape(d, _with(shape, axis, n))
    return {"input": d}


@gradient("pad")
def _pad_grad(g, input, *, beginning_padding, ending_padding, mode, **_):
    d = g.dout
    if mode == "constant":
        return {"input": g.b.slice(d, list(beginning_padding), input.shape)}
    # edge and reflection pad each axis in turn; undo them one axis at a time, adding each padded
    # element's cotangent to the input element it copies.
    for axis, (n, before, after) in enumerate(zip(input.shape, beginning_padding, ending_padding)):
        if before == 0 and after == 0:
            continue
        parts = [_take(g, d, axis, before, n)]
        if before:
            head = _take(g, d, axis, 0, before)
            if mode == "edge":  # all copies of input element 0
                parts.append(_zero_pad(g, g.b.reduce_sum(head, axes=[axis], keep_dimensions=True), axis, 0, n - 1))
            else:  # output j < before copies input before - j: input elements 1 .. before, reversed
                parts.append(_zero_pad(g, g.b.reverse(head, axes=[axis]), axis, 1, n - 1 - before))
        if after:
            tail = _take(g, d, axis, before + n, after)
            if mode == "edge":  # all copies of input element n - 1
                parts.append(_zero_pad(g, g.b.reduce_sum(tail, axes=[axis], keep_dimensions=True), axis, n - 1, 0))
            else:  # output before + n + k copies input n - 2 - k: input elements n - 1 - after .. n - 2, reversed
                parts.append(_zero_pad(g, g.b.reverse(tail, axes=[axis]), axis, n - 1 - after, 1))
        d = parts[0]
        for part in parts[1:]:
            d = g.b.add(d, part)
    return {"input": d}


@gradient("reverse")
def _reverse_grad(g, input, *, axes):
    return {"input": g.b.reverse(g.dout, axes=list(axes))}


@gradient("transpose")
def _transpose_grad(g, input, *, permutation):
    inverse = [0] * len(permutation)
    for i, p in enumerate(permutation):
        inverse[p] = i
    return {"input": g.b.transpose(g.dout, permutation=inverse)}


@gradient("slice")
def _slice_grad(g, input, *, starts, strides, **_):
    # Place the cotangent at the sliced positions (start + i * stride) of zeros shaped like the input.
    d = g.dout
    for axis, stride in enumerate(strides):
        shape = d.shape
        m = shape[axis]
        if stride == 1 or m == 1:
            continue
        # [P, m, A] -> [P, m, stride, A] with zeros after each element -> [P, (m - 1) * stride + 1, A]
        before, after = _around(shape, axis)
        t = g.b.pad(g.b.reshape(d, [before, m, 1, after]), [0, 0, 0, 0], [0, 0, stride - 1, 0])
        span = (m - 1) * stride + 1
        t = g.b.slice(g.b.reshape(t, [before, m * stride, after]), [0, 0, 0], [before, span, after])
        d = g.b.reshape(t, _with(shape, axis, span))
    begin = list(starts)
    end = [n - s - span for n, s, span in zip(input.shape, begin, d.shape)]
    if any(begin) or any(end):
        d = g.b.pad(d, begin, end)
    return {"input": d}


@gradient("split")
def _split_grad(g, input, *, axis, **_):
    parts = [d if d is not None else g.zeros_like(o) for d, o in zip(g.douts, g.outputs)]
    return {"input": parts[0] if len(parts) == 1 else g.b.concat(parts, axis)}


@gradient("triangular")
def _triangular_grad(g, input, *, upper, diagonal):
    # A mask: its own adjoint.
    return {"input": g.b.triangular(g.dout, upper=upper, diagonal=diagonal)}


@gradient("where")
def _where_grad(g, condition, true_value, false_value):
    # Of the broadcast output's shape: autodiff sums each back to its operand's shape.
    zero = g.scalar(0, g.dout)
    return {"true_value": g.b.where(condition, g.dout, zero), "false_value": g.b.where(condition, zero, g.dout)}
