"""WebGPU kernels of the activation operators.

Floats compute in f32 with the accurate exp/expm1/log1p/erfc of :mod:`.unary` (WPT allows
few ULP for sigmoid, elu, gelu, softplus); each formula is the one that keeps its result
free of cancellation (named where it differs from the spec's).  Options arrive cast to the
input's type.  clamp and relu of 64-bit integers work on the element's two words, exactly
(the other integer types in 32 bits).  NaN is tested from the bits.
"""

from __future__ import annotations

from typing import Any

from .kernels import Emitter, kernel
from .program import Slot
from .unary import IS_NAN, LESS64, exp_helpers, is_wide, words_input

__all__: list[str] = []

# Each body receives x (the input element, f32) and returns the result; {a}/{b} are alpha and beta.
_FLOAT = {
    # max(0, x) with NaN kept (the reference's maximum propagates it).
    "relu": "select(0.0, x, x > 0.0 || is_nan(x))",
    "elu": "select({a} * expm1_acc(x), x, x > 0.0)",
    "leakyRelu": "select({a} * x, x, x > 0.0)",
    # alpha * x + beta rounded once, as the reference's float64 does.
    "linear": "fma({a}, x, {b})",
    "hardSigmoid": "select(clamp(fma({a}, x, {b}), 0.0, 1.0), x, is_nan(x))",
    "hardSwish": "x * clamp(x + 3.0, 0.0, 6.0) / 6.0",
    "softsign": "x / (1.0 + abs(x))",
    # max(x, 0) + log1p(exp(-|x|)): ln(1 + exp(x)) without overflow or loss for x << 0.
    "softplus": "select(max(x, 0.0) + log1p_acc(exp_acc(-abs(x))), x, is_nan(x))",
    "sigmoid": "sigmoid_acc(x)",
    "tanh": "tanh_acc(x)",
    "gelu": "gelu_acc(x)",
}
_NEEDS = {
    "elu": ("EXPM1",),
    "softplus": ("EXP", "LOG1P"),
    "sigmoid": ("EXP",),
    "tanh": ("EXPM1",),
    "gelu": ("ERFC",),
}

# 1 / (1 + e^-|x|), and e^x / (1 + e^x) for x < 0 (no 1 - small cancellation).
_SIGMOID = """fn sigmoid_acc(x: f32) -> f32 {
  let e = exp_acc(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(r, e * r, x < 0.0);
}
"""

# tanh(t) = expm1(2t) / (expm1(2t) + 2) near 0, 1 - 2 / (e^2t + 1) beyond; odd.
_TANH = """fn tanh_acc(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let t = abs(x);
  var r = 1.0;
  if (t < 0.55) {
    let e = expm1_acc(2.0 * t);
    r = e / (e + 2.0);
  } else if (t < 9.1) {
    r = 1.0 - 2.0 / (exp_acc(2.0 * t) + 1.0);
  }
  return select(r, -r, x < 0.0);
}
"""

# gelu = x/2 * (1 + erf(x / sqrt 2)) = x/2 * erfc(-x / sqrt 2): for x < 0 from erfc itself (1 + erf
# cancels), for x >= 0 as x - x/2 * erfc(t); exp(-x^2 / 2) from x's exact split, not from x / sqrt 2.
_GELU = """fn gelu_acc(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let t = abs(x) * 0.707106781;
  var c = 0.0;
  if (t < 10.0) { c = erfc_scaled(t) * exp_neg_sq(x, 0.5); }
  let h = 0.5 * x * c;
  // x - 0 where erfc is 0 (at +inf, not inf - inf); -inf gives NaN (-inf * 0), as the spec's formula does.
  return select(x - select(0.0, h, c > 0.0), h, x < 0.0);
}
"""
_FUNCTIONS = {"sigmoid": _SIGMOID, "tanh": _TANH, "gelu": _GELU}


def _float_body(m: Any, op: str, attrs: dict[str, Any]) -> str:
    m.helper(IS_NAN)
    exp_helpers(m, *_NEEDS.get(op, ()))
    if op in _FUNCTIONS:
        m.helper(_FUNCTIONS[op])
    values = {"a": m.param(attrs["alpha"], "f") if "alpha" in attrs else "", "b": ""}
    if "beta" in attrs:
        values["b"] = m.param(attrs["beta"], "f")
    return _FLOAT[op].format(**values)


@kernel(
    "gelu", "hardSwish", "sigmoid", "softplus", "softsign", "tanh", "relu", "elu", "hardSigmoid", "leakyRelu", "linear"
)
def activation(k: Emitter, input: Slot, *, out: Slot, **attrs: Any) -> None:
    m = k.map(out)
    if is_wide(input):  # relu of int64: 0 where the high word is negative
        m.wide = True
        m.body = (
            f"  let x = {words_input(m, 'input', input)}(i);\n  return select(x, vec2<u32>(0u), bitcast<i32>(x.y) < 0);"
        )
        k.emit(m)
        return
    x = m.input("input", input)
    # Only relu takes integers: max(x, 0) in i32 (int8 and int64 loads are sign-extended).
    body = "max(x, 0)" if m.scalar == "i32" else _float_body(m, k.op, attrs)
    m.body = f"  let x = {x}(i);\n  return {body};"
    k.emit(m)


