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
        return call.emit([input], OperandDesc(input.data_type, shape), axes=axes, keep_dimensions=keep)

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
    return call.emit([input], OperandDesc(output_data_type, shape), axis=axis, keep_dimensions=keep)


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
        [input],
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
