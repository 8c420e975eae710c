"""Indexing operators: gather, gatherElements, gatherND, scatterElements, scatterND (spec §7.9).

Index values are data, unknown while the graph is built, so these rules only
check descriptors; the kernels clamp out-of-range indices and resolve negative
ones at run time (the spec's notes on each operator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..ir import OperandDesc, Value
from .checks import SPEC_TYPES, axis_in_rank, check_shape, limit, same_type
from .registry import Call, gradient, op

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
    return call.emit({"input": input, "indices": indices}, OperandDesc(input.data_type, shape), axis=axis)


@op("gatherElements", family="indexing", input=INPUT, indices=INDICES, output=OUTPUT)
def gather_elements(call: Call, input: Value, indices: Value, *, axis: int = 0) -> Value:
    _same_rank(call, input, indices, "indices")
    axis = axis_in_rank(call, axis, input.rank)
    _elements_shape(call, input, indices, axis)
    # The output has indices' shape (the spec copies input's descriptor, but
    # its examples and WPT give indices' shape, which differs along axis).
    return call.emit({"input": input, "indices": indices}, OperandDesc(input.data_type, indices.shape), axis=axis)


@op("gatherND", family="indexing", input=INPUT, indices=INDICES, output=limit(SPEC_TYPES, 0))
def gather_nd(call: Call, input: Value, indices: Value) -> Value:
    shape = check_shape(call, _nd_slice_shape(call, input, indices))
    return call.emit({"input": input, "indices": indices}, OperandDesc(input.data_type, shape))


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
    return call.emit(
        {"input": input, "indices": indices, "updates": updates}, OperandDesc(input.data_type, input.shape), axis=axis
    )


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
    return call.emit(
        {"input": input, "indices": indices, "updates": updates}, OperandDesc(input.data_type, input.shape)
    )


# -- gradients ------------------------------------------------------------------
#
# The gathers' gradients add the cotangent of each gathered element into the
# input element it was read from; repeated indices must accumulate, which the
# (overwriting) scatters cannot do.  So the rules build a one-hot matrix from
# the indices and contract it with the cotangent.  The index each element
# really read (negative ones resolved, out-of-range ones clamped, as the
# backend does it) is found by gathering from a tensor of positions with the
# same indices.


def _iota(g, n: int, shape: Sequence[int] | None = None):
    """An int32 constant holding 0 .. n-1, in ``shape`` (default [n])."""
    shape = [n] if shape is None else list(shape)
    return g.b.constant({"dataType": "int32", "shape": shape}, np.arange(n, dtype=np.int32).reshape(shape))


def _one_hot(g, positions, n: int, like):
    """[n, K] of ``like``'s type: 1 where row == positions[k] ([1, K] int32)."""
    return g.b.cast(g.b.equal(_iota(g, n, [n, 1]), positions), like.data_type)


def _around(shape: Sequence[int], axis: int) -> tuple[int, int]:
    return math.prod(shape[:axis]), math.prod(shape[axis + 1 :])


@gradient("gather")
def _gather_grad(g):
    x, indices = g.inputs
    axis = g.attrs["axis"]
    n = x.shape[axis]
    count = math.prod(indices.shape)
    positions = g.b.reshape(g.b.gather(_iota(g, n), indices, axis=0), [1, count])
    before, after = _around(x.shape, axis)
    d = g.b.reshape(g.dout, [before, count, after])
    dx = g.b.matmul(_one_hot(g, positions, n, x), d)  # [n, K] @ [P, K, A] -> [P, n, A]
    return [g.b.reshape(dx, x.shape), None]


@gradient("gatherElements")
def _gather_elements_grad(g):
    x, indices = g.inputs
    axis = g.attrs["axis"]
    n, m = x.shape[axis], indices.shape[axis]
    before, after = _around(x.shape, axis)
    grid = g.b.expand(_iota(g, n, [1, n, 1]), [before, n, after])
    positions = g.b.gather_elements(grid, g.b.reshape(indices, [before, m, after]), axis=1)
    # one_hot[p, i, j, a] = (positions[p, i, a] == j)
    hot = g.b.equal(g.b.reshape(positions, [before, m, 1, after]), _iota(g, n, [1, 1, n, 1]))
    d = g.b.mul(g.b.cast(hot, x.data_type), g.b.reshape(g.dout, [before, m, 1, after]))
    dx = g.b.reduce_sum(d, axes=[1], keep_dimensions=False)
    return [g.b.reshape(dx, x.shape), None]


@gradient("gatherND")
def _gather_nd_grad(g):
    x, indices = g.inputs
    q = indices.shape[-1]
    n = math.prod(x.shape[:q])
    count = math.prod(indices.shape[:-1])
    positions = g.b.gather_nd(_iota(g, n, x.shape[:q]), indices)  # the flat index of each slice read
    positions = g.b.reshape(positions, [1, count])
    d = g.b.reshape(g.dout, [count, math.prod(x.shape[q:])])
    dx = g.b.matmul(_one_hot(g, positions, n, x), d)  # [N, K] @ [K, A]
    return [g.b.reshape(dx, x.shape), None]


def _winners(g, ids, scatter, gather):
    """1 (uint8) where an update element is the one its position kept, among repeated indices.

    ``ids`` (int32, shaped like updates) tell apart the updates that can land on the same
    position; scattering them into zeros and reading them back shows which one the backend kept.
    """
    x = g.inputs[0]
    kept = scatter(g.b.expand(g.b.constant("int32", 0), x.shape), ids)
    return g.b.equal(gather(kept), ids)


@gradient("scatterElements")
def _scatter_elements_grad(g):
    _, indices, updates = g.inputs
    axis = g.attrs["axis"]
    dx = g.b.scatter_elements(g.dout, indices, g.zeros_like(updates), axis=axis)
    # Updates that can collide differ only along axis.
    m = updates.shape[axis]
    ids = g.b.expand(_iota(g, m, [m if i == axis else 1 for i in range(len(updates.shape))]), updates.shape)
    won = _winners(
        g,
        ids,
        lambda base, values: g.b.scatter_elements(base, indices, values, axis=axis),
        lambda t: g.b.gather_elements(t, indices, axis=axis),
    )
    du = g.b.where(won, g.b.gather_elements(g.dout, indices, axis=axis), g.scalar(0, updates))
    return [dx, None, du]


@gradient("scatterND")
def _scatter_nd_grad(g):
    _, indices, updates = g.inputs
    dx = g.b.scatter_nd(g.dout, indices, g.zeros_like(updates))
    batch = indices.shape[:-1]
    count = math.prod(batch)
    ids = _iota(g, count, list(batch) + [1] * (len(updates.shape) - len(batch)))
    ids = g.b.expand(ids, updates.shape) if updates.shape else ids
    won = _winners(
        g,
        ids,
        lambda base, values: g.b.scatter_nd(base, indices, values),
        lambda t: g.b.gather_nd(t, indices),
    )
    du = g.b.where(won, g.b.gather_nd(g.dout, indices), g.scalar(0, updates))
    return [dx, None, du]