def _int_bound(value: float | int, scalar: str) -> int:
    """A clamp bound (already of the input's type) in the 32-bit range the kernel computes in."""
    lo, hi = (-(2**31), 2**31 - 1) if scalar == "i32" else (0, 2**32 - 1)
    return int(min(max(value, lo), hi))


@kernel("clamp")
def clamp(k: Emitter, input: Slot, *, out: Slot, min_value: float | int, max_value: float | int) -> None:
    m = k.map(out)
    if is_wide(input):
        _clamp64(m, input, int(min_value), int(max_value))
        k.emit(m)
        return
    x = m.input("input", input)
    s = m.scalar
    if s == "f32":
        m.helper(IS_NAN)
        lo, hi = m.param(min_value, "f"), m.param(max_value, "f")
        body = f"select(min(max(x, {lo}), {hi}), x, is_nan(x))"  # NaN stays NaN, as min(max()) in the spec
    else:
        kind = "i" if s == "i32" else "u"
        lo, hi = m.param(_int_bound(min_value, s), kind), m.param(_int_bound(max_value, s), kind)
        body = f"min(max(x, {lo}), {hi})"
    m.body = f"  let x = {x}(i);\n  return {body};"
    k.emit(m)


def _clamp64(m: Any, input: Slot, lo: int, hi: int) -> None:
    """clamp of int64/uint64 on two words; the bounds (of the input's type) as (lo, hi) word pairs."""
    t = input.data_type
    m.wide = True
    m.helper(LESS64.format(t=t, cast="bitcast<i32>" if t == "int64" else "u32"))
    x = words_input(m, "input", input)
    a = [m.param(w) for w in (lo & 0xFFFFFFFF, (lo >> 32) & 0xFFFFFFFF)]
    b = [m.param(w) for w in (hi & 0xFFFFFFFF, (hi >> 32) & 0xFFFFFFFF)]
    m.body = f"""  let x = {x}(i);
  let lo = vec2<u32>({a[0]}, {a[1]});
  let hi = vec2<u32>({b[0]}, {b[1]});
  let r = select(x, lo, less_{t}(x, lo));
  return select(r, hi, less_{t}(hi, r));"""


# Integer prelu: slope * x saturated to 32 bits (the store saturates narrower types).
_MUL_SAT = """fn mul_sat(a: i32, b: i32) -> i32 {
  let r = a * b;
  if (a != 0 && (r / a != b || (a == -1 && b == -2147483647 - 1))) {
    return select(2147483647, -2147483647 - 1, (a < 0) != (b < 0));
  }
  return r;
}
"""


@kernel("prelu")
def prelu(k: Emitter, input: Slot, slope: Slot, *, out: Slot) -> None:
    m = k.map(out)
    lines = [f"  let x = {m.broadcast('input', input)};", f"  let s = {m.broadcast('slope', slope)};"]
    if m.scalar == "f32":
        lines.append("  return select(s * x, x, x > 0.0);")  # NaN: s * NaN is NaN
    else:
        m.helper(_MUL_SAT)
        lines.append("  return select(mul_sat(s, x), x, x > 0);")
    m.body = "\n".join(lines)
    k.emit(m)


@kernel("softmax")
def softmax(k: Emitter, input: Slot, *, out: Slot, axis: int) -> None:
    """exp(x - max) / sum(exp(x - max)) along ``axis``, in three dispatches: each row's maximum,
    then its sum (both float32 scratch, one element a row), then every element: O(size) work,
    where one program looping over its row for every element would be O(size * row length)."""
    size = input.shape[axis]
    inner = 1
    for d in input.shape[axis + 1 :]:
        inner *= d
    rows = input.desc.element_count // size if size else 0
    top, total = k.scratch("float32", (rows,)), k.scratch("float32", (rows,))

    def row_program(target: Slot) -> tuple[Any, str, str, str, str]:
        m = k.map(target, f"softmax_{'max' if target is top else 'sum'}")
        exp_helpers(m, "EXP_DIFF")
        x = m.input("input", input)
        n, st = m.param(size), m.param(inner)
        return m, x, n, f"(i / {st}) * {n} * {st} + i % {st}", st

    m, x, n, base, st = row_program(top)
    # NaN anywhere makes the row's maximum NaN (WGSL's max may drop it), so the row is NaN, as the reference's.
    m.body = f"""  let base = {base};
  var t = f32_bits(0xff800000u);
  for (var j = 0u; j < {n}; j++) {{
    let v = {x}(base + j * {st});
    t = select(max(t, v), f32_bits(0x7fc00000u), is_nan(v) || is_nan(t));
  }}
  return t;"""
    k.emit(m)

    m, x, n, base, st = row_program(total)
    t = m.input("top", top)
    m.body = f"""  let base = {base};
  let t = {t}(i);
  var s = 0.0;
  for (var j = 0u; j < {n}; j++) {{ s += exp_diff({x}(base + j * {st}), t); }}
  return s;"""
    k.emit(m)

    m = k.map(out)
    exp_helpers(m, "EXP_DIFF")
    x, t, s = m.input("input", input), m.input("top", top), m.input("total", total)
    n, st = m.param(size), m.param(inner)
    m.body = f"""  let row = (i / ({st} * {n})) * {st} + i % {st};
  return exp_diff({x}(i), {t}(row)) / {s}(row);"""
    k.emit(m)
