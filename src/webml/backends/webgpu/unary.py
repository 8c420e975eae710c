"""WebGPU kernels of the element-wise unary operations.

Float types compute in f32 (float16 too, rounded once by the store).  exp, log and erf are
written out here rather than taken from WGSL's built-ins, whose accuracy the spec leaves to
the implementation (lavapipe's are a few ULP off at best): range reduction by ln 2 in two
parts, short polynomials on the reduced argument, and for erf/erfc a fit of
``erfc(t) * exp(t^2)`` with ``exp(-t^2)`` computed from an exact split of ``t^2``.  The
activation family uses the same helpers (:data:`EXP`, :data:`EXPM1`, :data:`LOG1P`,
:data:`ERFC`).  NaN is always found from the bits (:data:`IS_NAN`): a compiler may assume
float comparisons never see one.

Integer variants (abs, neg, sign) compute in 32 bits, and int64 (like identity of a 64-bit
type) exactly on the element's two words (:attr:`~.program.MapProgram.wide`); abs and neg of
the type's minimum saturate, as the reference's cast does.
"""

from __future__ import annotations

from typing import Any

from .kernels import Emitter, kernel
from .program import Slot

__all__ = [
    "ERF",
    "ERFC",
    "EXP",
    "EXPM1",
    "EXP_DIFF",
    "IS_NAN",
    "LESS64",
    "LOG",
    "LOG1P",
    "LOG1P_SMALL",
    "exp_helpers",
    "is_wide",
    "words_input",
]

IS_NAN = """fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
"""

# exp(x) = 2^k * exp(r), x = k ln2 + r with ln2 in two parts (the high part has 17 bits, so
# k * LN2_HI is exact), |r| <= ln2 / 2, exp(r) by its Taylor polynomial (error < 6e-9).
# ldexp in two halves: 2^k alone may overflow where the product does not.
EXP = """fn exp_acc(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (x > 88.72284) { return f32_bits(0x7f800000u); }
  if (x < -103.97208) { return 0.0; }
  let k = round(x * 1.44269504);
  let r = (x - k * 0.693145751953125) - k * 1.42860682e-6;
  let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.166666667 + r * (0.0416666667 + r * (0.00833333333
    + r * (0.00138888889 + r * 0.000198412698))))));
  let n = i32(k);
  return ldexp(ldexp(p, n / 2), n - n / 2);
}
"""

# exp(x - y) without the rounding error of x - y (which exp magnifies |x - y|-fold: 100 ULP at 160):
# x and y reduced by ln 2 each (exactly, |x|, |y| <= 300), exp of the difference of the small remainders.
EXP_DIFF = """fn exp_diff(x: f32, y: f32) -> f32 {
  if (!(abs(x) <= 300.0 && abs(y) <= 300.0) || is_nan(x) || is_nan(y)) { return exp_acc(x - y); }
  let kx = round(x * 1.44269504);
  let ky = round(y * 1.44269504);
  let rx = (x - kx * 0.693145751953125) - kx * 1.42860682e-6;
  let ry = (y - ky * 0.693145751953125) - ky * 1.42860682e-6;
  let n = i32(kx) - i32(ky);
  return ldexp(ldexp(exp_acc(rx - ry), n / 2), n - n / 2);
}
"""

# expm1 without the cancellation of exp(x) - 1 near 0: its Taylor polynomial there.
EXPM1 = """fn expm1_acc(x: f32) -> f32 {
  if (abs(x) < 0.35) {
    return x + x * x * (0.5 + x * (0.166666667 + x * (0.0416666667 + x * (0.00833333333 + x * (0.00138888889
      + x * (0.000198412698 + x * (2.48015873e-5 + x * 2.75573192e-6)))))));
  }
  return exp_acc(x) - 1.0;
}
"""

