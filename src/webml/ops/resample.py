"""resample2d (spec §7.9): resize two dimensions of a 4-D tensor.

The output size along ``axes[i]`` is ``sizes[i]`` when given, else
``floor(inputSize * scales[i])`` with ``scales[i]`` a WebIDL ``float``, i.e.
rounded to float32 first (0.7 is 0.699999988..., so ``floor(10 * 0.7)`` is 6).

Each output coordinate ``o`` of an axis maps to the input coordinate (spec)::

    scale = outputSize / inputSize
    c = clamp((o + 0.5) / scale - 0.5, 0, inputSize - 1)

The scale is the ratio of the actual sizes, also when ``scales`` was given
(WPT's resample2d-nearest-half-pixel cases agree: 3 -> 4 with scale 1.5).
:func:`nearest_indices` and :func:`linear_taps` give that mapping to the
backends and the gradient rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ..dtypes import numpy_dtype
from ..ir import OperandDesc, Value
from .checks import FLOATS, check_shape, finite_float, limit, nonzero, one_of, unsigned_longs, valid_dimension
from .registry import Call, gradient, op

MODES = ("nearest-neighbor", "linear")

# The spec's table: float32, float16, uint8, int8; rank 4.
TYPES = (*FLOATS, "uint8", "int8")
RESAMPLE = limit(TYPES, 4, 4)


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """nearest-neighbor: ``ceil(c - 0.5)`` for every output coordinate, exactly (ties go to the smaller index).

    ``c - 0.5 = ((2o + 1) * in - 2 * out) / (2 * out)``, so the ceiling is an integer division.
    """
    o = np.arange(out_size, dtype=np.int64)
    index = -(-((2 * o + 1) * in_size - 2 * out_size) // (2 * out_size))
    # Clamping c to [0, in - 1] clamps the index to the same range.
    return np.clip(index, 0, in_size - 1)


def linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """linear: for every output coordinate, the input indices floor(c) and ceil(c) it interpolates between
    (int64) and the weight of the second, ``c - floor(c)`` (float64; the first's is 1 minus that)."""
    o = np.arange(out_size, dtype=np.float64)
    c = np.clip(((2 * o + 1) * in_size - out_size) / (2 * out_size), 0, in_size - 1)
    low = np.floor(c)
    return low.astype(np.int64), np.ceil(c).astype(np.int64), c - low


def _floats(call: Call, values: Any, name: str) -> tuple[float, ...]:
    """A WebIDL ``sequence<float>``: finite values, each rounded to float32."""
    if isinstance(values, (str, bytes)):
        raise call.error(f"{name} must be a sequence of float, got {values!r}")
    if not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError:
            raise call.error(f"{name} must be a sequence of float, got {values!r}") from None
    return tuple(float(np.float32(finite_float(call, v, f"{name}[{i}]"))) for i, v in enumerate(values))


@op("resample2d", family="resample", input=RESAMPLE, output=RESAMPLE)
def resample2d(
    call: Call,
    input: Value,
    *,
    mode: str = "nearest-neighbor",
    scales: Sequence[float] | None = None,
    sizes: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
) -> Value:
    """Resample ``input`` along ``axes`` (default [2, 3]) to ``sizes`` or by ``scales``."""
    # WebIDL conversion of the options dictionary.
    mode = one_of(call, mode, MODES, "mode")
    if scales is not None:
        scales = _floats(call, scales, "scales")
    if sizes is not None:
        sizes = unsigned_longs(call, sizes, "sizes")
    if axes is not None:
        axes = unsigned_longs(call, axes, "axes")

    # The input's data type and rank (4) were checked by the limits.
    if scales is None:
        scales = (1.0, 1.0)
    elif len(scales) != 2:
        raise call.error(f"the length of scales ({len(scales)}) must be 2")
    elif any(s <= 0 for s in scales):
        raise call.error(f"scales {list(scales)} must be greater than 0")
    if sizes is not None:
        if len(sizes) != 2:
            raise call.error(f"the length of sizes ({len(sizes)}) must be 2")
        nonzero(call, sizes, "sizes")
    if axes is None:
        axes = (2, 3)
    else:
        # The spec's steps index sizes/scales by axes, so there must be 2 axes (as WPT checks).
        if len(axes) != 2:
            raise call.error(f"the length of axes ({len(axes)}) must be 2")
        if len(set(axes)) != len(axes):
            raise call.error(f"axes {list(axes)} must not contain duplicates")
        for axis in axes:
            if axis >= input.rank:
                raise call.error(f"axes value {axis} must be in the range [0, {input.rank})")

    shape = list(input.shape)
    for index, axis in enumerate(axes):
        if sizes is not None:
            size = sizes[index]
        else:
            # Exact: the float32 scale times the size, floored.
            size = math.floor(Fraction(scales[index]) * input.shape[axis])
        if not valid_dimension(size):
            source = f"sizes[{index}]" if sizes is not None else f"floor({input.shape[axis]} * scales[{index}])"
            raise call.error(f"the output size {size} of axis {axis} ({source}) is not a valid dimension")
        shape[axis] = size
    shape = check_shape(call, shape)
    return call.emit({"input": input}, OperandDesc(input.data_type, shape), mode=mode, axes=tuple(axes))


# -- gradients ------------------------------------------------------------------
#
# Both modes are linear and separable: along each resampled axis the output
# is A @ input with a constant [outputSize, inputSize] matrix A (one 1 per row
# for nearest-neighbor, two interpolation weights for linear; the coordinate
# mapping of the reference kernel), so the input's cotangent is A^T @ the
# output's, one matmul per axis.


def _resample_matrix(mode: str, in_size: int, out_size: int) -> np.ndarray:
    o = np.arange(out_size, dtype=np.int64)
    matrix = np.zeros((out_size, in_size))
    if mode == "nearest-neighbor":
        matrix[o, nearest_indices(in_size, out_size)] = 1.0
    else:
        low, high, t = linear_taps(in_size, out_size)
        np.add.at(matrix, (o, low), 1 - t)
        np.add.at(matrix, (o, high), t)
    return matrix


@gradient("resample2d")
def _resample2d_grad(g, input, *, mode, axes):
    if input.data_type not in FLOATS:
        return {}
    b, d = g.b, g.dout
    rank = len(input.shape)
    for axis in axes:
        matrix = _resample_matrix(mode, input.shape[axis], d.shape[axis])
        if matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(matrix.shape[0])):
            continue  # the axis keeps its size: the identity
        order = [i for i in range(rank) if i != axis] + [axis]
        a = b.constant({"dataType": d.data_type, "shape": list(matrix.shape)}, matrix.astype(numpy_dtype(d.data_type)))
        d = b.transpose(
            b.matmul(b.transpose(d, permutation=order), a), permutation=[order.index(i) for i in range(rank)]
        )
    return {"input": d}
