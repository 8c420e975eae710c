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

from .lowering import Lowerer, Op, lowering

FLOATS = ("float32", "float16")

_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]
# Permutations bringing each filter layout to ONNX's.
_TO_OIHW = {"oihw": None, "hwio": [3, 2, 0, 1], "ohwi": [0, 3, 1, 2], "ihwo": [3, 0, 1, 2]}
_TO_IOHW = {"iohw": None, "hwoi": [3, 2, 0, 1], "ohwi": [3, 0, 1, 2]}


def _pads(padding) -> list[int]:
    top, bottom, left, right = padding
    return [top, left, bottom, right]


def _conv(lw: Lowerer, n: Op, op_type: str, filter_perm, **attrs) -> None:
    x, w, b = n.inputs
    nhwc = n.attrs["input_layout"] == "nhwc"
    if nhwc:
        x = lw.emit("Transpose", [x], perm=_NHWC_TO_NCHW)
    if filter_perm is not None:
        w = lw.emit("Transpose", [w], perm=filter_perm)
    inputs = [x, w] if b is None else [x, w, b]
    y = lw.emit(
        op_type,
        inputs,
        1 if nhwc else n.output,
        pads=_pads(n.attrs["padding"]),
        strides=list(n.attrs["strides"]),
        dilations=list(n.attrs["dilations"]),
        group=n.attrs["groups"],
        **attrs,
    )
    if nhwc:
        lw.emit("Transpose", [y], n.output, perm=_NCHW_TO_NHWC)


@lowering("conv2d", input=FLOATS)
def conv2d(lw: Lowerer, n: Op) -> None:
    _conv(lw, n, "Conv", _TO_OIHW[n.attrs["filter_layout"]])


@lowering("convTranspose2d", input=FLOATS)
def conv_transpose2d(lw: Lowerer, n: Op) -> None:
    shape = n.in_descs[0].shape
    h, w = (shape[2], shape[3]) if n.attrs["input_layout"] == "nchw" else (shape[1], shape[2])
    out = n.out_descs[0].shape
    oh, ow = (out[2], out[3]) if n.attrs["input_layout"] == "nchw" else (out[1], out[2])
    fshape = dict(zip(n.attrs["filter_layout"], n.in_descs[1].shape))
    padding, strides, dilations = n.attrs["padding"], n.attrs["strides"], n.attrs["dilations"]
    # The rows/columns the output has beyond the convtranspose output size
    # (output_padding, or what output_sizes add): ONNX's output_padding.
    extra = [
        size - ((inp - 1) * s + (k - 1) * d + 1 - begin - end)
        for size, inp, k, s, d, begin, end in (
            (oh, h, fshape["h"], strides[0], dilations[0], padding[0], padding[1]),
            (ow, w, fshape["w"], strides[1], dilations[1], padding[2], padding[3]),
        )
    ]
    _conv(lw, n, "ConvTranspose", _TO_IOHW[n.attrs["filter_layout"]], output_padding=extra if any(extra) else None)