# log(x) = e ln2 + log1p(f), x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).
LOG = """fn log_acc(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u || b == 0x7f800000u) { return x; }
  if ((b & 0x7fffffffu) == 0u) { return f32_bits(0xff800000u); }
  if (b >= 0x80000000u) { return f32_bits(0x7fc00000u); }
  var bb = b;
  var e = -127;
  if (bb < 0x00800000u) {
    bb = bitcast<u32>(x * 33554432.0);
    e = e - 25;
  }
  e = e + i32(bb >> 23u);
  var m = bitcast<f32>((bb & 0x007fffffu) | 0x3f800000u);
  if (m > 1.41421356) {
    m = m * 0.5;
    e = e + 1;
  }
  let ef = f32(e);
  return ef * 0.693145751953125 + (log1p_small(m - 1.0) + ef * 1.42860682e-6);
}
"""

# log1p(f) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: 2 atanh(s), s = f / (2 + f), |s| < 0.172, from f itself
# (never from a rounded 1 + f: this compiler folds (1 + f) - 1 to f, so the usual correction fails).
LOG1P_SMALL = """fn log1p_small(f: f32) -> f32 {
  let s = f / (2.0 + f);
  let z = s * s;
  return 2.0 * s + s * z * (0.666666667 + z * (0.4 + z * (0.285714286 + z * (0.222222222 + z * 0.181818182))));
}
"""

# log1p(y), y > -1: the small-argument form where 1 + y is near 1, log of the rounded 1 + y beyond.
LOG1P = """fn log1p_acc(y: f32) -> f32 {
  if (y > -0.29289321 && y < 0.41421356) { return log1p_small(y); }
  return log_acc(1.0 + y);
}
"""

# erfc(t) * exp(t^2) = s * exp(P(s)), s = 1 / (1 + t/2), for t >= 0: P fitted (degree 12,
# error 6e-9) to log(erfc(t) exp(t^2) / s) in float64.  exp(-x^2 * half) (half 1 or 0.5) from
# x = h + l, h with 12 significand bits: h * h is exact and x^2 - h^2 = l * (x + h).
ERFC = """fn erfc_scaled(t: f32) -> f32 {
  let s = 1.0 / (1.0 + 0.5 * t);
  let p = -1.26551212 + s * (0.999997863 + s * (0.375115500 + s * (0.0808380260 + s * (-0.0579475043
    + s * (-0.328734602 + s * (0.677043986 + s * (-2.03400798 + s * (3.67656368 + s * (-3.53941465
    + s * (1.87515825 + s * (-0.515114533 + s * 0.0560140727)))))))))));
  return s * exp_acc(p);
}
fn exp_neg_sq(x: f32, half: f32) -> f32 {
  let h = bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);
  let l = x - h;
  return exp_acc(-(h * h) * half) * exp_acc(-(l * (x + h)) * half);
}
fn erfc_acc(t: f32) -> f32 {
  if (t > 10.0) { return 0.0; }
  return erfc_scaled(t) * exp_neg_sq(t, 1.0);
}
"""

# erf: its Taylor series below 1 (alternating, terms < 1e-10 by the 12th), 1 - erfc above.
ERF = """fn erf_acc(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let t = abs(x);
  if (t < 1.0) {
    let z = x * x;
    return x * (1.12837917 + z * (-0.376126389 + z * (0.112837917 + z * (-0.0268661707 + z * (0.00522397762
      + z * (-0.000854832702 + z * (0.00012055333 + z * (-1.49256504e-5 + z * (1.64621144e-6
      + z * (-1.63658447e-7 + z * (1.48071928e-8 + z * -1.22905553e-9)))))))))));
  }
  let r = 1.0 - erfc_acc(t);
  return select(r, -r, x < 0.0);
}
"""


def exp_helpers(m: Any, *names: str) -> None:
    """Add the WGSL helpers ``names`` (of this module) to program ``m`` with those they call, in order."""
    needs = {
        "EXP": ("IS_NAN",),
        "EXP_DIFF": ("EXP",),
        "EXPM1": ("EXP",),
        "LOG": ("LOG1P_SMALL",),
        "LOG1P": ("LOG",),
        "ERFC": ("EXP",),
        "ERF": ("ERFC",),
    }
    for name in names:
        exp_helpers(m, *needs.get(name, ()))
        m.helper(globals()[name])


# -- 64-bit integers as two words (lo, hi): exact, where a 32-bit load would saturate ---------------

