"""WebGPU kernels of the element-wise binary operations (numpy broadcasting through the parameters)."""

from __future__ import annotations

from .kernels import kernel

# pow's float path: WGSL's pow is undefined for a negative base, the spec's (IEEE) pow is not.
_POW_F32 = """fn pow_f32(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  let m = pow(abs(x), y);
  if (x < 0.0) {
    if (y != trunc(y)) { return f32_bits(0x7fc00000u); }
    if (abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1) { return -m; }
  }
  if (x == 0.0 && y < 0.0) { return f32_bits(0x7f800000u); }
  return m;
}
"""

# Integer pow as the reference computes it: trunc(float pow), saturated to 32 bits.
_POW_INT = """fn pow_{t}(x: {t}, y: {t}) -> {t} {{
  if (y < {t}(0)) {{
    if (x == {t}(1)) {{ return {t}(1); }}
    return {neg_one};
  }}
  var r = {t}(1);
  for (var k = {t}(0); k < y; k++) {{
    let next = r * x;
    if (x != {t}(0) && next / x != r) {{ return {sat}; }}
    r = next;
  }}
  return r;
}}
"""

_EXPRESSIONS = {"add": "a + b", "sub": "a - b", "mul": "a * b", "max": "max(a, b)", "min": "min(a, b)"}

# Integer results saturate, as the reference's (exact, then cast with the spec's rules).
_SATURATING = {
    ("add", "i32"): "  let r = a + b;\n  if (a > 0 && b > 0 && r < 0) { return 2147483647; }\n"
    "  if (a < 0 && b < 0 && r >= 0) { return -2147483647 - 1; }\n  return r;",
    ("sub", "i32"): "  let r = a - b;\n  if (a >= 0 && b < 0 && r < 0) { return 2147483647; }\n"
    "  if (a < 0 && b > 0 && r >= 0) { return -2147483647 - 1; }\n  return r;",
    ("mul", "i32"): "  let r = a * b;\n  if (a != 0 && (r / a != b || (a == -1 && b == -2147483647 - 1))) {\n"
    "    return select(2147483647, -2147483647 - 1, (a < 0) != (b < 0));\n  }\n  return r;",
    ("add", "u32"): "  let r = a + b;\n  return select(r, 0xffffffffu, r < a);",
    ("sub", "u32"): "  return select(a - b, 0u, b > a);",
    ("mul", "u32"): "  let r = a * b;\n  return select(r, 0xffffffffu, a != 0u && r / a != b);",
}


@kernel("add", "sub", "mul", "div", "max", "min", "pow")
def binary(k, a, b, *, out):
    m = k.map(out)
    s = m.scalar
    x, y = m.broadcast("a", a), m.broadcast("b", b)
    lines = [f"  let a = {x};", f"  let b = {y};"]
    if (k.op, s) in _SATURATING:
        lines.append(_SATURATING[k.op, s])
    elif k.op in _EXPRESSIONS:
        lines.append(f"  return {_EXPRESSIONS[k.op]};")
    elif k.op == "div":
        # Integer division truncates toward zero (WGSL's too); by zero it is 0, as the reference's.
        lines.append("  return a / b;" if s == "f32" else f"  return select(a / b, {s}(0), b == {s}(0));")
    elif s == "f32":
        m.helper(_POW_F32)
        lines.append("  return pow_f32(a, b);")
    else:
        if s == "i32":
            neg_one = "select(i32(0), select(i32(1), i32(-1), (abs(y) & 1) == 1), x == -1)"
            sat = "select(2147483647, -2147483647 - 1, x < 0 && (y & 1) == 1)"
        else:
            neg_one, sat = "0u", "0xffffffffu"
        m.helper(_POW_INT.format(t=s, neg_one=neg_one, sat=sat))
        lines.append(f"  return pow_{s}(a, b);")
    m.body = "\n".join(lines)
    k.emit(m)
