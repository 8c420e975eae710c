"""Indexing operators: gather, gatherElements, gatherND, scatterElements, scatterND (spec §7.9).

Index values are data, unknown while the graph is built, so these rules only
check descriptors; the backends clamp out-of-range indices and resolve negative
ones at run time (the spec's notes on each operator), as :func:`resolve_indices` says.
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


def resolve_indices(indices: np.ndarray, size: int | np.ndarray) -> np.ndarray:
    """Clamp indices to [-size, size-1], then map negatives to size + index.

    ``size`` is an int or an array broadcasting against ``indices`` (one size per coordinate).
    """
    clamped = np.clip(indices, -np.asarray(size), np.asarray(size) - 1)
    return np.where(clamped < 0, clamped + size, clamped)


def coordinate_sizes(input_shape: Sequence[int], indices_shape: Sequence[int]) -> tuple[int, ...]:
    """The sizes of the input axes that gatherND/scatterND's [..., k] index coordinates address."""
    return tuple(input_shape[: indices_shape[-1]])


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


def _scatter(call: Call, input: Value, indices: Value, updates: Value, **attrs: int) -> Value:
    """The node of a checked scatter: the output is ``input`` with ``updates`` written at ``indices``."""
    operands = {"input": input, "indices": indices, "updates": updates}
    return call.emit(operands, OperandDesc(input.data_type, input.shape), **attrs)


@op("scatterElements", family="indexing", input=INPUT, indices=INDICES, updates=limit(SPEC_TYPES, 1), output=OUTPUT)
def scatter_elements(call: Call, input: Value, indices: Value, updates: Value, *, axis: int = 0) -> Value:
    same_type(call, input, updates, names=("input", "updates"))
    _same_rank(call, input, indices, "indices")
    _same_rank(call, input, updates, "updates")
    axis = axis_in_rank(call, axis, input.rank)
    _elements_shape(call, input, indices, axis)
    if updates.shape != indices.shape:
        raise call.error(f"updates shape {list(updates.shape)} must equal indices shape {list(indices.shape)}")
    return _scatter(call, input, indices, updates, axis=axis)


@op("scatterND", family="indexing", input=INPUT, indices=INDICES, updates=limit(SPEC_TYPES, 0), output=OUTPUT)
def scatter_nd(call: Call, input: Value, indices: Value, updates: Value) -> Value:
    same_type(call, input, updates, names=("input", "updates"))
    expected = _nd_slice_shape(call, input, indices)
    if updates.shape != expected:
        raise call.error(
            f"updates shape {list(updates.shape)} must be indices.shape[:-1] + "
            f"input.shape[indices.shape[-1]:] = {list(expected)}"
        )
    return _scatter(call, input, indices, updates)


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
def _gather_grad(g, input, indices, *, axis):
    n = input.shape[axis]
    count = math.prod(indices.shape)
    positions = g.b.reshape(g.b.gather(_iota(g, n), indices, axis=0), [1, count])
    before, after = _around(input.shape, axis)
    d = g.b.reshape(g.dout, [before, count, after])
    dx = g.b.matmul(_one_hot(g, positions, n, input), d)  # [n, K] @ [P, K, A] -> [P, n, A]
    return {"input": g.b.reshape(dx, input.shape)}


@gradient("gatherElements")
def _gather_elements_grad(g, input, indices, *, axis):
    n, m = input.shape[axis], indices.shape[axis]
    before, after = _around(input.shape, axis)
    grid = g.b.expand(_iota(g, n, [1, n, 1]), [before, n, after])
    positions = g.b.gather_elements(grid, g.b.reshape(indices, [before, m, after]), axis=1)
    # one_hot[p, i, j, a] = (positions[p, i, a] == j)
    hot = g.b.equal(g.b.reshape(positions, [before, m, 1, after]), _iota(g, n, [1, 1, n, 1]))
    d = g.b.mul(g.b.cast(hot, input.data_type), g.b.reshape(g.dout, [before, m, 1, after]))
    dx = g.b.reduce_sum(d, axes=[1], keep_dimensions=False)
    return {"input": g.b.reshape(dx, input.shape)}


@gradient("gatherND")
def _gather_nd_grad(g, input, indices):
    q = indices.shape[-1]
    n = math.prod(input.shape[:q])
    count = math.prod(indices.shape[:-1])
    positions = g.b.gather_nd(_iota(g, n, input.shape[:q]), indices)  # the flat index of each slice read
    positions = g.b.reshape(positions, [1, count])
    d = g.b.reshape(g.dout, [count, math.prod(input.shape[q:])])
    dx = g.b.matmul(_one_hot(g, positions, n, input), d)  # [N, K] @ [K, A]
    return {"input": g.b.reshape(dx, input.shape)}


def _scatter_grads(g, input, updates, ids, scatter, gather):
    """The cotangents of a scatter's input and updates.

    The input's is the output's with the scattered positions zeroed.  An update's is the
    output's at its position if it is the one the position kept, among repeated indices:
    ``ids`` (int32, shaped like updates) tell apart the updates that can land on the same
    position; scattering them into zeros and reading them back shows which one the backend kept.
    """
    dx = scatter(g.dout, g.zeros_like(updates))
    kept = scatter(g.b.expand(g.b.constant("int32", 0), input.shape), ids)
    won = g.b.equal(gather(kept), ids)
    du = g.b.where(won, gather(g.dout), g.scalar(0, updates))
    return {"input": dx, "updates": du}


@gradient("scatterElements")
def _scatter_elements_grad(g, input, indices, updates, *, axis):
    # Updates that can collide differ only along axis.
    m = updates.shape[axis]
    ids = g.b.expand(_iota(g, m, [m if i == axis else 1 for i in range(len(updates.shape))]), updates.shape)
    return _scatter_grads(
        g,
        input,
        updates,
        ids,
        lambda base, values: g.b.scatter_elements(base, indices, values, axis=axis),
        lambda t: g.b.gather_elements(t, indices, axis=axis),
    )


@gradient("scatterND")
def _scatter_nd_grad(g, input, indices, updates):
    batch = indices.shape[:-1]
    count = math.prod(batch)
    ids = _iota(g, count, list(batch) + [1] * (len(updates.shape) - len(batch)))
    ids = g.b.expand(ids, updates.shape) if updates.shape else ids
    return _scatter_grads(
        g,
        input,
        updates,
        ids,
        lambda base, values: g.b.scatter_nd(base, indices, values),
        lambda t: g.b.gather_nd(t, indices),
    )
