"""WebGPU kernels of conv2d and convTranspose2d: one output element per invocation.

Layouts are only strides: the output element's (n, c, y, x) come from its flat index in the input
layout, and the input and filter are read through the strides of their layouts' letters, so every
layout pair is the same loop.  conv2d gathers its window; convTranspose2d gathers too (the adjoint
of the scatter): output (y, x) takes input (iy, ix) through tap (i, j) where
``iy * stride + i * dilation - padBegin == y``, i.e. where ``y + padBegin - i * dilation`` is a
non-negative multiple of the stride.  Sums are f32 (float16 operands too).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...ops.conv import dims
from .kernels import Emitter, kernel
from .program import MapProgram, Slot, strides

_FLOATS = ("float32", "float16")


def letter_strides(shape: Sequence[int], layout: str) -> dict[str, int]:
    """The element stride of each of ``layout``'s letters."""
    return dict(zip(layout, strides(shape)))


def output_coords(m: MapProgram, out: Slot, layout: str) -> tuple[str, dict[str, str]]:
    """WGSL splitting the output index ``i`` into its coordinates, named by ``layout``'s letters."""
    lines, names = m.coords("i", out.shape, "oc")
    return lines, dict(zip(layout, names))


def _bias(m: MapProgram, bias: Slot | None, channel: str) -> str:
    return "" if bias is None else f" + f32({m.input('bias', bias)}({channel}))"


@kernel("conv2d", input=_FLOATS, filter=_FLOATS, bias=_FLOATS, output=_FLOATS)
def conv2d(
    k: Emitter,
    input: Slot,
    filter: Slot,
    bias: Slot | None = None,
    *,
    out: Slot,
    padding: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    groups: int,
    input_layout: str,
    filter_layout: str,
) -> None:
    m = k.map(out)
    load_x, load_w = m.input("x", input), m.input("w", filter)
    lines, o = output_coords(m, out, input_layout)
    x, f = dims(input.shape, input_layout), dims(filter.shape, filter_layout)
    xs, fs = letter_strides(input.shape, input_layout), letter_strides(filter.shape, filter_layout)
    cg, og = x["c"] // groups, f["o"] // groups
    H, W, KH, KW = m.array((x["h"], x["w"], f["h"], f["w"]), "i")
    sy, sx, dy, dx, py, px = m.array((strides[0], strides[1], dilations[0], dilations[1], padding[0], padding[2]), "i")
    m.body = (
        lines
        + f"  let c0 = ({o['c']} / {m.param(og)}) * {m.param(cg)};\n"
        + f"  let y0 = i32({o['h']}) * {sy} - {py};\n"
        + f"  let x0 = i32({o['w']}) * {sx} - {px};\n"
        + f"  let xb = {o['n']} * {m.param(xs['n'])};\n"
        + f"  let wb = {o['c']} * {m.param(fs['o'])};\n"
        + "  var acc = 0.0;\n"
        + f"  for (var ky = 0; ky < {KH}; ky++) {{\n"
        + f"    let iy = y0 + ky * {dy};\n"
        + f"    if (iy < 0 || iy >= {H}) {{ continue; }}\n"
        + f"    for (var kx = 0; kx < {KW}; kx++) {{\n"
        + f"      let ix = x0 + kx * {dx};\n"
        + f"      if (ix < 0 || ix >= {W}) {{ continue; }}\n"
        + f"      let xe = xb + u32(iy) * {m.param(xs['h'])} + u32(ix) * {m.param(xs['w'])};\n"
        + f"      let we = wb + u32(ky) * {m.param(fs['h'])} + u32(kx) * {m.param(fs['w'])};\n"
        + f"      for (var ci = 0u; ci < {m.param(cg)}; ci++) {{\n"
        + f"        let xv = f32({load_x}(xe + (c0 + ci) * {m.param(xs['c'])}));\n"
        + f"        acc += xv * f32({load_w}(we + ci * {m.param(fs['i'])}));\n"
        + "      }\n"
        + "    }\n"
        + "  }\n"
        + f"  return acc{_bias(m, bias, o['c'])};"
    )
    k.emit(m)


@kernel("convTranspose2d", input=_FLOATS, filter=_FLOATS, bias=_FLOATS, output=_FLOATS)
def conv_transpose2d(
    k: Emitter,
    input: Slot,
    filter: Slot,
    bias: Slot | None = None,
    *,
    out: Slot,
    padding: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    groups: int,
    input_layout: str,
    filter_layout: str,
) -> None:
    m = k.map(out)
    load_x, load_w = m.input("x", input), m.input("w", filter)
    lines, o = output_coords(m, out, input_layout)
    x, f = dims(input.shape, input_layout), dims(filter.shape, filter_layout)
    xs, fs = letter_strides(input.shape, input_layout), letter_strides(filter.shape, filter_layout)
    og = f["o"]  # output channels per group
    cg = x["c"] // groups  # input channels per group (the builder leaves a remainder possible; none is read)
    H, W, KH, KW = m.array((x["h"], x["w"], f["h"], f["w"]), "i")
    sy, sx, dy, dx, py, px = m.array((strides[0], strides[1], dilations[0], dilations[1], padding[0], padding[2]), "i")
    m.body = (
        lines
        + f"  let grp = {o['c']} / {m.param(og)};\n"
        + f"  let c0 = grp * {m.param(cg)};\n"
        + f"  let ty0 = i32({o['h']}) + {py};\n"
        + f"  let tx0 = i32({o['w']}) + {px};\n"
        + f"  let xb = {o['n']} * {m.param(xs['n'])};\n"
        + f"  let wb = ({o['c']} % {m.param(og)}) * {m.param(fs['o'])};\n"
        + "  var acc = 0.0;\n"
        + f"  for (var ky = 0; ky < {KH}; ky++) {{\n"
        + f"    let ty = ty0 - ky * {dy};\n"
        + f"    if (ty < 0 || ty % {sy} != 0 || ty / {sy} >= {H}) {{ continue; }}\n"
        + f"    for (var kx = 0; kx < {KW}; kx++) {{\n"
        + f"      let tx = tx0 - kx * {dx};\n"
        + f"      if (tx < 0 || tx % {sx} != 0 || tx / {sx} >= {W}) {{ continue; }}\n"
        + f"      let xe = xb + u32(ty / {sy}) * {m.param(xs['h'])} + u32(tx / {sx}) * {m.param(xs['w'])};\n"
        + f"      let we = wb + u32(ky) * {m.param(fs['h'])} + u32(kx) * {m.param(fs['w'])};\n"
        + f"      for (var ci = 0u; ci < {m.param(cg)}; ci++) {{\n"
        + "        let c = c0 + ci;\n"
        + f"        acc += f32({load_x}(xe + c * {m.param(xs['c'])})) * f32({load_w}(we + c * {m.param(fs['i'])}));\n"
        + "      }\n"
        + "    }\n"
        + "  }\n"
        + f"  return acc{_bias(m, bias, o['c'])};"
    )
    k.emit(m)
