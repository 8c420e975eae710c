"""Reference kernel of resample2d.

The coordinate mapping is :mod:`webml.ops.resample`'s.  Both modes are
separable, so each axis is resampled in turn by gathering along it: first
the second axis (the spec's x), then the first (y), which is the spec's
order for linear (interpolate along x, then along y).
"""

from __future__ import annotations

import numpy as np

from ...ops.resample import linear_taps, nearest_indices
from .kernels import kernel


def _nearest(x: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    return np.take(x, nearest_indices(x.shape[axis], out_size), axis=axis)


def _linear(x: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    i0, i1, t = linear_taps(x.shape[axis], out_size)
    t = t.reshape([-1 if d == axis else 1 for d in range(x.ndim)])
    return np.take(x, i0, axis=axis) * (1 - t) + np.take(x, i1, axis=axis) * t
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
