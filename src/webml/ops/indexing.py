"""Indexing operators: gather, gatherElements, gatherND, scatterElements, scatterND (spec §7.9).

Index values are data, unknown while the graph is built, so these rules only
check descriptors; the kernels clamp out-of-range indices and resolve negative
ones at run time (the spec's notes on each operator).
"""

from __future__ import annotations

from ..ir import OperandDesc, Value
from .checks import SPEC_TYPES, axis_in_rank, check_shape, limit, same_type
from .registry import Call, op

# The spec's tables: input any type of rank >= 1, indices int32/uint32/int64.
INDEX_TYPES = ("int32", "uint32", "int64")
INPUT = limit(SPEC_TYPES, 1)
OUTPUT = limit(SPEC_TYPES, 1)
# "Same rank as input" (>= 1) is checked in the rules; the limit gives the range.
INDICES = limit(INDEX_TYPES, 1)


def _same_rank(call: Call, input: Value, other: Value, name: str) -> None:
    if other.rank != input.rank:
        raise call.error(f"{name} rank {other.rank} must equal input rank {input.rank}")


def _elements_shape(call: Call, input: Value, indices: Value, axis: int) -> None:
    """indices must have input's shape except along axis (gatherElements, scatterElements)."""
    expected = list(input.shape)
    expected[axis] = indices.shape[axis]
    if list(indices.shape) != expected:
        raise call.error(
            f"indices shape {list(indices.shape)} must equal input shape {list(input.shape)} "
            f"except along axis {axis}, i.e. {expected}"
        )


def _nd_slice_shape(call: Call, input: Value, indices: Value) -> tuple[int, ...]:
    """indices.shape[:-1] + input.shape[coordinateSize:] (gatherND output, scatterND updates)."""
    coordinate_size = indices.shape[-1]
    if coordinate_size > input.rank:
        raise call.error(f"indices shape[-1] ({coordinate_size}) must not exceed input rank {input.rank}")
    return tuple(indices.shape[:-1]) + tuple(input.shape[coordinate_size:])


@op("gather", family="indexing", input=INPUT, indices=limit(INDEX_TYPES, 0), output=OUTPUT)
def gather(call: Call, input: Value, indices: Value, *, axis: int = 0) -> Value:
    axis = axis_in_rank(call, axis, input.rank)
    # input.shape[:axis] + indices.shape + input.shape[axis+1:]
    shape = tuple(input.shape[:axis]) + tuple(indices.shape) + tuple(input.shape[axis + 1 :])
    shape = check_shape(call, shape)
    return call.emit([input, indices], OperandDesc(input.data_type, shape), axis=axis)


@op("gatherElements", family="indexing", input=INPUT, indices=INDICES, output=OUTPUT)
def gather_elements(call: Call, input: Value, indices: Value, *, axis: int = 0) -> Value:
    _same_rank(call, input, indices, "indices")
    axis = axis_in_rank(call, axis, input.rank)
    _elements_shape(call, input, indices, axis)
    # The output has indices' shape (the spec copies input's descriptor, but
    # its examples and WPT give indices' shape, which differs along axis).
    return call.emit([input, indices], OperandDesc(input.data_type, indices.shape), axis=axis)


@op("gatherND", family="indexing", input=INPUT, indices=INDICES, output=limit(SPEC_TYPES, 0))
def gather_nd(call: Call, input: Value, indices: Value) -> Value:
    shape = check_shape(call, _nd_slice_shape(call, input, indices))
    return call.emit([input, indices], OperandDesc(input.data_type, shape))


@op(
    "scatterElements",
    family="indexing",
    input=INPUT,
    indices=INDICES,
    updates=limit(SPEC_TYPES, 1),
    output=OUTPUT,
)
def scatter_elements(call: Call, input: Value, indices: Value, updates: Value, *, axis: int = 0) -> Value:
    same_type(call, input, updates, names=("input", "updates"))
    _same_rank(call, input, indices, "indices")
    _same_rank(call, input, updates, "updates")
    axis = axis_in_rank(call, axis, input.rank)
    _elements_shape(call, input, indices, axis)
    if updates.shape != indices.shape:
        raise call.error(f"updates shape {list(updates.shape)} must equal indices shape {list(indices.shape)}")
    return call.emit([input, indices, updates], OperandDesc(input.data_type, input.shape), axis=axis)


@op(
    "scatterND",
    family="indexing",
    input=INPUT,
    indices=INDICES,
    updates=limit(SPEC_TYPES, 0),
    output=OUTPUT,
)
def scatter_nd(call: Call, input: Value, indices: Value, updates: Value) -> Value:
    same_type(call, input, updates, names=("input", "updates"))
    expected = _nd_slice_shape(call, input, indices)
    if updates.shape != expected:
        raise call.error(
            f"updates shape {list(updates.shape)} must be indices.shape[:-1] + "
            f"input.shape[indices.shape[-1]:] = {list(expected)}"
        )
    return call.emit([input, indices, updates], OperandDesc(input.data_type, input.shape))
