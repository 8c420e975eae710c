"""Reduction operators: reduceL1 ... reduceSumSquare, argMin/argMax, cumulativeSum (spec §7.9).

The ten reductions share one rule (the spec's *create reduction operation*)
and differ only in their allowed data types.  argMin/argMax reduce a single
axis with the same output-size algorithm.  Every rule normalises its options
into the node's attributes: ``axes`` is always an explicit tuple (all axes
when absent) so the kernels need no defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import dtypes
from ..ir import OperandDesc, Value
from .checks import FLOAT_INT32_UINT32, FLOATS, SPEC_TYPES, axes_in_rank, axis_in_rank, limit, one_of
from .registry import Call, gradient, op

# The spec's tensor-limits tables (allowed data types; any rank unless noted).
SUM_TYPES = (*FLOAT_INT32_UINT32, "int64", "uint64")  # L1, Sum, SumSquare, Product
MINMAX_TYPES = SPEC_TYPES  # Max, Min: any data type
ARG_OUTPUT_TYPES = ("int32", "int64")

REDUCTIONS = {
    "reduceL1": SUM_TYPES,
    "reduceL2": FLOATS,
    "reduceLogSum": FLOATS,
    "reduceLogSumExp": FLOATS,
    "reduceMax": MINMAX_TYPES,
    "reduceMean": FLOATS,
    "reduceMin": MINMAX_TYPES,
    "reduceProduct": SUM_TYPES,
    "reduceSum": SUM_TYPES,
    "reduceSumSquare": SUM_TYPES,
}


def reduction_output_sizes(
    call: Call, shape: Sequence[int], axes: Sequence[int] | None, keep_dimensions: bool
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The spec's *calculate reduction output sizes*: (resolved axes, output shape).

    Absent ``axes`` means every axis; an empty list reduces nothing.
    """
    rank = len(shape)
    axes = tuple(range(rank)) if axes is None else axes_in_rank(call, axes, rank)
    if keep_dimensions:
        out = tuple(1 if i in axes else d for i, d in enumerate(shape))
    else:
        out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return axes, out


def _reduction(name: str, types: Sequence[str]):
    """Register the rule of reduction ``name`` whose input/output allow ``types``."""

    @op(name, family="reduce", input=limit(types), output=limit(types))
    def rule(call: Call, input: Value, *, axes: Sequence[int] | None = None, keep_dimensions: bool = False) -> Value:
        # The input's data type is checked against ``types`` by the builder (the op's limits).
        # keepDimensions is a WebIDL boolean: any value converts by its truthiness.
        keep = bool(keep_dimensions)
        axes, shape = reduction_output_sizes(call, input.shape, axes, keep)
        return call.emit({"input": input}, OperandDesc(input.data_type, shape), axes=axes, keep_dimensions=keep)

    rule.__name__ = rule.__qualname__ = name
    rule.__doc__ = f"{name}: reduce ``input`` along ``axes`` (all axes by default)."
    return rule


for _name, _types in REDUCTIONS.items():
    _reduction(_name, _types)


# -- argMin / argMax -------------------------------------------------------------------


def _arg_min_max(call: Call, input: Value, axis: int, keep_dimensions: bool, output_data_type: str) -> Value:
    """The spec's *create an argMin/argMax operation* (input type and rank >= 1 checked by the builder)."""
    axis = axis_in_rank(call, axis, input.rank)
    one_of(call, output_data_type, ARG_OUTPUT_TYPES, "output_data_type")
    # Every index along axis must be representable in the output type.
    high = int(np.iinfo(dtypes.numpy_dtype(output_data_type)).max)
    if input.shape[axis] > high:
        raise call.error(
            f"input dimension {input.shape[axis]} along axis {axis} exceeds the maximum of "
            f"output_data_type {output_data_type} ({high})"
        )
    keep = bool(keep_dimensions)
    _, shape = reduction_output_sizes(call, input.shape, (axis,), keep)
    return call.emit({"input": input}, OperandDesc(output_data_type, shape), axis=axis, keep_dimensions=keep)


