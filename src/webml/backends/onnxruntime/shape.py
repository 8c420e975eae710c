"""ONNX lowerings of the shape operators."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ops.checks import ALL_TYPES, INT64_MIN, SPEC_TYPES
from .lowering import Arg, Lowerer, lowering, storage_dtype

Ints = tuple[int, ...]  # the shapes, axes and sizes among the attributes


# -- cast -------------------------------------------------------------------------


# cast and reshape take the 4-bit types too (as the operator layer does).
@lowering("cast", input=ALL_TYPES, output=ALL_TYPES)
def cast(lw: Lowerer, input: Arg, *, out: Arg, data_type: str) -> None:
    src, dst = input.data_type, data_type
    if src == dst:
        lw.emit("Identity", [input], out)
    elif dtypes.info(dst).is_float:
        # Floats round to nearest once; integers convert directly (no double rounding).
        lw.cast(input, dst, out)
    elif dtypes.info(src).is_float:
        _float_to_int(lw, input, out)
    elif dst in ("int4", "uint4"):
        _int_to_4bit(lw, input, src, dst, out)
    else:
        # Integer to integer: ONNX Runtime's Cast keeps the lowest bits (two's complement).
        lw.cast(input, dst, out)


def _int_to_4bit(lw: Lowerer, x: str, src: str, dst: str, output: str) -> None:
    """The lowest 4 bits of an integer, sign-extended for int4 (carried in int8/uint8)."""
    if dst == "uint4":
        low8 = x if storage_dtype(src) == np.uint8 else lw.cast(x, "uint8")
        lw.emit("BitwiseAnd", [low8, lw.const(15, "uint8")], output)
        return
    # int8 wraps: v * 16 keeps the low nibble in the high one, / 16 sign-extends it exactly.
    low8 = x if storage_dtype(src) == np.int8 else lw.cast(x, "int8")
    sixteen = lw.const(16, "int8")
    lw.emit("Div", [lw.emit("Mul", [low8, sixteen]), sixteen], output)


def _float_to_int(lw: Lowerer, input: Arg, out: Arg) -> None:
    """Truncate toward zero, saturate to the target's range, NaN -> 0 (the reference kernel).

    ONNX's Cast of an out-of-range float is undefined, so the input is clipped
    first to the representable floats within the target's range; where a bound
    isn't representable, the inputs past the clip bound get the bound itself.
    """
    x, src, dst = str(input), input.data_type, out.data_type
    target = dtypes.info(dst)
    lo, hi = (
        (0, 2**target.bits - 1) if target.kind == "uint" else (-(2 ** (target.bits - 1)), 2 ** (target.bits - 1) - 1)
    )
    if src == "float16" and hi > 65504:
        # The range's bounds (or the lower one) are past float16's: work in float32 (exact).
        x, src = lw.cast(x, "float32"), "float32"
    ftype = dtypes.numpy_dtype(src)
    lo_f, hi_f = _representable_within(lo, hi, ftype)
    assert lo_f == lo  # the lower bounds are 0 or powers of two
    clipped = lw.emit("Clip", [x, lw.const(lo_f, src), lw.const(hi_f, src)])
    result = lw.cast(clipped, dst)
    # ONNX Runtime's Where has no uint64 kernel: select uint64's bits as int64 (Cast reinterprets them).
    carrier, top = ("int64", -1) if dst == "uint64" else (dst, hi)
    if carrier != dst:
        result = lw.cast(result, carrier)
    if hi_f != hi:
        beyond = lw.emit("Greater", [x, lw.const(hi_f, src)])
        result = lw.emit("Where", [beyond, lw.const(top, carrier), result])
    is_nan = lw.emit("IsNaN", [x])
    if carrier == dst:
        lw.emit("Where", [is_nan, lw.const(0, carrier), result], out)
    else:
        lw.cast(lw.emit("Where", [is_nan, lw.const(0, carrier), result]), dst, out)


def _representable_within(lo: int, hi: int, ftype: np.dtype) -> tuple[float, float]:
    """The smallest and largest values of ``ftype`` within [lo, hi]."""
    lo_f, hi_f = ftype.type(lo), ftype.type(hi)
    if int(lo_f) < lo:
        lo_f = np.nextafter(lo_f, ftype.type(np.inf))
    if np.isinf(hi_f) or int(hi_f) > hi:
        hi_f = np.nextafter(hi_f, ftype.type(-np.inf))
    return float(lo_f), float(hi_f)


# -- concat, expand, reshape, tile ----------------------------------------------------


@lowering("concat", inputs=SPEC_TYPES)
def concat(lw: Lowerer, inputs: list[Arg], *, out: Arg, axis: int) -> None:
    lw.emit("Concat", inputs, out, axis=axis)


@lowering("expand", input=SPEC_TYPES)
def expand(lw: Lowerer, input: Arg, *, out: Arg, new_shape: Ints) -> None:
    lw.emit("Expand", [input, lw.ints(new_shape)], out)


@lowering("reshape", input=ALL_TYPES)
def reshape(lw: Lowerer, input: Arg, *, out: Arg, new_shape: Ints) -> None:
    lw.emit("Reshape", [input, lw.ints(new_shape)], out)


@lowering("tile", input=SPEC_TYPES)
def tile(lw: Lowerer, input: Arg, *, out: Arg, repetitions: Ints) -> None:
    if all(r == 1 for r in repetitions):
        lw.emit("Identity", [input], out)
    else:
        lw.emit("Tile", [input, lw.ints(repetitions)], out)


# -- pad --------------------------------------------------------------------------

_PAD_MODES = {"constant": "constant", "edge": "edge", "reflection": "reflect"}


@lowering("pad", input=SPEC_TYPES)
def pad(
    lw: Lowerer,
    input: Arg,
    *,
    out: Arg,
    beginning_padding: Ints,
    ending_padding: Ints,
    mode: str,
    value: float | int,
) -> None:
    if not beginning_padding:  # a 0-D input: nothing to pad (ONNX Pad needs rank >= 1)
        lw.emit("Identity", [input], out)
        return
    pads = lw.ints([*beginning_padding, *ending_padding])
    fill = lw.const(value, input.data_type) if mode == "constant" else None
    lw.emit("Pad", [input, pads, fill], out, mode=_PAD_MODES[mode])


# -- reverse, transpose -----------------------------------------------------------


@lowering("reverse", input=SPEC_TYPES)
def reverse(lw: Lowerer, input: Arg, *, out: Arg, axes: Ints) -> None:
    if not axes:
        lw.emit("Identity", [input], out)
        return
    # ONNX has no Reverse: a Slice stepping -1 from the last element past the first.
    count = len(axes)
    starts, ends = lw.ints([-1] * count), lw.ints([INT64_MIN] * count)
    lw.emit("Slice", [input, starts, ends, lw.ints(sorted(axes)), lw.ints([-1] * count)], out)


@lowering("transpose", input=SPEC_TYPES)
def transpose(lw: Lowerer, input: Arg, *, out: Arg, permutation: Ints) -> None:
    if list(permutation) == sorted(permutation):
        lw.emit("Identity", [input], out)
    else:
        lw.emit("Transpose", [input], out, perm=list(permutation))


# -- slice, split -----------------------------------------------------------------


@lowering("slice", input=SPEC_TYPES)
def slice_(lw: Lowerer, input: Arg, *, out: Arg, starts: Ints, sizes: Ints, strides: Ints) -> None:
    shape = input.shape
    axes = [d for d in range(len(shape)) if not (starts[d] == 0 and sizes[d] == shape[d] and strides[d] == 1)]
    if not axes:
        lw.emit("Identity", [input], out)
        return
    inputs = [
        input,
        lw.ints([starts[d] for d in axes]),
        lw.ints([starts[d] + sizes[d] for d in axes]),
        lw.ints(axes),
        None if all(strides[d] == 1 for d in axes) else lw.ints([strides[d] for d in axes]),
    ]
    lw.emit("Slice", inputs, out)


# One part comes as one output Arg, several as a list.
@lowering("split", input=SPEC_TYPES)
def split(lw: Lowerer, input: Arg, *, out: Arg | list[Arg], splits: Ints, axis: int) -> None:
    if len(splits) == 1:
        lw.emit("Identity", [input], out)
    else:
        lw.emit("Split", [input, lw.ints(splits)], out, axis=axis)


# -- triangular, where ------------------------------------------------------------

_TRILU = ("float32", "float16", "int32", "int64")  # ONNX Runtime's Trilu kernels


@lowering("triangular", input=SPEC_TYPES)
def triangular(lw: Lowerer, input: Arg, *, out: Arg, upper: bool, diagonal: int) -> None:
    if input.data_type in _TRILU:
        k = lw.const(np.asarray(diagonal, dtype=np.int64))
        lw.emit("Trilu", [input, k], out, upper=int(upper))
        return
    # No Trilu kernel for these integers: multiply by the 0/1 mask of the last two dimensions (exact).
    rows, cols = input.shape[-2:]
    ones = np.ones((rows, cols), dtype=storage_dtype(input.data_type))
    mask = np.triu(ones, diagonal) if upper else np.tril(ones, diagonal)
    lw.emit("Mul", [input, lw.const(mask)], out)


@lowering("where", condition=("uint8",), trueValue=SPEC_TYPES, falseValue=SPEC_TYPES)
def where(lw: Lowerer, condition: Arg, true_value: Arg, false_value: Arg, *, out: Arg) -> None:
    selector = lw.cast(condition, "bool")
    if out.data_type == "uint64":
        # ONNX Runtime's Where has no uint64 kernel: select the bits as int64 (Cast reinterprets them).
        selected = lw.emit("Where", [selector, lw.cast(true_value, "int64"), lw.cast(false_value, "int64")])
        lw.cast(selected, "uint64", out)
        return
    lw.emit("Where", [selector, true_value, false_value], out)
