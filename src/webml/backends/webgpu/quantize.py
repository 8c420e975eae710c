"""WebGPU kernels of quantizeLinear and dequantizeLinear, with block-wise scale and zeroPoint.

Each element reads the scale and zeroPoint of its block: coordinate ``c`` of dimension ``d`` falls
in block ``c / (input.shape[d] / scale.shape[d])``.  quantizeLinear rounds half to even (WGSL's
``round``) and adds the zero point exactly (the rounded quotient is split so the sum is exact in
32 bits, then saturated; NaN gives 0, as the reference's cast); the store saturates to the 8- and
4-bit ranges.  dequantizeLinear subtracts the zero point exactly where it fits, then scales in f32.
"""

from __future__ import annotations

from .kernels import kernel
from .program import MapProgram, Slot, strides
from .reduce import I64_HELPERS, IS_NAN

# round(x / scale) + zeroPoint, saturated to i32 / u32: the quotient (an integer in f32) is exact,
# so it is split around 2^31 where it does not fit in an i32 and summed in 64 bits.
_QUANTIZE_I32 = """fn q_i32(r: f32, z: i32) -> i32 {
  if (is_nan(r)) { return 0; }
  if (r >= 4294967296.0) { return 2147483647; }
  if (r <= -4294967296.0) { return -2147483647 - 1; }
  var a = vec2<u32>(0u, 0u);
  if (r >= 2147483648.0) {
    a = add_i64(vec2<u32>(0x80000000u, 0u), i32(r - 2147483648.0));
  } else if (r < -2147483648.0) {
    a = add_i64(vec2<u32>(0x80000000u, 0xffffffffu), -i32(-2147483648.0 - r));
  } else {
    a = add_i64(a, i32(r));
  }
  return sat_i64(add_i64(a, z));
}
"""
# roundEven(x / s) as the reference's float64 quotient gives it: an f32 quotient that is a tie may come
# from a quotient just off it, whose exact residual x - q * s (an fma; exact for a rounded quotient) tells.
_DIV_ROUND = """fn div_round(x: f32, s: f32) -> f32 {
  let q = x / s;
  let f = floor(q);
  if (q - f != 0.5) { return round(q); }
  let r = fma(-q, s, x);
  if (r == 0.0) { return round(q); }
  return select(f, f + 1.0, (r > 0.0) == (s > 0.0));
}
"""
_QUANTIZE_U32 = """fn q_u32(r: f32, z: u32) -> u32 {
  if (is_nan(r) || r <= -4294967296.0) { return 0u; }
  if (r >= 4294967296.0) { return 0xffffffffu; }
  if (r >= 0.0) {
    let s = u32(r) + z;
    return select(s, 0xffffffffu, s < z);
  }
  let n = u32(-r);
  return select(z - n, 0u, n > z);
}
"""


def _block(m: MapProgram, input: Slot, scale: Slot) -> tuple[str, str]:
    """Statements computing ``blk``, the flat index of element ``i``'s block in scale and zeroPoint."""
    pre, c = m.coords("i", input.shape)
    terms = [
        f"({name} / {m.param(size // blocks)}) * {m.param(st)}"
        for name, size, blocks, st in zip(c, input.shape, scale.shape, strides(scale.shape))
        if blocks > 1
    ]
    return pre + f"  let blk = {' + '.join(terms) if terms else '0u'};\n", "blk"


@kernel("quantizeLinear")
def quantize_linear(k, input: Slot, scale: Slot, zero_point: Slot, *, out: Slot) -> None:
    m = k.map(out)
    pre, blk = _block(m, input, scale)
    x, s, z = m.input("x", input), m.input("scale", scale), m.input("zp", zero_point)
    m.helper(IS_NAN)
    m.helper(I64_HELPERS)
    m.helper(_QUANTIZE_I32 if m.scalar == "i32" else _QUANTIZE_U32)
    m.helper(_DIV_ROUND)
    m.body = pre + f"  return q_{m.scalar}(div_round({x}(i), {s}({blk})), {z}({blk}));"
    k.emit(m)


@kernel("dequantizeLinear")
def dequantize_linear(k, input: Slot, scale: Slot, zero_point: Slot, *, out: Slot) -> None:
    m = k.map(out)
    pre, blk = _block(m, input, scale)
    x, s, z = m.input("x", input), m.input("scale", scale), m.input("zp", zero_point)
    lines = [pre + f"  let x = {x}(i);", f"  let z = {z}({blk});"]
    if input.data_type in ("uint32", "uint8", "uint4"):
        lines.append("  let d = select(f32(x - z), -f32(z - x), x < z);")
    else:
        # x - z overflows an i32 only for int32 operands of opposite signs: then both are rounded.
        lines.append("  let w = x - z;")
        lines.append("  let d = select(f32(w), f32(x) - f32(z), (x >= 0) != (z >= 0) && (w >= 0) != (x >= 0));")
    lines.append(f"  return d * {s}({blk});")
    m.body = "\n".join(lines)
    k.emit(m)