_ARG_INPUT = limit(SPEC_TYPES, 1)
_ARG_OUTPUT = limit(ARG_OUTPUT_TYPES)


@op("argMin", family="reduce", input=_ARG_INPUT, output=_ARG_OUTPUT)
def arg_min(
    call: Call, input: Value, axis: int, *, keep_dimensions: bool = False, output_data_type: str = "int32"
) -> Value:
    """The index of the minimum along ``axis`` (the first one on ties)."""
    return _arg_min_max(call, input, axis, keep_dimensions, output_data_type)


@op("argMax", family="reduce", input=_ARG_INPUT, output=_ARG_OUTPUT)
def arg_max(
    call: Call, input: Value, axis: int, *, keep_dimensions: bool = False, output_data_type: str = "int32"
) -> Value:
    """The index of the maximum along ``axis`` (the first one on ties)."""
    return _arg_min_max(call, input, axis, keep_dimensions, output_data_type)


# -- cumulativeSum ----------------------------------------------------------------------

_CUMULATIVE = limit(SUM_TYPES, 1)


@op("cumulativeSum", family="reduce", input=_CUMULATIVE, output=_CUMULATIVE)
def cumulative_sum(
    call: Call,
    input: Value,
    axis: int,
    *,
    exclusive: bool = False,
    reversed: bool = False,  # the spec's option name
) -> Value:
    """Prefix sums along ``axis``; ``exclusive`` leaves out the current value, ``reversed`` sums from the end."""
    axis = axis_in_rank(call, axis, input.rank)
    return call.emit(
        {"input": input},
        OperandDesc(input.data_type, input.shape),
        axis=axis,
        exclusive=bool(exclusive),
        reversed=bool(reversed),
    )


# -- gradients ------------------------------------------------------------------


def _spread(g, value, input, axes: Sequence[int]):
    """``value`` (shaped like the reduction's output) broadcast back over ``input``'s shape."""
    kept = [1 if i in axes else d for i, d in enumerate(input.shape)]
    return g.b.expand(g.b.reshape(value, kept), input.shape) if input.shape else value


@gradient("reduceSum")
def _reduce_sum_grad(g, input, *, axes, **_):
    return {"input": _spread(g, g.dout, input, axes)}


def _nonzero_or(g, x, zero_mask, value: float):
    """``x`` with ``value`` where ``zero_mask``."""
    return g.b.where(zero_mask, g.b.expand(g.scalar(value, x), x.shape) if x.shape else g.scalar(value, x), x)


@gradient("reduceMean")
def _reduce_mean_grad(g, input, *, axes, **_):
    count = int(np.prod([input.shape[a] for a in axes], dtype=np.int64))
    return {"input": _spread(g, g.b.div(g.dout, g.scalar(count, g.dout)), input, axes)}


# The integer reductions pass no cotangent (gradients flow through floats only).


@gradient("reduceSumSquare")
def _reduce_sum_square_grad(g, input, *, axes, **_):
    if input.data_type not in FLOATS:
        return {}
    return {"input": g.b.mul(g.b.mul(input, g.scalar(2, input)), _spread(g, g.dout, input, axes))}


@gradient("reduceL1")
def _reduce_l1_grad(g, input, *, axes, **_):
    if input.data_type not in FLOATS:
        return {}
    return {"input": g.b.mul(g.b.sign(input), _spread(g, g.dout, input, axes))}


@gradient("reduceL2")
def _reduce_l2_grad(g, input, *, axes, **_):
    # d |x| / dx = x / |x| (0 where the norm is 0).
    y = g.out
    zero = g.b.equal(y, g.scalar(0, y))
    per = g.b.where(zero, g.zeros_like(y), g.b.div(g.dout, _nonzero_or(g, y, zero, 1)))
    return {"input": g.b.mul(input, _spread(g, per, input, axes))}


