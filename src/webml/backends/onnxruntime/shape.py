"""ONNX lowerings of the shape operators."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .lowering import Lowerer, Op, lowering, storage_dtype

# The spec's types (every operator) and those with the 4-bit types (cast, reshape).
ANY = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
ALL = (*ANY, "int4", "uint4")

_INT64_MIN = -(2**63)


# -- cast -------------------------------------------------------------------------


@lowering("cast", input=ALL, output=ALL)
def cast(lw: Lowerer, n: Op) -> None:
    src, dst = n.in_type, n.out_type
    if src == dst:
        lw.emit("Identity", [n.input], n.output)
    elif dtypes.info(dst).is_float:
        # Floats round to nearest once; integers convert directly (no double rounding).
        lw.cast(n.input, dst, n.output)
    elif dtypes.info(src).is_float:
        _float_to_int(lw, n)
    elif dst in ("int4", "uint4"):
        _int_to_4bit(lw, n.input, src, dst, n.output)
    else:
        # Integer to integer: ONNX Runtime's Cast keeps the lowest bits (two's complement).
        lw.cast(n.input, dst, n.output)


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


def _float_to_int(lw: Lowerer, n: Op) -> None:
    """Truncate toward zero, saturate to the target's range, NaN -> 0 (the reference kernel).

    ONNX's Cast of an out-of-range float is undefined, so the input is clipped
    first to the representable floats within the target's range; where a bound
    isn't representable, the inputs past the clip bound get the bound itself.
    """
    x, src, dst = n.input, n.in_type, n.out_type
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
        lw.emit("Where", [is_nan, lw.const(0, carrier), result], n.output)
    else:
        lw.cast(lw.emit("Where", [is_nan, lw.const(0, carrier), result]), dst, n.output)


def _representable_within(lo: int, hi: int, ftype: np.dtype) -> tuple[float, float]:
    """The smallest and largest values of ``ftype`` within [lo, hi]."""
    lo_f, hi_f = ftype.type(lo), ftype.type(hi)
    if int(lo_f) < lo:
        lo_f = np.nextafter(lo_f, ftype.type(np.inf))
    if np.isinf(hi_f) or int(hi_f) > hi:
        hi_f = np.nextafter(hi_f, ftype.type(-np.inf))
    return float(lo_f), float(hi_f)


# -- concat, expand, reshape, tile ----------------------------------------------------


@lowering("concat", inputs=ANY)
def concat(lw: Lowerer, n: Op) -> None:
    lw.emit("Concat", n.inputs, n.output, axis=n.attrs["axis"])


@lowering("expand", input=ANY)
def expand(lw: Lowerer, n: Op) -> None:
    lw.emit("Expand", [n.input, lw.ints(n.attrs["new_shape"])], n.output)


@lowering("reshape", input=ALL)
def reshape(lw: Lowerer, n: Op) -> None:
    lw.emit("Reshape", [n.input, lw.ints(n.attrs["new_shape"])], n.output)


@lowering("tile", input=ANY)
def tile(lw: Lowerer, n: Op) -> None:
    repetitions = n.attrs["repetitions"]
    if all(r == 1 for r in repetitions):
        lw.emit("Identity", [n.input], n.output)
    else:
        lw.emit("Tile", [n.input, lw.ints(repetitions)], n.output)


# -- pad --------------------------------------------------------------------------

_PAD_MODES = {"constant": "constant", "edge": "edge", "reflection": "reflect"}


@lowering("pad", input=ANY)
def pad(lw: Lowerer, n: Op) -> None:
    if not n.attrs["beginning_padding"]:  # a 0-D input: nothing to pad (ONNX Pad needs rank >= 1)
        lw.emit("Identity", [n.input], n.output)
        return
    mode = n.attrs["mode"]
    pads = lw.ints([*n.attrs["beginning_padding"], *n.attrs["ending_padding"]])
    value = lw.const(n.attrs["value"], n.in_type) if mode == "constant" else None
    lw.emit("Pad", [n.input, pads, value], n.output, mode=_PAD_MODES[mode])


# -- reverse, transpose -----------------------------------------------------------


@lowering("reverse", input=ANY)
def reverse(lw: Lowerer, n: Op) -> None:
    axes = sorted(n.attrs["axes"])
    if not axes:
        lw.emit("Identity", [n.input], n.output)
        return
    # ONNX has no Reverse: a Slice stepping -1 from the last element past the first.
    count = len(axes)
    starts, ends = lw.ints([-1] * count), lw.ints([_INT64_MIN] * count)
    lw.emit("Slice", [n.input, starts, ends, lw.ints(axes), lw.ints([-1] * count)], n.output)


@lowering("transpose", input=ANY)
def transpose(lw: Lowerer, n: Op) -> None:
    permutation = list(n.attrs["permutation"])
    if permutation == sorted(permutation):
        lw.emit("Identity", [n.input], n.output)
    else:
        lw.emit("Transpose", [n.input], n.output, perm=permutation)


# -- slice, split -----------------------------------------------------------------


@lowering("slice", input=ANY)
def slice_(lw: Lowerer, n: Op) -> None:
    shape = n.in_descs[0].shape
    starts, sizes, strides = n.attrs["starts"], n.attrs["sizes"], n.attrs["strides"]
    axes = [d for d in range(len(shape)) if not (starts[d] == 0 and sizes[d] == shape[d] and strides[d] == 1)]
    if not axes:
        lw.emit("Identity", [n.input], n.output)
        return
    inputs = [
        n.input,
        lw.ints([starts[d] for d in axes]),
        lw.ints([starts[d] + sizes[d] for d in axes]),
        lw.ints(axes),
        None if all(strides[d] == 1 for d in axes) else lw.ints([strides[d] for d in axes]),
    ]
    lw.emit("Slice", inputs, n.output)


@lowering("split", input=ANY)
def split(lw: Lowerer, n: Op) -> None:
    splits = n.attrs["splits"]
    if len(splits) == 1:
        lw.emit("Identity", [n.input], n.output)
    else:
        lw.emit("Split", [n.input, lw.ints(splits)], n.outputs, axis=n.attrs["axis"])


# -- triangular, where ------------------------------------------------------------

_TRILU = ("float32", "float16", "int32", "int64")  # ONNX Runtime's Trilu kernels


@lowering("triangular", input=ANY)
def triangular(lw: Lowerer, n: Op) -> None:
    upper, diagonal = n.attrs["upper"], n.attrs["diagonal"]
    if n.in_type in _TRILU:
        k = lw.const(np.asarray(diagonal, dtype=np.int64))
        lw.emit("Trilu", [n.input, k], n.output, upper=int(upper))
        return
    # No Trilu kernel for these integers: multiply by the 0/1 mask of the last two dimensions (exact).
    rows, cols = n.in_descs[0].shape[-2:]
    ones = np.ones((rows, cols), dtype=storage_dtype(n.in_type))
    mask = np.triu(ones, diagonal) if upper else np.tril(ones, diagonal)
    lw.emit("Mul", [n.input, lw.const(mask)], n.output)


@lowering("where", condition=("uint8",), trueValue=ANY, falseValue=ANY)
def where(lw: Lowerer, n: Op) -> None:
    condition, true_value, false_value = n.inputs
    condition = lw.cast(condition, "bool")
    if n.out_type == "uint64":
        # ONNX Runtime's Where has no uint64 kernel: select the bits as int64 (Cast reinterprets them).
        selected = lw.emit("Where", [condition, lw.cast(true_value, "int64"), lw.cast(false_value, "int64")])
        lw.cast(selected, "uint64", n.output)
        return
    lw.emit("Where", [condition, true_value, false_value], n.output)
