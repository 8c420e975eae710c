"""WebGPU kernel of resample2d: one output element per invocation, the coordinate mapping in integers.

Output coordinate ``o`` of an axis of ``in -> out`` maps to ``c = clamp(((2o + 1) * in - out) / (2 * out),
0, in - 1)`` (:mod:`webml.ops.resample`).  nearest-neighbor takes ``ceil(c - 0.5)`` as an exact integer
division; linear takes ``floor(c)`` by integer division too and its weight from the exact remainder,
so only the weight is rounded (once).  Linear interpolates along ``axes[1]`` then ``axes[0]``, as the
reference does, and rounds integer results half to even.  The integer products hold while
``2 * out * in < 2^31`` per axis (any tensor of 128 MiB or less that resizes one axis by less than
about 30,000 x 30,000).
"""

from __future__ import annotations

from collections.abc import Sequence

from .kernels import Emitter, kernel
from .program import Slot, strides

_TYPES = ("float32", "float16", "uint8", "int8")

# Index of nearest-neighbor: ceil(((2o + 1) * in - 2 * out) / (2 * out)), clamped to [0, in - 1].
_NEAREST = """fn nearest(o: i32, n_in: i32, n_out: i32) -> i32 {
  let num = (2 * o + 1) * n_in - 2 * n_out;
  let den = 2 * n_out;
  var q = num / den;  // truncates toward zero: the ceiling for a negative numerator
  if (num > 0 && q * den != num) { q += 1; }
  return clamp(q, 0, n_in - 1);
}
"""

# (floor(c), ceil(c), c - floor(c)) of linear.
_LINEAR = """struct Taps { lo: i32, hi: i32, t: f32 }
fn linear_taps(o: i32, n_in: i32, n_out: i32) -> Taps {
  let num = (2 * o + 1) * n_in - n_out;
  let den = 2 * n_out;
  if (num <= 0) { return Taps(0, 0, 0.0); }
  let lo = num / den;
  if (lo >= n_in - 1) { return Taps(n_in - 1, n_in - 1, 0.0); }
  let r = num - lo * den;
  return Taps(lo, select(lo, lo + 1, r != 0), f32(r) / f32(den));
}
"""


@kernel("resample2d", input=_TYPES, output=_TYPES)
def resample2d(k: Emitter, input: Slot, *, out: Slot, mode: str, axes: Sequence[int]) -> None:
    m = k.map(out)
    load = m.input("x", input)
    lines, c = m.coords("i", out.shape)
    ya, xa = axes
    in_strides = m.array(strides(input.shape))
    # The input index with the two resampled axes left out.
    base = " + ".join(f"{c[d]} * {in_strides[d]}" for d in range(4) if d not in axes) or "0u"
    hy, wy = m.param(input.shape[ya], "i"), m.param(out.shape[ya], "i")
    hx, wx = m.param(input.shape[xa], "i"), m.param(out.shape[xa], "i")
    sy, sx = in_strides[ya], in_strides[xa]
    body = lines + f"  let b = {base};\n"
    if mode == "nearest-neighbor":
        m.helper(_NEAREST)
        body += (
            f"  let iy = u32(nearest(i32({c[ya]}), {hy}, {wy}));\n"
            f"  let ix = u32(nearest(i32({c[xa]}), {hx}, {wx}));\n"
            f"  return {load}(b + iy * {sy} + ix * {sx});"
        )
    else:
        m.helper(_LINEAR)
        body += (
            f"  let ty = linear_taps(i32({c[ya]}), {hy}, {wy});\n"
            f"  let tx = linear_taps(i32({c[xa]}), {hx}, {wx});\n"
            f"  let r0 = b + u32(ty.lo) * {sy};\n"
            f"  let r1 = b + u32(ty.hi) * {sy};\n"
            f"  let x0 = u32(tx.lo) * {sx};\n"
            f"  let x1 = u32(tx.hi) * {sx};\n"
            f"  let top = f32({load}(r0 + x0)) * (1.0 - tx.t) + f32({load}(r0 + x1)) * tx.t;\n"
            f"  let bottom = f32({load}(r1 + x0)) * (1.0 - tx.t) + f32({load}(r1 + x1)) * tx.t;\n"
            "  let v = top * (1.0 - ty.t) + bottom * ty.t;\n"
        )
        # Integers: to the nearest, ties to even (the store saturates to the type's range).
        body += "  return v;" if m.scalar == "f32" else f"  return {m.scalar}(round(v));"
    m.body = body
    k.emit(m)
