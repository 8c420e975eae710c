"""ONNX lowerings of the pooling operators: averagePool2d, l2Pool2d, maxPool2d.

The reference semantics (see the reference kernels): padding is no part of
any window, so max ignores it, average divides by the number of input
elements in the window (ONNX AveragePool's ``count_include_pad=0``) and l2
sums the squares of input elements (ONNX LpPool with p=2 pads with zeros).

Output sizes: the output descriptor holds the size the ops rule chose (floor,
ceil, or output_sizes).  Rather than ONNX's ``ceil_mode`` (whose rule for a
last window starting in the padding differs between versions), the pools run
in floor mode with the end padding set to exactly what the output's windows
span, so they always produce the descriptor's shape.

ONNX Runtime refuses pads not smaller than the window (``kernel_shape``).
Such geometries (large paddings, or ceil rounding giving a window wholly in
the padding) pad the input explicitly with a Pad node first: max pads with
the lowest value, l2 with zeros, and average sums the zero-padded windows
(AveragePool counting the padding, times the window area) and divides by the
count of input elements in each window, a constant of the static shapes
(0 / 0 gives NaN for a window wholly in padding, as in the reference).

maxPool2d of data types ONNX MaxPool lacks: int32/uint32 run in double
(exact); int64/uint64 (uint64 mapped to an order-preserving int64 by
flipping the sign bit) use max's separability: Gather the window rows and
ReduceMax them, then the same for the columns.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...ops.checks import FLOATS, NUMERIC
from ...ops.pool import PoolGeometry, window_tap_indices
from .conv import in_nchw
from .lowering import Arg, Lowerer, lowering, storage_dtype


def _direct(g: PoolGeometry) -> bool:
    """Whether ONNX Runtime's pools take these pads (each smaller than the window)."""
    return all(p < k for p, k in zip(g.begin + g.end, g.window + g.window))


def _wide(g: PoolGeometry) -> bool:
    """Whether a window is wider than the input: ONNX Runtime's pools loop over every tap of the window,
    padding included, so such geometries (a huge window from a file) go through :func:`_separable`."""
    return any((k - 1) * d + 1 > i for k, d, i in zip(g.window, g.dilations, g.in_hw))


def _attrs(g: PoolGeometry, pads: bool = True) -> dict:
    """The ONNX pool attributes; without ``pads`` for an input padded by :func:`_pad`."""
    return dict(
        kernel_shape=list(g.window),
        strides=list(g.strides),
        dilations=list(g.dilations),
        pads=[g.begin[0], g.begin[1], g.end[0], g.end[1]] if pads else None,
    )


def _pool(lw: Lowerer, input: Arg, out: Arg, compute, attrs) -> None:
    """Run ``compute(x_nchw, geometry, output_name_or_1)`` between the layout transposes."""
    g = PoolGeometry.of(input.shape, out.shape, **attrs)
    in_nchw(lw, input, out, g.layout, lambda x, y: compute(x, g, y))


def _pad(lw: Lowerer, x: str, g: PoolGeometry, fill: str | None) -> str:
    pads = lw.ints([0, 0, g.begin[0], g.begin[1], 0, 0, g.end[0], g.end[1]])
    return lw.emit("Pad", [x, pads, fill], mode="constant")


@lowering("averagePool2d", input=FLOATS)
def average_pool2d(lw: Lowerer, input: Arg, *, out: Arg, **attrs) -> None:
    def compute(x: str, g: PoolGeometry, out) -> str:
        if _wide(g):
            zero = np.array(0, dtype=storage_dtype(input.data_type))
            with np.errstate(divide="ignore"):
                inverse = 1.0 / g.counts().astype(np.float64)  # inf where no input element: 0 * inf = NaN
            sums = _separable(lw, x, g, 1, "ReduceSum", zero)
            return lw.emit("Mul", [sums, lw.const(inverse.astype(zero.dtype))], out)
        if _direct(g) and g.counts().all():
            return lw.emit("AveragePool", [x], out, count_include_pad=0, **_attrs(g))
        window_sum_ratio = lw.emit("AveragePool", [_pad(lw, x, g, None)], count_include_pad=1, **_attrs(g, pads=False))
        area = g.window[0] * g.window[1]
        with np.errstate(divide="ignore"):
            factor = area / g.counts().astype(np.float64)  # inf where no input element: 0 * inf = NaN
        return lw.emit("Mul", [window_sum_ratio, lw.const(factor.astype(storage_dtype(input.data_type)))], out)

    _pool(lw, input, out, compute, attrs)


