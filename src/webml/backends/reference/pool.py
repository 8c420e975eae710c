"""Reference kernels of the pooling operators: averagePool2d, l2Pool2d, maxPool2d.

The input (NCHW; NHWC is transposed to it and back) is padded to exactly the
extent the output's windows span, and ``sliding_window_view`` gives every
window as a view: (N, C, outH, outW, windowH, windowW).  The spec does not
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
from numpy.lib.stride_tricks import sliding_window_view

from .kernels import kernel


def _padded(x: np.ndarray, fill, out_hw, window_dimensions, padding, strides, dilations) -> np.ndarray:
    """Pad (or crop) the spatial dims of NCHW ``x`` to the span of the ``out_hw`` windows."""
    widths = [(0, 0), (0, 0)]
    for d in (0, 1):
        axis, begin = 2 + d, padding[2 * d]
        span = (out_hw[d] - 1) * strides[d] + (window_dimensions[d] - 1) * dilations[d] + 1
        end = span - begin - x.shape[axis]
        if end < 0:
            # Trailing rows/columns that no window reaches (floor rounding): drop them.
            x = x[(slice(None),) * axis + (slice(0, max(x.shape[axis] + end, 0)),)]
            end = max(span - begin - x.shape[axis], 0)
        widths.append((begin, end))
    return np.pad(x, widths, constant_values=fill)


def _windows(xp: np.ndarray, out_hw, window_dimensions, padding, strides, dilations) -> np.ndarray:
    """The (N, C, outH, outW, windowH, windowW) view of the windows of padded ``xp``."""
    effective = [(k - 1) * d + 1 for k, d in zip(window_dimensions, dilations)]
    view = sliding_window_view(xp, effective, axis=(2, 3))
    return view[
        :,
        :,
        : (out_hw[0] - 1) * strides[0] + 1 : strides[0],
        : (out_hw[1] - 1) * strides[1] + 1 : strides[1],
        :: dilations[0],
        :: dilations[1],
    ]


def _pool(reduce, x, fill, out, layout, **geometry):
    """``reduce(windows, count)`` of every window of ``x`` (padded with ``fill``) in ``layout``.

    ``count()`` gives the number of input elements in each window.
    """
    if layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    out_hw = out.shape[2:] if layout == "nchw" else out.shape[1:3]

    def windows(a: np.ndarray, fill) -> np.ndarray:
        return _windows(_padded(a, fill, out_hw, **geometry), out_hw, **geometry)

    def count() -> np.ndarray:
        return windows(np.ones((1, 1, *x.shape[2:])), 0.0).sum(axis=(-2, -1))

    result = reduce(windows(x, fill), count)
    return result.transpose(0, 2, 3, 1) if layout == "nhwc" else result


@kernel("maxPool2d")
def max_pool2d(x, *, out, layout, **geometry):
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    return _pool(lambda w, count: w.max(axis=(-2, -1)), x, lowest, out, layout, **geometry)


@kernel("l2Pool2d")
def l2_pool2d(x, *, out, layout, **geometry):
    # Padding adds nothing to the sum of squares.
    return _pool(lambda w, count: np.sqrt((w * w).sum(axis=(-2, -1))), x, 0.0, out, layout, **geometry)


@kernel("averagePool2d")
def average_pool2d(x, *, out, layout, **geometry):
    def average(windows: np.ndarray, count) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return windows.sum(axis=(-2, -1)) / count()

    return _pool(average, x, 0.0, out, layout, **geometry)
