"""Reference kernels of the pooling operators: averagePool2d, l2Pool2d, maxPool2d.

The input (NCHW; NHWC is transposed to it and back) is gathered into every
output's window, listing only the taps that fall inside the input, so a huge
window or padding costs no more than the input: (N, C, outH, outW, LH, LW).  The spec does not
say what padding contributes; as in Chromium's backends (and WPT's expected
values) padding elements are not part of any window: max ignores them,
average divides by the number of input elements in the window (padding is
excluded from the count), l2 sums the squares of input elements only.

With ``output_shape_rounding="ceil"`` (or large paddings) a window may lie
wholly in the padding.  The spec leaves its value open (webnn issue #935);
here it is that of the empty set: max -inf (the lowest value for integers,
saturated by the output cast), l2 0, average NaN (0 / 0).
"""

from __future__ import annotations

import numpy as np

from ...ops.conv import FROM_NCHW, TO_NCHW
from ...ops.pool import PoolGeometry, window_tap_indices
from .kernels import kernel


def _windows(x: np.ndarray, fill, geometry: PoolGeometry):
    """The (N, C, outH, outW, LH, LW) windows of NCHW ``x`` (taps outside it are ``fill``), and their counts."""
    (ih, mh), (iw, mw) = (window_tap_indices(*geometry.axis(d)) for d in (0, 1))
    windows = x[:, :, ih[:, :, None, None], iw[None, None, :, :]].transpose(0, 1, 2, 4, 3, 5)
    mask = mh[:, None, :, None] & mw[None, :, None, :]  # (outH, outW, LH, LW)
    return np.where(mask, windows, fill), mask.sum(axis=(-2, -1))


def _pool(reduce, input, fill, out, **attrs):
    """``reduce(windows, count)`` of every window of ``input``; ``count`` is the number of input
    elements in each window."""
    geometry = PoolGeometry.of(input.shape, out.shape, **attrs)
    result = reduce(*_windows(input.transpose(TO_NCHW[geometry.layout]), fill, geometry))
    return result.transpose(FROM_NCHW[geometry.layout])


@kernel("maxPool2d")
def max_pool2d(input, *, out, **attrs):
    lowest = -np.inf if input.dtype.kind == "f" else np.iinfo(input.dtype).min
    return _pool(lambda w, count: w.max(axis=(-2, -1)), input, lowest, out, **attrs)


@kernel("l2Pool2d")
def l2_pool2d(input, *, out, **attrs):
    # Padding adds nothing to the sum of squares.
    return _pool(lambda w, count: np.sqrt((w * w).sum(axis=(-2, -1))), input, 0.0, out, **attrs)


@kernel("averagePool2d")
def average_pool2d(input, *, out, **attrs):
    def average(windows: np.ndarray, count) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return windows.sum(axis=(-2, -1)) / count

    return _pool(average, input, 0.0, out, **attrs)
