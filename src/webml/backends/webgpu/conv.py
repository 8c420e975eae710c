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
from . import linalg
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


def _tiled_conv(k: Emitter, input, filter, bias, out, padding, strides, dilations, groups, input_layout, filter_layout):
    """conv2d as an implicit matrix product on :class:`~.linalg.TiledMatmul` (float32, one group):
    rows the output pixels (n, y, x), columns the output channels, the reduction the filter taps
    (c, ky, kx) in the order the filter layout stores them, so the filter is a strided matrix (every
    conv2d filter layout keeps i, h, w adjacent) and only the input needs ``a_at``.  Returns whether
    it emitted the product."""
    slots = [input, filter, out] + ([] if bias is None else [bias])
    if groups != 1 or {s.data_type for s in slots} != {"float32"} or linalg.FORCE == "plain":
        return False
    x, f = dims(input.shape, input_layout), dims(filter.shape, filter_layout)
    fs = letter_strides(filter.shape, filter_layout)
    oh, ow = dims(out.shape, input_layout)["h"], dims(out.shape, input_layout)["w"]
    rows, cols, depth = x["n"] * oh * ow, f["o"], x["c"] * f["h"] * f["w"]
    if linalg.FORCE is None and rows * cols * depth < linalg.TILED_MIN_WORK:
        return False
    taps = [d for d in filter_layout if d != "o"]  # i, h, w in storage order: k's digits, slowest first
    b = linalg.Operand(filter, fs[taps[-1]], fs["o"], ())
    c = None if bias is None else linalg.Operand(bias, 0, 1, ())
    t = linalg.TiledMatmul(linalg.Product(out, linalg.Operand(input, 0, 0, ()), b, c, rows, depth, cols, ()))
    q = t.params.add
    xs = letter_strides(input.shape, input_layout)
    size = {"i": q(x["c"]), "h": q(f["h"]), "w": q(f["w"])}
    digit = {"i": "c", "h": "ky", "w": "kx"}
    lines = ["  var r = k;"]
    for d in reversed(taps):
        lines.append(f"  let {digit[d]} = r % {size[d]};")
        lines.append(f"  r = r / {size[d]};")
    OW, OH = q(ow), q(oh)
    a_at = "\n".join(lines) + (
        f"\n  let ox = row % {OW};\n  let oy = (row / {OW}) % {OH};\n  let n = row / ({OW} * {OH});\n"
        f"  let iy = i32(oy) * {q(strides[0], 'i')} - {q(padding[0], 'i')} + i32(ky) * {q(dilations[0], 'i')};\n"
        f"  let ix = i32(ox) * {q(strides[1], 'i')} - {q(padding[2], 'i')} + i32(kx) * {q(dilations[1], 'i')};\n"
        f"  if (iy < 0 || iy >= {q(x['h'], 'i')} || ix < 0 || ix >= {q(x['w'], 'i')}) {{ return 0.0; }}\n"
        f"  return buf_a[n * {q(xs['n'])} + u32(iy) * {q(xs['h'])} + u32(ix) * {q(xs['w'])} + c * {q(xs['c'])}];"
    )
    out_at = None
    if input_layout == "nchw":  # rows are (n, y, x): the channel sits between n and the pixel
        pixels = q(oh * ow)
        out_at = f"  return (row / {pixels}) * {q(cols * oh * ow)} + col * {pixels} + row % {pixels};"
    t.a_at, t.out_at = a_at, out_at
    t.vec_out = t.vec_out and out_at is None
    k.steps.append(t.step("conv2d-tiled"))
    return True


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
    if _tiled_conv(k, input, filter, bias, out, padding, strides, dilations, groups, input_layout, filter_layout):
        return
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
