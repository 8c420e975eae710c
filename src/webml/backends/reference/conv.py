"""Reference kernels of the conv operators: conv2d and convTranspose2d.

Both work on nchw inputs and canonical filters (oihw for conv2d, iohw for
convTranspose2d), transposing other layouts in and the output back.  They
loop over the kh x kw filter taps only: each tap is one strided slice of the
(padded) input or output, combined with the tap's channel matrix per group
by einsum.
"""

from __future__ import annotations

import numpy as np

from ...ops.conv import FROM_NCHW, TO_IOHW, TO_NCHW, TO_OIHW, conv_transpose_output_size, spatial
from .kernels import kernel


def _taps(size: int, stride: int, start: int) -> slice:
    """The ``size`` positions start, start + stride, ... of one filter tap along an axis."""
    return slice(start, start + (size - 1) * stride + 1, stride)


def _finish(result: np.ndarray, bias, input_layout: str) -> np.ndarray:
    if bias is not None:
        result = result + bias[None, :, None, None]
    return result.transpose(FROM_NCHW[input_layout])


@kernel("conv2d")
def conv2d(input, filter, bias=None, *, out, padding, strides, dilations, groups, input_layout, filter_layout):
    x = input.transpose(TO_NCHW[input_layout])
    w = filter.transpose(TO_OIHW[filter_layout])  # [O, C/groups, kh, kw]
    n, c, _, _ = x.shape
    o, _, kh, kw = w.shape
    oh, ow = spatial(out.shape, input_layout)
    # Zero padding; the output never reads past it, a floored size may leave some unread.
    x = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[1]), (padding[2], padding[3])))
    x = x.reshape(n, groups, c // groups, *x.shape[2:])
    w = w.reshape(groups, o // groups, c // groups, kh, kw)
    result = np.zeros((n, groups, o // groups, oh, ow))
    for i in range(kh):
        rows = _taps(oh, strides[0], i * dilations[0])
        for j in range(kw):
            cols = _taps(ow, strides[1], j * dilations[1])
            result += np.einsum("ngchw,goc->ngohw", x[:, :, :, rows, cols], w[:, :, :, i, j])
    return _finish(result.reshape(n, o, oh, ow), bias, input_layout)


@kernel("convTranspose2d")
def conv_transpose2d(
    input, filter, bias=None, *, out, padding, strides, dilations, groups, input_layout, filter_layout
):
    """Scatter-add: input pixel (y, x) times tap (i, j) lands on (y * stride + i * dilation - padding, ...)."""
    x = input.transpose(TO_NCHW[input_layout])
    w = filter.transpose(TO_IOHW[filter_layout])  # [C, O/groups, kh, kw]
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    if c % groups != 0:
        # The spec's steps accept it (WPT builds one), but no grouping of the channels exists.
        raise ValueError(f"convTranspose2d: input channels {c} are not divisible by groups {groups}")
    oh, ow = spatial(out.shape, input_layout)
    # The full (unpadded) result, extended at the end for output_padding / output_sizes.
    full_h = max(conv_transpose_output_size(h, kh, 0, 0, strides[0], dilations[0]), padding[0] + oh)
    full_w = max(conv_transpose_output_size(wd, kw, 0, 0, strides[1], dilations[1]), padding[2] + ow)
    x = x.reshape(n, groups, c // groups, h, wd)
    w = w.reshape(groups, c // groups, og, kh, kw)
    full = np.zeros((n, groups, og, full_h, full_w))
    for i in range(kh):
        rows = _taps(h, strides[0], i * dilations[0])
        for j in range(kw):
            cols = _taps(wd, strides[1], j * dilations[1])
            full[:, :, :, rows, cols] += np.einsum("ngchw,gco->ngohw", x, w[:, :, :, i, j])
    result = full[:, :, :, padding[0] : padding[0] + oh, padding[2] : padding[2] + ow]
    return _finish(result.reshape(n, groups * og, oh, ow), bias, input_layout)