@lowering("l2Pool2d", input=FLOATS)
def l2_pool2d(lw: Lowerer, input: Arg, *, out: Arg, **attrs) -> None:
    def compute(x: str, g: PoolGeometry, out) -> str:
        if _wide(g):
            zero = np.array(0, dtype=storage_dtype(input.data_type))
            return lw.emit("Sqrt", [_separable(lw, lw.emit("Mul", [x, x]), g, 1, "ReduceSum", zero)], out)
        if _direct(g):
            return lw.emit("LpPool", [x], out, p=2, **_attrs(g))
        return lw.emit("LpPool", [_pad(lw, x, g, None)], out, p=2, **_attrs(g, pads=False))

    _pool(lw, input, out, compute, attrs)


@lowering("maxPool2d", input=NUMERIC)
def max_pool2d(lw: Lowerer, input: Arg, *, out: Arg, **attrs) -> None:
    data_type = input.data_type

    def native(x: str, g: PoolGeometry, out, dtype: np.dtype) -> str:
        # The value of a window wholly in padding: the reference's max of the empty set.
        lowest = -np.inf if data_type in FLOATS else np.iinfo(storage_dtype(data_type)).min
        if _wide(g):
            return _separable(lw, x, g, out, "ReduceMax", np.array(lowest, dtype=dtype))
        fill = lw.const(np.array(lowest, dtype=dtype))
        # MaxPool starts each window from the lowest finite value of its type, which is
        # not ``lowest`` for floats (-inf) nor for 32-bit integers computed in double.
        empty = g.counts() == 0
        fix_empty = bool(empty.any()) and (data_type in FLOATS or dtype != storage_dtype(data_type))
        pool_out = 1 if fix_empty else out
        if _direct(g):
            y = lw.emit("MaxPool", [x], pool_out, **_attrs(g))
        else:
            y = lw.emit("MaxPool", [_pad(lw, x, g, fill)], pool_out, **_attrs(g, pads=False))
        if fix_empty:
            y = lw.emit("Where", [lw.const(empty), fill, y], out)
        return y

    def compute(x: str, g: PoolGeometry, out) -> str:
        if data_type in ("float32", "float16", "int8", "uint8"):
            return native(x, g, out, storage_dtype(data_type))
        if data_type in ("int32", "uint32"):
            y = native(lw.emit("Cast", [x], to=TensorProto.DOUBLE), g, 1, np.dtype(np.float64))  # exact for 32 bits
            return lw.cast(y, data_type, out if isinstance(out, str) else None)
        if data_type == "int64":
            return _separable_max(lw, x, g, out)
        # uint64: flipping the sign bit of the wrapped int64 preserves the order.
        flip = lw.const(np.array(np.iinfo(np.int64).min, dtype=np.int64))
        signed = lw.emit("BitwiseXor", [lw.cast(x, "int64"), flip])
        y = lw.emit("BitwiseXor", [_separable_max(lw, signed, g, 1), flip])
        return lw.cast(y, "uint64", out if isinstance(out, str) else None)

    _pool(lw, input, out, compute, attrs)


def _separable(lw: Lowerer, x: str, g: PoolGeometry, out, reduce: str, fill: np.ndarray) -> str:
    """``reduce`` ("ReduceMax" or "ReduceSum") over each window's taps inside the input, rows then columns.

    Gather puts each output's taps ([out, L], only those inside the input, the rest masked to ``fill``)
    in place of the axis, so the work is bounded by the input however large the window or padding.
    """
    y = x
    for d, axis in ((0, 2), (1, 3)):
        indices, mask = window_tap_indices(*g.axis(d))
        gathered = lw.emit("Gather", [y, lw.const(indices)], axis=axis)
        if not mask.all():
            gathered = lw.emit("Where", [lw.const(mask if axis == 3 else mask[:, :, None]), gathered, lw.const(fill)])
        y = lw.emit(reduce, [gathered, lw.ints([axis + 1])], out if axis == 3 else 1, keepdims=0)
    return y


def _separable_max(lw: Lowerer, x: str, g: PoolGeometry, out) -> str:
    """int64 max pooling (ONNX MaxPool has no int64), by separability."""
    return _separable(lw, x, g, out, "ReduceMax", np.array(np.iinfo(np.int64).min, dtype=np.int64))