@gradient("reduceLogSum")
def _reduce_log_sum_grad(g, input, *, axes, keep_dimensions):
    # d log(sum x) / dx = 1 / sum x
    total = g.b.reduce_sum(input, axes=list(axes), keep_dimensions=keep_dimensions)
    return {"input": _spread(g, g.b.div(g.dout, total), input, axes)}


@gradient("reduceLogSumExp")
def _reduce_log_sum_exp_grad(g, input, *, axes, **_):
    # softmax over the reduced axes: exp(x - y)
    softmax = g.b.exp(g.b.sub(input, _spread(g, g.out, input, axes)))
    return {"input": g.b.mul(softmax, _spread(g, g.dout, input, axes))}


def _extremum_grad(arg: str):
    """The rule of reduceMax (``arg`` "arg_max") or reduceMin ("arg_min"): the cotangent goes to the
    first (in row-major order of the reduced axes) element that is the maximum / minimum."""

    def rule(g, input, *, axes, **_):
        if input.data_type not in FLOATS:
            return {}
        b, x = g.b, input
        axes = sorted(axes)
        kept = [i for i in range(len(x.shape)) if i not in axes]
        if not axes:
            return {"input": g.dout}
        # [kept dims..., product of the reduced dims]
        order = kept + axes
        moved = x if order == sorted(order) else b.transpose(x, permutation=order)
        size = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        flat = b.reshape(moved, [*(x.shape[i] for i in kept), size])
        first = getattr(b, arg)(flat, len(kept), keep_dimensions=True)  # the first extremum
        positions = b.constant(
            {"dataType": first.data_type, "shape": [1] * len(kept) + [size]}, np.arange(size, dtype=np.int32)
        )
        dy = b.reshape(g.dout, [*(x.shape[i] for i in kept), 1])
        chosen = b.where(b.equal(first, positions), dy, g.scalar(0, dy))
        chosen = b.reshape(chosen, [x.shape[i] for i in order])
        if order != sorted(order):
            chosen = b.transpose(chosen, permutation=[order.index(i) for i in range(len(order))])
        return {"input": chosen}

    return rule


gradient("reduceMax")(_extremum_grad("arg_max"))
gradient("reduceMin")(_extremum_grad("arg_min"))


@gradient("reduceProduct")
def _reduce_product_grad(g, input, *, axes, **_):
    """The product of the other elements: y / x without zeros, else from the product of the non-zero elements."""
    if input.data_type not in FLOATS:
        return {}
    b, x = g.b, input
    axes = list(axes)
    zero = b.equal(x, g.scalar(0, x))
    nonzero = _nonzero_or(g, x, zero, 1)
    product = b.reduce_product(nonzero, axes=axes, keep_dimensions=True)  # of the non-zero elements
    zeros = b.reduce_sum(b.cast(zero, x.data_type), axes=axes, keep_dimensions=True)
    if x.shape:
        zeros, product = b.expand(zeros, x.shape), b.expand(product, x.shape)
    no_zero = b.equal(zeros, g.scalar(0, x))
    one_zero = b.logical_and(b.equal(zeros, g.scalar(1, x)), zero)
    others = b.where(no_zero, b.div(product, nonzero), b.where(one_zero, product, g.zeros_like(x)))
    return {"input": b.mul(others, _spread(g, g.dout, x, axes))}


@gradient("argMin", "argMax")
def _arg_grad(g, input, **_):
    return {}  # integer indices: no gradient flows


@gradient("cumulativeSum")
def _cumulative_sum_grad(g, input, *, axis, exclusive, reversed):
    # Each input element adds to the outputs after it (or before it, reversed): sum the cotangents the other way.
    if input.data_type not in FLOATS:
        return {}
    return {"input": g.b.cumulative_sum(g.dout, axis, exclusive=exclusive, reversed=not reversed)}
