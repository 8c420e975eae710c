"""WebGPU kernels of the element-wise logical operations: uint8 outputs of 0 or 1.

Comparisons broadcast as the binary operations do.  int64/uint64 operands are compared on
their two stored words, exactly (their 32-bit loads would saturate); floats compare with NaN
found from the bits (a compiler may assume no comparison sees one), so every comparison with
NaN is false except notEqual.  isNaN and isInfinite read the stored bits themselves,
float16's halves included.
"""

from __future__ import annotations

import re

from .kernels import Emitter, kernel
from .program import MapProgram, Slot
from .unary import IS_NAN, LESS64, is_wide, words_input

__all__: list[str] = []

# Each comparison from "less" and "equal" of (a, b).
_FROM_LESS = {
    "equal": "eq(a, b)",
    "notEqual": "!eq(a, b)",
    "lesser": "lt(a, b)",
    "greater": "lt(b, a)",
    "lesserOrEqual": "lt(a, b) || eq(a, b)",
    "greaterOrEqual": "lt(b, a) || eq(a, b)",
}


def _operand(m: MapProgram, name: str, slot: Slot) -> str:
    """The element of operand ``name`` for output index i: a vec2<u32> of words for 64-bit types."""
    if not is_wide(slot):
        return m.broadcast(name, slot)
    # The broadcast index expression, on the words of the element instead of its 32-bit load.
    expr = m.broadcast(name, slot)
    m.inputs.pop(name)
    words = words_input(m, name, slot)
    return re.sub(rf"^load_{name}\(", f"{words}(", expr)


@kernel("equal", "notEqual", "greater", "greaterOrEqual", "lesser", "lesserOrEqual")
def compare(k: Emitter, a: Slot, b: Slot, *, out: Slot) -> None:
    m = k.map(out)
    t = a.data_type
    x, y = _operand(m, "a", a), _operand(m, "b", b)
    if t in ("int64", "uint64"):
        m.helper(LESS64.format(t=t, cast="bitcast<i32>" if t == "int64" else "u32"))
        m.helper(f"fn lt(a: vec2<u32>, b: vec2<u32>) -> bool {{ return less_{t}(a, b); }}\n")
        m.helper("fn eq(a: vec2<u32>, b: vec2<u32>) -> bool { return all(a == b); }\n")
    else:
        s = {"float32": "f32", "float16": "f32"}.get(t, "u32" if t.startswith("uint") else "i32")
        if s == "f32":
            m.helper(IS_NAN)
            m.helper("fn ordered(a: f32, b: f32) -> bool { return !is_nan(a) && !is_nan(b); }\n")
            m.helper("fn lt(a: f32, b: f32) -> bool { return ordered(a, b) && a < b; }\n")
            m.helper("fn eq(a: f32, b: f32) -> bool { return ordered(a, b) && a == b; }\n")
        else:
            m.helper(f"fn lt(a: {s}, b: {s}) -> bool {{ return a < b; }}\n")
            m.helper(f"fn eq(a: {s}, b: {s}) -> bool {{ return a == b; }}\n")
    m.body = f"  let a = {x};\n  let b = {y};\n  return select(0u, 1u, {_FROM_LESS[k.op]});"
    k.emit(m)


_LOGICAL = {
    "logicalAnd": "a != 0u && b != 0u",
    "logicalOr": "a != 0u || b != 0u",
    "logicalXor": "(a != 0u) != (b != 0u)",
}


@kernel("logicalAnd", "logicalOr", "logicalXor")
def logical(k: Emitter, a: Slot, b: Slot, *, out: Slot) -> None:
    m = k.map(out)
    x, y = m.broadcast("a", a), m.broadcast("b", b)
    m.body = f"  let a = {x};\n  let b = {y};\n  return select(0u, 1u, {_LOGICAL[k.op]});"
    k.emit(m)


@kernel("logicalNot")
def logical_not(k: Emitter, a: Slot, *, out: Slot) -> None:
    m = k.map(out)
    m.body = f"  return select(0u, 1u, {m.input('a', a)}(i) == 0u);"
    k.emit(m)


@kernel("isNaN", "isInfinite")
def float_class(k: Emitter, a: Slot, *, out: Slot) -> None:
    """From the stored bits: exponent all ones, with (NaN) or without (infinity) significand bits."""
    m = k.map(out)
    m.input("a", a)
    if a.data_type == "float16":
        bits = "(buf_a[i >> 1u] >> ((i & 1u) * 16u)) & 0x7fffu"
        inf = "0x7c00u"
    else:
        bits = "buf_a[i] & 0x7fffffffu"
        inf = "0x7f800000u"
    test = f"m > {inf}" if k.op == "isNaN" else f"m == {inf}"
    m.body = f"  let m = {bits};\n  return select(0u, 1u, {test});"
    k.emit(m)
