"""WebGPU kernels of averagePool2d, l2Pool2d and maxPool2d: one output element per invocation.

As the reference's, padding is no part of any window: each invocation loops over only the taps
that fall inside the input (their range along each axis computed, not searched, so a huge window or
padding costs nothing), average divides by their count, and a window wholly in the padding gives
the value of the empty set (max: -inf or the type's lowest, l2: 0, average: NaN).  The output's
size already says how the rounding went, so the kernel needs only the begin paddings.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...ops.conv import dims
from .conv import letter_strides, output_coords
from .kernels import Emitter, kernel
from .program import MapProgram, Slot

_FLOATS = ("float32", "float16")
_ALL = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")

# The taps k of one axis inside [0, size): start + k * dilation with k in [first, last].
_RANGE = """fn tap_range(start: i32, size: i32, window: i32, dilation: i32) -> vec2<i32> {
  var first = 0;
  if (start < 0) { first = (dilation - 1 - start) / dilation; }
  let room = size - 1 - start;  // compared, not added to: no overflow for huge windows
  let last = select(-1, min(window - 1, room / dilation), room >= 0);
  return vec2<i32>(first, last);
}
"""


def _windows(m: MapProgram, input: Slot, out: Slot, layout: str, window, padding, strides, dilations) -> str:
    """WGSL setting ``ry``/``rx`` (tap ranges), ``oy``/``ox`` (window starts) and ``xb`` (base index);
    a loop over the window's input elements ``e`` follows."""
    m.helper(_RANGE)
    load = m.input("x", input)
    lines, o = output_coords(m, out, layout)
    x = dims(input.shape, layout)
    xs = letter_strides(input.shape, layout)
    H, W, KH, KW = m.array((x["h"], x["w"], window[0], window[1]), "i")
    sy, sx, dy, dx, py, px = m.array((strides[0], strides[1], dilations[0], dilations[1], padding[0], padding[2]), "i")
    return (
        lines
        + f"  let oy = i32({o['h']}) * {sy} - {py};\n"
        + f"  let ox = i32({o['w']}) * {sx} - {px};\n"
        + f"  let ry = tap_range(oy, {H}, {KH}, {dy});\n"
        + f"  let rx = tap_range(ox, {W}, {KW}, {dx});\n"
        + f"  let xb = {o['n']} * {m.param(xs['n'])} + {o['c']} * {m.param(xs['c'])};\n"
        + "  for (var ky = ry.x; ky <= ry.y; ky++) {\n"
        + "    for (var kx = rx.x; kx <= rx.y; kx++) {\n"
        + f"      let e = xb + u32(oy + ky * {dy}) * {m.param(xs['h'])} + u32(ox + kx * {dx}) * {m.param(xs['w'])};\n"
        + f"      let v = {load}(e);\n"
    )


def _pool(k: Emitter, input: Slot, out: Slot, init: str, step: str, result: str, attrs: dict) -> None:
    m = k.map(out)
    head = _windows(
        m,
        input,
        out,
        attrs["layout"],
        attrs["window_dimensions"],
        attrs["padding"],
        attrs["strides"],
        attrs["dilations"],
    )
    m.body = f"  var acc = {init};\n" + head + f"      {step}\n    }}\n  }}\n  {result}"
    k.emit(m)


def _attrs(window_dimensions: Sequence[int], padding, strides, dilations, layout) -> dict:
    return {
        "window_dimensions": window_dimensions,
        "padding": padding,
        "strides": strides,
        "dilations": dilations,
        "layout": layout,
    }


@kernel("maxPool2d", input=_ALL, output=_ALL)
def max_pool2d(k: Emitter, input: Slot, *, out: Slot, window_dimensions, padding, strides, dilations, layout) -> None:
    scalar = k.map(out).scalar
    # The empty window's maximum: -inf, or the type's lowest (the store saturates int64 / narrower types).
    lowest = {"f32": "f32_bits(0xff800000u)", "i32": "(-2147483647 - 1)", "u32": "0u"}[scalar]
    step = "acc = max(acc, v);"
    if scalar == "f32":  # WGSL's max may drop a NaN; the reference's (NumPy) max keeps it
        step = "if (v != v || acc != acc) { acc = f32_bits(0x7fc00000u); } else { acc = max(acc, v); }"
    _pool(k, input, out, lowest, step, "return acc;", _attrs(window_dimensions, padding, strides, dilations, layout))


@kernel("l2Pool2d", input=_FLOATS, output=_FLOATS)
def l2_pool2d(k: Emitter, input: Slot, *, out: Slot, window_dimensions, padding, strides, dilations, layout) -> None:
    _pool(
        k,
        input,
        out,
        "0.0",
        "acc += v * v;",
        "return sqrt(acc);",
        _attrs(window_dimensions, padding, strides, dilations, layout),
    )


@kernel("averagePool2d", input=_FLOATS, output=_FLOATS)
def average_pool2d(
    k: Emitter, input: Slot, *, out: Slot, window_dimensions, padding, strides, dilations, layout
) -> None:
    # The count of input elements in the window; none: 0 / 0 = NaN, as the reference's.
    result = (
        "let count = f32(max(ry.y - ry.x + 1, 0) * max(rx.y - rx.x + 1, 0));\n"
        "  return select(acc / count, f32_bits(0x7fc00000u), count == 0.0);"
    )
    _pool(k, input, out, "0.0", "acc += v;", result, _attrs(window_dimensions, padding, strides, dilations, layout))
