"""ONNX lowerings of the conv operators: conv2d and convTranspose2d.

Both map to one ONNX Conv / ConvTranspose on NCHW: an nhwc input is
transposed in and the result back, and the filter is transposed to ONNX's
layout (Conv: oihw; ConvTranspose: iohw, i.e. [C_in, C_out / groups, kH, kW]).
A constant filter's Transpose is folded by ONNX Runtime's optimizer.

webml's padding is [top, bottom, left, right]; ONNX's pads are
[top, left, bottom, right].  convTranspose2d's output_sizes become ONNX
output_padding (the extra rows/columns at the end), which is what the ops
rule's output size already includes, so explicit pads and output_padding
always reproduce the output descriptor's shape.
"""

from __future__ import annotations

from collections.abc import Callable

from ...ops.checks import FLOATS
from ...ops.conv import FROM_NCHW, IDENTITY, TO_IOHW, TO_NCHW, TO_OIHW, conv_transpose_output_size, spatial
from .lowering import Arg, Lowerer, lowering


def transposed(lw: Lowerer, value: str, order: tuple[int, ...]) -> str:
    """``value`` transposed by ``order`` (``value`` itself for the identity)."""
    return value if order == IDENTITY else lw.emit("Transpose", [value], perm=list(order))


def in_nchw(lw: Lowerer, input: Arg, out: Arg, layout: str, compute: Callable[[str, str | int], str]) -> None:
    """``compute(x, y)`` on the nchw ``x`` of ``input`` (in ``layout``), into ``y``: ``out`` itself, or a fresh
    value (1) that is transposed back to ``layout`` into ``out``."""
    y = compute(transposed(lw, input, TO_NCHW[layout]), out if layout == "nchw" else 1)
    if layout != "nchw":
        lw.emit("Transpose", [y], out, perm=list(FROM_NCHW[layout]))


def _conv(
    lw: Lowerer,
    op_type: str,
    input: Arg,
    filter: str,
    bias: Arg | None,
    out: Arg,
    *,
    padding,
    strides,
    dilations,
    groups,
    input_layout,
    **attrs,
) -> None:
    """``op_type`` (Conv or ConvTranspose) of the ONNX-layout ``filter``, on nchw."""
    top, bottom, left, right = padding
    onnx_attrs = dict(
        pads=[top, left, bottom, right], strides=list(strides), dilations=list(dilations), group=groups, **attrs
    )
    in_nchw(lw, input, out, input_layout, lambda x, y: lw.emit(op_type, [x, filter, bias], y, **onnx_attrs))


@lowering("conv2d", input=FLOATS)
def conv2d(lw: Lowerer, input: Arg, filter: Arg, bias: Arg | None = None, *, out: Arg, filter_layout, **attrs) -> None:
    _conv(lw, "Conv", input, transposed(lw, filter, TO_OIHW[filter_layout]), bias, out, **attrs)


def _output_padding(
    input: Arg, filter: Arg, out: Arg, *, padding, strides, dilations, input_layout, filter_layout, **_
) -> list[int]:
    """The rows/columns the output has beyond the convtranspose output size (output_padding, or what
    output_sizes add): ONNX's output_padding."""
    geometry = zip(
        spatial(out.shape, input_layout),
        spatial(input.shape, input_layout),
        spatial(filter.shape, filter_layout),
        (padding[0:2], padding[2:4]),
        strides,
        dilations,
    )
    return [size - conv_transpose_output_size(i, k, begin, end, s, d) for size, i, k, (begin, end), s, d in geometry]


@lowering("convTranspose2d", input=FLOATS)
def conv_transpose2d(
    lw: Lowerer, input: Arg, filter: Arg, bias: Arg | None = None, *, out: Arg, filter_layout, **attrs
) -> None:
    extra = _output_padding(input, filter, out, filter_layout=filter_layout, **attrs)
    w = transposed(lw, filter, TO_IOHW[filter_layout])
    _conv(lw, "ConvTranspose", input, w, bias, out, output_padding=extra if any(extra) else None, **attrs)
