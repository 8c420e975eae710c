"""Reference kernel of resample2d.

Each output coordinate ``o`` of an axis maps to the input coordinate (spec)::

    scale = outputSize / inputSize
    c = clamp((o + 0.5) / scale - 0.5, 0, inputSize - 1)

The scale is the ratio of the actual sizes, also when ``scales`` was given
(WPT's resample2d-nearest-half-pixel cases agree: 3 -> 4 with scale 1.5).
Both modes are separable, so each axis is resampled in turn by gathering
along it: first the second axis (the spec's x), then the first (y), which
is the spec's order for linear (interpolate along x, then along y).
"""

from __future__ import annotations

import numpy as np

from .kernels import kernel


def _nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """``ceil(c - 0.5)`` for every output coordinate, exactly (ties go to the smaller index).

    ``c - 0.5 = ((2o + 1) * in - 2 * out) / (2 * out)``, so the ceiling is an integer division.
    """
    o = np.arange(out_size, dtype=np.int64)
    numerator = (2 * o + 1) * in_size - 2 * out_size
    index = -(-numerator // (2 * out_size))
    # Clamping c to [0, in - 1] clamps the index to the same range.
    return np.clip(index, 0, in_size - 1)


def _nearest(x: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    return np.take(x, _nearest_indices(x.shape[axis], out_size), axis=axis)


def _linear(x: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    in_size = x.shape[axis]
    o = np.arange(out_size, dtype=np.float64)
    c = np.clip(((2 * o + 1) * in_size - out_size) / (2 * out_size), 0, in_size - 1)
    i0 = np.floor(c)
    i1 = np.ceil(c)
    t = (c - i0).reshape([-1 if d == axis else 1 for d in range(x.ndim)])
    v0 = np.take(x, i0.astype(np.int64), axis=axis)
    v1 = np.take(x, i1.astype(np.int64), axis=axis)
    return v0 * (1 - t) + v1 * t


@kernel("resample2d")
def resample2d(input, *, out, mode, axes):
    integer = input.dtype.kind != "f"
    resample = _nearest if mode == "nearest-neighbor" else _linear
    if mode == "linear" and integer:
        input = input.astype(np.float64)
    for axis in (axes[1], axes[0]):
        input = resample(input, axis, out.shape[axis])
    if mode == "linear" and integer:
        # uint8/int8 interpolate to the nearest integer (the spec leaves this open;
        # the runtime's cast would truncate).
        input = np.rint(input)
    return input
