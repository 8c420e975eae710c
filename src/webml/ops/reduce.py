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
from .checks import SPEC_TYPES, axes_in_rank, axis_in_rank, limit, one_of
from .registry import Call, gradient, op

# The spec's tensor-limits tables (allowed data types; any rank unless noted).
SUM_TYPES = ("float32", "float16", "int32", "uint32", "int64", "uint64")  # L1, Sum, SumSquare, Product
FLOAT_TYPES = ("float32", "float16")  # L2, LogSum, LogSumExp, Mean
MINMAX_TYPES = SPEC_TYPES  # Max, Min: any data type
ARG_OUTPUT_TYPES = ("int32", "int64")

REDUCTIONS = {
    "reduceL1": SUM_TYPES,
    "reduceL2": FLOAT_TYPES,
    "reduceLogSum": FLOAT_TYPES,
    "reduceLogSumExp": FLOAT_TYPES,
    "reduceMax": MINMAX_TYPES,
    "reduceMean": FLOAT_TYPES,
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


def _spread(g, value):
    """``value`` (shaped like the reduction's output) broadcast back over the input's shape."""
    x = g.inputs[0]
    kept = [1 if i in g.attrs["axes"] else d for i, d in enumerate(x.shape)]
    return g.b.expand(g.b.reshape(value, kept), x.shape) if x.shape else value


@gradient("reduceSum")
def _reduce_sum_grad(g):
    return [_spread(g, g.dout)]


def _float(g) -> bool:
    return g.inputs[0].data_type in FLOAT_TYPES


def _nonzero_or(g, x, zero_mask, value: float):
    """``x`` with ``value`` where ``zero_mask``."""
    return g.b.where(zero_mask, g.b.expand(g.scalar(value, x), x.shape) if x.shape else g.scalar(value, x), x)


@gradient("reduceMean")
def _reduce_mean_grad(g):
    x = g.inputs[0]
    count = int(np.prod([x.shape[a] for a in g.attrs["axes"]], dtype=np.int64))
    return [_spread(g, g.b.div(g.dout, g.scalar(count, g.dout)))]


@gradient("reduceSumSquare")
def _reduce_sum_square_grad(g):
    if not _float(g):
        return [None]
    x = g.inputs[0]
    return [g.b.mul(g.b.mul(x, g.scalar(2, x)), _spread(g, g.dout))]


@gradient("reduceL1")
def _reduce_l1_grad(g):
    if not _float(g):
        return [None]
    return [g.b.mul(g.b.sign(g.inputs[0]), _spread(g, g.dout))]


@gradient("reduceL2")
def _reduce_l2_grad(g):
    # d |x| / dx = x / |x| (0 where the norm is 0).
    x, y = g.inputs[0], g.out
    zero = g.b.equal(y, g.scalar(0, y))
    per = g.b.where(zero, g.zeros_like(y), g.b.div(g.dout, _nonzero_or(g, y, zero, 1)))
    return [g.b.mul(x, _spread(g, per))]


@gradient("reduceLogSum")
def _reduce_log_sum_grad(g):
    # d log(sum x) / dx = 1 / sum x
    total = g.b.reduce_sum(g.inputs[0], axes=list(g.attrs["axes"]), keep_dimensions=g.attrs["keep_dimensions"])
    return [_spread(g, g.b.div(g.dout, total))]


@gradient("reduceLogSumExp")
def _reduce_log_sum_exp_grad(g):
    # softmax over the reduced axes: exp(x - y)
    x = g.inputs[0]
    return [g.b.mul(g.b.exp(g.b.sub(x, _spread(g, g.out))), _spread(g, g.dout))]


@gradient("reduceMax", "reduceMin")
def _reduce_extremum_grad(g):
    """To the (first, in row-major order of the reduced axes) element that is the maximum / minimum."""
    if not _float(g):
        return [None]
    b, x = g.b, g.inputs[0]
    axes = sorted(g.attrs["axes"])
    kept = [i for i in range(len(x.shape)) if i not in axes]
    if not axes:
        return [g.dout]
    # [kept dims..., product of the reduced dims]
    order = kept + axes
    moved = x if order == sorted(order) else b.transpose(x, permutation=order)
    size = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = b.reshape(moved, [*(x.shape[i] for i in kept), size])
    arg = b.arg_max if g.node.op == "reduceMax" else b.arg_min
    first = arg(flat, len(kept), keep_dimensions=True)  # the first extremum
    positions = b.constant(
        {"dataType": first.data_type, "shape": [1] * len(kept) + [size]}, np.arange(size, dtype=np.int32)
    )
    dy = b.reshape(g.dout, [*(x.shape[i] for i in kept), 1])
    chosen = b.where(b.equal(first, positions), dy, g.scalar(0, dy))
    chosen = b.reshape(chosen, [x.shape[i] for i in order])
    if order != sorted(order):
        chosen = b.transpose(chosen, permutation=[order.index(i) for i in range(len(order))])
    return [chosen]


@gradient("reduceProduct")
def _reduce_product_grad(g):
    """The product of the other elements: y / x without zeros, else from the product of the non-zero elements."""
    if not _float(g):
        return [None]
    b, x = g.b, g.inputs[0]
    axes = list(g.attrs["axes"])
    zero = b.equal(x, g.scalar(0, x))
    nonzero = _nonzero_or(g, x, zero, 1)
    product = b.reduce_product(nonzero, axes=axes, keep_dimensions=True)  # of the non-zero elements
    zeros = b.reduce_sum(b.cast(zero, x.data_type), axes=axes, keep_dimensions=True)
    if x.shape:
        zeros, product = b.expand(zeros, x.shape), b.expand(product, x.shape)
    no_zero = b.equal(zeros, g.scalar(0, x))
    one_zero = b.logical_and(b.equal(zeros, g.scalar(1, x)), zero)
    others = b.where(no_zero, b.div(product, nonzero), b.where(one_zero, product, g.zeros_like(x)))
    return [b.mul(others, _spread(g, g.dout))]


@gradient("argMin", "argMax")
def _arg_grad(g):
    return [None]  # integer indices: no gradient flows


@gradient("cumulativeSum")
def _cumulative_sum_grad(g):
    # Each input element adds to the outputs after it (or before it, reversed): sum the cotangents the other way.
    if not _float(g):
        return [None]
    a = g.attrs
    return [g.b.cumulative_sum(g.dout, a["axis"], exclusive=a["exclusive"], reversed=not a["reversed"])]
