"""ONNX lowerings of the reduce operators.

Integer semantics follow the reference kernels: sums and products are exact
and saturate to the output type.  ONNX Runtime's integer Reduce* kernels do
not give that (int32 sums wrap or saturate depending on the code path, and
int64 reductions go through double and lose the low bits above 2^53), so
32-bit integer reductions are computed in double and clipped:

* reduceL1, reduceSumSquare and reduceProduct accumulate magnitudes that
  only grow (non-negative terms; nonzero integer factors of magnitude >= 1),
  so a double partial result is exact until it passes 2^53, and past it the
  true result saturates anyway: the clipped result is always exact;
* reduceSum is exact while every partial sum stays below 2^53 in magnitude,
  which holds whenever fewer than 2^22 elements are summed.

64-bit integer sums and products have no exact lowering here and are left
out.  cumulativeSum uses CumSum, whose integer kernels add exactly (wrapping):
32-bit inputs are summed in int64 and clipped; 64-bit inputs take the wrapped
sum and a double cumulative sum that tells whether (and which way) it
wrapped, which is exact for axes shorter than 2^26.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto

from ... import dtypes
from ...ops.checks import FLOAT_INT32_UINT32, FLOATS, INT64_MAX, INT64_MIN, SPEC_TYPES
from ...ops.reduce import REDUCTIONS, SUM_TYPES
from .lowering import Arg, Lowerer, lowering

# webml op -> (ONNX reduction, element-wise equivalent for an empty axes list: ONNX op or None for identity)
_REDUCE = {
    "reduceL1": ("ReduceL1", "Abs"),
    "reduceL2": ("ReduceL2", "Abs"),
    "reduceLogSum": ("ReduceLogSum", "Log"),
    "reduceLogSumExp": ("ReduceLogSumExp", None),
    "reduceMax": ("ReduceMax", None),
    "reduceMean": ("ReduceMean", None),
    "reduceMin": ("ReduceMin", None),
    "reduceProduct": ("ReduceProd", None),
    "reduceSum": ("ReduceSum", None),
    "reduceSumSquare": ("ReduceSumSquare", "Square"),
}

_SIGN_BIT = np.uint64(2**63)


def _reduce(lw: Lowerer, op_type: str, x: str, axes: Sequence[int], keep: bool, output: str | int = 1) -> str:
    """``op_type`` over ``axes`` (not empty), or its element-wise equivalent when ``axes`` is empty."""
    if axes:
        return lw.emit(op_type, [x, lw.ints(axes)], output, keepdims=int(keep))
    elementwise = next((e for r, e in _REDUCE.values() if r == op_type), None)
    if elementwise == "Square":
        return lw.emit("Mul", [x, x], output)
    return lw.emit(elementwise or "Identity", [x], output)


def _register(name: str, op_type: str) -> None:
    # int64/uint64 sums and products have no exact lowering (see the module docstring); the output
    # has the input's type (spec): without int64/uint64 in, none out either.
    types = FLOAT_INT32_UINT32 if REDUCTIONS[name] == SUM_TYPES else REDUCTIONS[name]

    @lowering(name, input=types, output=types)
    def lower(lw: Lowerer, input: Arg, *, out: Arg, axes: tuple[int, ...], keep_dimensions: bool) -> None:
        keep = bool(keep_dimensions)
        if input.data_type in FLOATS:  # ORT's float16 kernels accumulate in float32
            _reduce(lw, op_type, input, axes, keep, out)
        elif op_type in ("ReduceMax", "ReduceMin"):
            _min_max(lw, input, out, op_type, axes, keep)
        else:
            _saturating(lw, input, out, op_type, axes, keep)

    lower.__name__ = lower.__qualname__ = name


def _min_max(lw: Lowerer, input: Arg, out: Arg, op_type: str, axes: Sequence[int], keep: bool) -> None:
    dt = input.data_type
    if dt in ("int32", "int64", "int8", "uint8") or not axes:
        _reduce(lw, op_type, input, axes, keep, out)
    elif dt == "uint32":  # no kernel: int64 holds every value
        lw.cast(_reduce(lw, op_type, lw.cast(input, "int64"), axes, keep), dt, out)
    else:  # uint64: no kernel; flipping the top bit maps its order onto int64's
        _from_ordered(lw, _reduce(lw, op_type, _to_ordered(lw, input), axes, keep), out)


def _to_ordered(lw: Lowerer, x: str) -> str:
    """uint64 ``x`` as int64 values in the same order (x - 2^63)."""
    return lw.cast(lw.emit("BitwiseXor", [x, lw.const(_SIGN_BIT)]), "int64")


def _from_ordered(lw: Lowerer, x: str, output: str) -> str:
    return lw.emit("BitwiseXor", [lw.cast(x, "uint64"), lw.const(_SIGN_BIT)], output)


def _saturating(lw: Lowerer, input: Arg, out: Arg, op_type: str, axes: Sequence[int], keep: bool) -> None:
    """A 32-bit integer sum or product, in double, clipped to the output type (see the module docstring)."""
    low, high = dtypes.int_bounds(input.data_type)
    wide = _reduce(lw, op_type, lw.emit("Cast", [input], to=TensorProto.DOUBLE), axes, keep)
    if op_type == "ReduceProd" and axes:
        # A product past double's range is infinite, and an infinite partial product times a
        # zero factor NaN: the product is 0 then.
        wide = lw.emit("Where", [lw.emit("IsNaN", [wide]), lw.const(np.float64(0.0)), wide])
    clipped = lw.emit("Clip", [wide, lw.const(np.float64(low)), lw.const(np.float64(high))])
    lw.cast(clipped, input.data_type, out)


for _name, (_op_type, _) in _REDUCE.items():
    _register(_name, _op_type)


# -- argMin / argMax -------------------------------------------------------------------


@lowering("argMin", "argMax", input=SPEC_TYPES)
def arg_min_max(lw: Lowerer, input: Arg, *, out: Arg, axis: int, keep_dimensions: bool) -> None:
    x, dt = str(input), input.data_type
    if dt == "uint32":
        x = lw.cast(x, "int64")
    elif dt == "uint64":
        x = _to_ordered(lw, x)
    op_type = "ArgMin" if lw.op == "argMin" else "ArgMax"
    attrs = {"axis": int(axis), "keepdims": int(bool(keep_dimensions)), "select_last_index": 0}
    if out.data_type == "int64":
        lw.emit(op_type, [x], out, **attrs)
    else:
        lw.cast(lw.emit(op_type, [x], **attrs), out.data_type, out)


# -- cumulativeSum ----------------------------------------------------------------------


@lowering("cumulativeSum", input=SUM_TYPES)
def cumulative_sum(lw: Lowerer, input: Arg, *, out: Arg, axis: int, exclusive: bool, reversed: bool) -> None:
    dt = input.data_type
    axis_name = lw.const(np.int64(axis))
    attrs = {"exclusive": int(bool(exclusive)), "reverse": int(bool(reversed))}

    def cumsum(x: str, output: str | int = 1) -> str:
        return lw.emit("CumSum", [x, axis_name], output, **attrs)

    if dt == "float32":
        cumsum(input, out)
    elif dt == "float16":  # no float16 kernel
        lw.cast(cumsum(lw.cast(input, "float32")), dt, out)
    elif dt in ("int32", "uint32"):  # exact in int64, then saturated
        low, high = dtypes.int_bounds(dt)
        wide = cumsum(lw.cast(input, "int64"))
        lw.cast(lw.emit("Clip", [wide, lw.const(np.int64(low)), lw.const(np.int64(high))]), dt, out)
    else:
        # The wrapped int64 sum, and in double how far the true sum lies from it:
        # 0 (it did not wrap) or a multiple of 2^64, far beyond the double sum's error.
        wrapped = cumsum(input if dt == "int64" else lw.cast(input, "int64"))
        unsigned = wrapped if dt == "int64" else lw.cast(wrapped, "uint64")
        approx = cumsum(lw.emit("Cast", [input], to=TensorProto.DOUBLE))
        off = lw.emit("Sub", [approx, lw.emit("Cast", [unsigned], to=TensorProto.DOUBLE)])
        if dt == "int64":
            below = lw.emit("Less", [off, lw.const(np.float64(-(2.0**63)))])
            wrapped = lw.emit("Where", [below, lw.const(np.int64(INT64_MIN)), wrapped])
        # Where has no uint64 kernel: uint64's maximum is int64's -1.
        top = lw.const(np.int64(INT64_MAX if dt == "int64" else -1))
        above = lw.emit("Greater", [off, lw.const(np.float64(2.0**63))])
        if dt == "int64":
            lw.emit("Where", [above, top, wrapped], out)
        else:
            lw.cast(lw.emit("Where", [above, top, wrapped]), "uint64", out)