_WORDS = """fn words_{name}(e: u32) -> vec2<u32> {{ return vec2<u32>(buf_{name}[2u * e], buf_{name}[2u * e + 1u]); }}
"""

#: ``less_<type>(a, b)``: a < b of two 64-bit values (signed or unsigned high words, unsigned low).
LESS64 = """fn less_{t}(a: vec2<u32>, b: vec2<u32>) -> bool {{
  let ah = {cast}(a.y);
  let bh = {cast}(b.y);
  return ah < bh || (ah == bh && a.x < b.x);
}}
"""


def is_wide(slot: Slot) -> bool:
    """Whether ``slot`` holds a 64-bit integer type."""
    return slot.data_type in ("int64", "uint64")


def words_input(m: Any, name: str, slot: Slot) -> str:
    """Bind 64-bit ``slot`` as input ``name``; returns ``words_<name>``, element e as vec2<u32>(lo, hi)."""
    m.input(name, slot)
    m.helper(_WORDS.format(name=name))
    return f"words_{name}"


# -x of an int64; -(-2^63) saturates to 2^63 - 1.
_NEG64 = """fn neg64(x: vec2<u32>) -> vec2<u32> {
  if (x.x == 0u && x.y == 0x80000000u) { return vec2<u32>(0xffffffffu, 0x7fffffffu); }
  let lo = ~x.x + 1u;
  return vec2<u32>(lo, ~x.y + select(0u, 1u, lo == 0u));
}
"""
_INT64_BODIES = {
    "abs": "select(x, neg64(x), bitcast<i32>(x.y) < 0)",
    "neg": "neg64(x)",
    "sign": "select(select(vec2<u32>(0u), vec2<u32>(1u, 0u), any(x != vec2<u32>(0u))), vec2<u32>(0xffffffffu), "
    "bitcast<i32>(x.y) < 0)",
}


_FLOAT_BODIES = {
    "ceil": "ceil(x)",
    "floor": "floor(x)",
    "roundEven": "round(x)",  # WGSL's round takes halves to even
    "sqrt": "sqrt(x)",
    "sin": "sin(x)",
    "cos": "cos(x)",
    "tan": "tan(x)",
    "reciprocal": "1.0 / x",
    "exp": "exp_acc(x)",
    "log": "log_acc(x)",
    "erf": "erf_acc(x)",
    "abs": "abs(x)",
    "neg": "-x",
}
_NEEDS = {"exp": ("EXP",), "log": ("LOG",), "erf": ("ERF",)}

# The integer forms (i32): the minimum's negation saturates to the maximum.
_INT_BODIES = {
    "abs": "select(select(-x, x, x >= 0), 2147483647, x == -2147483647 - 1)",
    "neg": "select(-x, 2147483647, x == -2147483647 - 1)",
    "sign": "select(select(0, -1, x < 0), 1, x > 0)",
}


@kernel(
    "abs", "neg", "sign", "ceil", "cos", "erf", "exp", "floor", "log", "reciprocal", "roundEven", "sin", "sqrt", "tan"
)
def unary(k: Emitter, input: Slot, *, out: Slot) -> None:
    m = k.map(out)
    if input.data_type == "int64":
        m.wide = True
        m.helper(_NEG64)
        m.body = f"  let x = {words_input(m, 'input', input)}(i);\n  return {_INT64_BODIES[k.op]};"
        k.emit(m)
        return
    x = m.input("input", input)
    if m.scalar != "f32":
        body = _INT_BODIES[k.op]
    elif k.op == "sign":
        # 0 for zeros and NaN (both comparisons false), as the spec says.
        m.helper(IS_NAN)
        body = "select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0 && !is_nan(x))"
    else:
        exp_helpers(m, *_NEEDS.get(k.op, ()))
        body = _FLOAT_BODIES[k.op]
    m.body = f"  let x = {x}(i);\n  return {body};"
    k.emit(m)


@kernel("identity")
def identity(k: Emitter, input: Slot, *, out: Slot) -> None:
    m = k.map(out)
    m.wide = is_wide(input)  # a copy of both words
    load = words_input(m, "input", input) if m.wide else m.input("input", input)
    m.body = f"  return {load}(i);"
    k.emit(m)
