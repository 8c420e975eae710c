"""WebGPU kernels of the shape and data-movement operators.

Apart from cast these only move elements, so they are raw map programs (``MapProgram.raw``):
each output element is the storage bits of one input element (or of a constant), found by
index arithmetic, and nothing is converted, so int64/uint64 values beyond 32 bits, float16
bits and NaN payloads survive exactly.  cast converts with the spec's rules (the reference's
``dtypes.cast_array``) and reads or writes 64-bit words itself, so it is exact for every
pair of types.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ... import dtypes
from .codecs import codec
from .kernels import Emitter, kernel
from .program import MapProgram, Slot
from .program import strides as row_strides


def _raw(k: Emitter, out: Slot) -> MapProgram:
    m = k.map(out)
    m.raw = True
    return m


def _along(m: MapProgram, shape: Sequence[int], axis: int) -> tuple[str, str]:
    """Statements splitting output index ``i`` of ``shape`` into ``o`` (the dimensions before ``axis``),
    ``a`` (the coordinate along it) and ``r`` (the dimensions after it), i = (o * shape[axis] + a) * inner + r;
    with the parameter ``inner``."""
    inner = m.param(int(np.prod(shape[axis + 1 :], dtype=np.int64)))
    size = m.param(shape[axis])
    return f"  let r = i % {inner};\n  let q = i / {inner};\n  let a = q % {size};\n  let o = q / {size};", inner


def _const_bits(m: MapProgram, data_type: str, value: float | int) -> str:
    """A WGSL expression of ``value``'s storage bits in ``data_type`` (parameter words)."""
    raw = dtypes.to_bytes(data_type, np.asarray([value], dtype=dtypes.numpy_dtype(data_type)))
    lo, hi = (int(w) for w in np.frombuffer((raw + bytes(8))[:8], dtype="<u4"))
    if codec(data_type).words == 2:
        return f"vec2<u32>({m.param(lo)}, {m.param(hi)})"
    return m.param(lo & ((1 << min(dtypes.info(data_type).bits, 32)) - 1))


def _zero(out: Slot) -> str:
    return "vec2<u32>(0u, 0u)" if codec(out.data_type).words == 2 else "0u"


# -- pure movement ------------------------------------------------------------------


@kernel("reshape")
def reshape(k: Emitter, input: Slot, *, out: Slot, new_shape: Sequence[int]) -> None:
    m = _raw(k, out)
    m.body = f"  return {m.bits('input', input)}(i);"
    k.emit(m)


@kernel("expand")
def expand(k: Emitter, input: Slot, *, out: Slot, new_shape: Sequence[int]) -> None:
    m = _raw(k, out)
    m.body = f"  return {m.broadcast('input', input, raw=True)};"
    k.emit(m)


def _gather_coords(k: Emitter, input: Slot, out: Slot, coords_of) -> None:
    """A raw program reading ``input`` at coordinates ``coords_of(m, c)`` (WGSL u32 expressions, one per
    input dimension) of the output coordinates ``c``."""
    m = _raw(k, out)
    load = m.bits("input", input)
    if not out.rank:
        m.body = f"  return {load}(0u);"
    else:
        lines, names = m.coords("i", out.shape)
        m.body = lines + f"  return {load}({m.offset(coords_of(m, names), row_strides(input.shape))});"
    k.emit(m)


@kernel("transpose")
def transpose(k: Emitter, input: Slot, *, out: Slot, permutation: Sequence[int]) -> None:
    # Output dimension d is input dimension permutation[d].
    def coords(m: MapProgram, c: list[str]) -> list[str]:
        where = {p: d for d, p in enumerate(permutation)}
        return [c[where[d]] for d in range(input.rank)]

    _gather_coords(k, input, out, coords)


@kernel("tile")
def tile(k: Emitter, input: Slot, *, out: Slot, repetitions: Sequence[int]) -> None:
    _gather_coords(k, input, out, lambda m, c: [f"({x} % {s})" for x, s in zip(c, m.array(input.shape))])


@kernel("reverse")
def reverse(k: Emitter, input: Slot, *, out: Slot, axes: Sequence[int]) -> None:
    def coords(m: MapProgram, c: list[str]) -> list[str]:
        return [f"({m.param(input.shape[d] - 1)} - {x})" if d in axes else x for d, x in enumerate(c)]

    _gather_coords(k, input, out, coords)


@kernel("slice")
def slice_(
    k: Emitter, input: Slot, *, out: Slot, starts: Sequence[int], sizes: Sequence[int], strides: Sequence[int]
) -> None:
    def coords(m: MapProgram, c: list[str]) -> list[str]:
        return [f"({m.param(b)} + {x} * {m.param(s)})" for x, b, s in zip(c, starts, strides)]

    _gather_coords(k, input, out, coords)


@kernel("pad")
def pad(
    k: Emitter,
    input: Slot,
    *,
    out: Slot,
    beginning_padding: Sequence[int],
    ending_padding: Sequence[int],
    mode: str,
    value: float | int,
) -> None:
    m = _raw(k, out)
    load = m.bits("input", input)
    if not out.rank:
        m.body = f"  return {load}(0u);"
        k.emit(m)
        return
    lines, names = m.coords("i", out.shape)
    body = [lines.rstrip("\n")]
    outside = []
    for d, c in enumerate(names):
        n = input.shape[d]
        body.append(f"  var x{d} = i32({c}) - {m.param(beginning_padding[d], 'i')};")
        if mode == "constant":
            outside.append(f"x{d} < 0 || x{d} >= {m.param(n, 'i')}")
        elif mode == "edge":
            body.append(f"  x{d} = clamp(x{d}, 0, {m.param(n - 1, 'i')});")
        else:  # reflection: mirror about the edges, without repeating them (period 2 (n - 1))
            period = m.param(max(2 * (n - 1), 1), "i")
            body.append(f"  x{d} = abs(x{d}) % {period};")
            body.append(f"  x{d} = select(x{d}, {period} - x{d}, x{d} >= {m.param(n, 'i')});")
    if outside:
        body.append(f"  if ({' || '.join(outside)}) {{ return {_const_bits(m, out.data_type, value)}; }}")
    offset = m.offset([f"u32(x{d})" for d in range(out.rank)], row_strides(input.shape))
    body.append(f"  return {load}({offset});")
    m.body = "\n".join(body)
    k.emit(m)


@kernel("triangular")
def triangular(k: Emitter, input: Slot, *, out: Slot, upper: bool, diagonal: int) -> None:
    # Element (row, col) of each matrix is kept when col - row >= diagonal (upper) or <= diagonal (lower).
    m = _raw(k, out)
    load = m.bits("input", input)
    cols, rows = m.param(out.shape[-1]), m.param(out.shape[-2])
    diag = m.param(diagonal, "i")  # a long: within i32
    keep = f"d {'>=' if upper else '<='} {diag}"
    m.body = (
        f"  let col = i % {cols};\n  let row = (i / {cols}) % {rows};\n"
        "  let d = i32(col) - i32(row);\n"
        f"  return select({_zero(out)}, {load}(i), {keep});"
    )
    k.emit(m)


@kernel("where")
def where(k: Emitter, condition: Slot, true_value: Slot, false_value: Slot, *, out: Slot) -> None:
    m = _raw(k, out)
    c = m.broadcast("condition", condition)
    t = m.broadcast("true_value", true_value, raw=True)
    f = m.broadcast("false_value", false_value, raw=True)
    m.body = f"  return select({f}, {t}, {c} != 0u);"
    k.emit(m)


# -- concat, split ---------------------------------------------------------------------


@kernel("concat")
def concat(k: Emitter, inputs: list[Slot], *, out: Slot, axis: int) -> None:
    # One binding is the output: a dispatch reads at most max_storage_buffers - 1 inputs, so
    # more are concatenated group by group into scratch buffers first (a tree of dispatches).
    room = max(2, k.gpu.max_storage_buffers - 1)
    if len(inputs) > room:
        parts = []
        for g in range(0, len(inputs), room):
            group = inputs[g : g + room]
            if len(group) == 1:
                parts.append(group[0])
                continue
            shape = list(out.shape)
            shape[axis] = sum(s.shape[axis] for s in group)
            part = k.scratch(out.data_type, tuple(shape))
            concat(k, group, out=part, axis=axis)
            parts.append(part)
        concat(k, parts, out=out, axis=axis)
        return
    m = _raw(k, out)
    split_lines, inner = _along(m, out.shape, axis)
    lines = [split_lines]
    start = 0
    for j, slot in enumerate(inputs):
        load = m.bits(f"in{j}", slot)
        size = slot.shape[axis]
        index = f"(o * {m.param(size)} + a - {m.param(start)}) * {inner} + r"
        if j == len(inputs) - 1:
            lines.append(f"  return {load}({index});")
        else:
            lines.append(f"  if (a < {m.param(start + size)}) {{ return {load}({index}); }}")
        start += size
    m.body = "\n".join(lines)
    k.emit(m)


@kernel("split")
def split(k: Emitter, input: Slot, *, out: Slot | list[Slot], splits: Sequence[int], axis: int) -> None:
    start = 0
    outs = out if isinstance(out, list) else [out]  # the runtime passes a single output bare
    for slot, size in zip(outs, splits):
        m = _raw(k, slot)
        load = m.bits("input", input)
        lines, inner = _along(m, slot.shape, axis)
        m.body = lines + f"\n  return {load}((o * {m.param(input.shape[axis])} + a + {m.param(start)}) * {inner} + r);"
        k.emit(m)
        start += size


# -- cast ------------------------------------------------------------------------------

# An unsigned 32-bit integer as the nearest float32 (ties to even) whatever the conversion's
# rounding: both halves convert exactly and the one addition rounds once.
_U32_TO_F32 = """fn u32_to_f32(x: u32) -> f32 {
  return f32(x & 0xffff0000u) + f32(x & 0xffffu);
}
"""

_I32_TO_F32 = """fn i32_to_f32(x: i32) -> f32 {
  return f32(x & -65536) + f32(x & 65535);
}
"""

# A 64-bit magnitude (low, high word) as the nearest float32, ties to even: the top 24
# significant bits, rounded by the next bit and a sticky bit of the rest, times a power of two.
_U64_TO_F32 = """fn u64_to_f32(lo: u32, hi: u32) -> f32 {
  if (hi == 0u) { return u32_to_f32(lo); }
  let s = countLeadingZeros(hi);
  let top = select((hi << s) | (lo >> (32u - s)), hi, s == 0u);
  let rest = select(lo << s, lo, s == 0u);
  var m = top >> 8u;
  let half = top & 0xffu;
  if (half > 0x80u || (half == 0x80u && (rest != 0u || (m & 1u) == 1u))) { m += 1u; }
  return f32(m) * bitcast<f32>((127u + 40u - s) << 23u);
}
"""

_I64_TO_F32 = """fn i64_to_f32(v: vec2<u32>) -> f32 {
  if ((v.y & 0x80000000u) == 0u) { return u64_to_f32(v.x, v.y); }
  let lo = ~v.x + 1u;
  let hi = ~v.y + select(0u, 1u, lo == 0u);
  return -u64_to_f32(lo, hi);
}
"""

# |a| truncated to an integer, as 64 bits (low, high word), for a < 2^64.
_F32_TO_U64 = """fn f32_to_u64(a: f32) -> vec2<u32> {
  let b = bitcast<u32>(a);
  let e = i32((b >> 23u) & 0xffu) - 127;
  if (e < 0) { return vec2<u32>(0u, 0u); }
  let m = (b & 0x7fffffu) | 0x800000u;
  if (e <= 23) { return vec2<u32>(m >> u32(23 - e), 0u); }
  let s = u32(e - 23);
  if (s < 32u) { return vec2<u32>(m << s, m >> (32u - s)); }
  return vec2<u32>(0u, m << (s - 32u));
}
"""

_IS_NAN = "fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }\n"

# Floats to integers truncate toward zero, saturate, and take NaN to 0 (dtypes.cast_array).
_F32_TO_I64 = """fn f32_to_i64(v: f32) -> vec2<u32> {
  if (is_nan(v)) { return vec2<u32>(0u, 0u); }
  if (v >= 9223372036854775808.0) { return vec2<u32>(0xffffffffu, 0x7fffffffu); }
  if (v <= -9223372036854775808.0) { return vec2<u32>(0u, 0x80000000u); }
  let m = f32_to_u64(abs(v));
  if (v >= 0.0) { return m; }
  let lo = ~m.x + 1u;
  return vec2<u32>(lo, ~m.y + select(0u, 1u, lo == 0u));
}
"""

_F32_TO_U64_SAT = """fn f32_to_u64_sat(v: f32) -> vec2<u32> {
  if (is_nan(v) || v <= 0.0) { return vec2<u32>(0u, 0u); }
  if (v >= 18446744073709551616.0) { return vec2<u32>(0xffffffffu, 0xffffffffu); }
  return f32_to_u64(v);
}
"""

_F32_TO_I32 = """fn f32_to_i32(v: f32) -> i32 {
  if (is_nan(v)) { return 0; }
  if (v >= 2147483648.0) { return 2147483647; }
  if (v <= -2147483648.0) { return -2147483647 - 1; }
  return i32(trunc(v));
}
"""

_F32_TO_U32 = """fn f32_to_u32(v: f32) -> u32 {
  if (is_nan(v) || v <= 0.0) { return 0u; }
  if (v >= 4294967296.0) { return 0xffffffffu; }
  return u32(trunc(v));
}
"""


def _wrap(bits: str, data_type: str) -> str:
    """The integer of ``data_type`` (its WGSL scalar) made of the low bits of u32 expression ``bits``:
    integer-to-integer casts keep the lowest bits, two's complement (the reference's)."""
    info = dtypes.info(data_type)
    n = min(info.bits, 32)
    if info.kind == "uint":
        return bits if n == 32 else f"(({bits}) & {(1 << n) - 1}u)"
    if n == 32:
        return f"bitcast<i32>({bits})"
    return f"(bitcast<i32>(({bits}) << {32 - n}u) >> {32 - n}u)"


@kernel("cast")
def cast(k: Emitter, input: Slot, *, out: Slot, data_type: str) -> None:
    src, dst = dtypes.info(input.data_type), dtypes.info(data_type)
    wide_in, wide_out = src.bits == 64, dst.bits == 64
    m = k.map(out)
    if input.data_type == data_type:
        m.raw = True
        m.body = f"  return {m.bits('input', input)}(i);"
        k.emit(m)
        return
    if wide_in:
        x = f"{m.bits('input', input)}(i)"
    else:
        x = f"{m.input('input', input)}(i)"
    if dst.is_float:
        # Computed in f32, stored by the codec (float16 rounds from the correctly rounded f32:
        # integers that need rounding in f32 are beyond float16's range anyway).
        if src.is_float:
            m.body = f"  return {x};"
        elif wide_in:
            m.helper(_U32_TO_F32)
            m.helper(_U64_TO_F32)
            if src.kind == "int":
                m.helper(_I64_TO_F32)
                m.body = f"  return i64_to_f32({x});"
            else:
                m.body = f"  let v = {x};\n  return u64_to_f32(v.x, v.y);"
        elif src.kind == "int":
            m.helper(_I32_TO_F32)
            m.body = f"  return i32_to_f32({x});"
        else:
            m.helper(_U32_TO_F32)
            m.body = f"  return u32_to_f32({x});"
    elif wide_out:
        m.raw = True
        if src.is_float:
            m.helper(_IS_NAN)
            m.helper(_F32_TO_U64)
            if dst.kind == "int":
                m.helper(_F32_TO_I64)
                m.body = f"  return f32_to_i64({x});"
            else:
                m.helper(_F32_TO_U64_SAT)
                m.body = f"  return f32_to_u64_sat({x});"
        elif wide_in:
            m.body = f"  return {x};"  # int64 <-> uint64 reinterprets the bits
        elif src.kind == "int":
            m.body = f"  let v = {x};\n  return vec2<u32>(bitcast<u32>(v), select(0u, 0xffffffffu, v < 0));"
        else:
            m.body = f"  return vec2<u32>({x}, 0u);"
    else:
        # A 32-bit or narrower integer target.
        if src.is_float:
            m.helper(_IS_NAN)
            if dst.kind == "int":
                m.helper(_F32_TO_I32)
                m.body = f"  return f32_to_i32({x});"  # the store saturates to a narrower type
            else:
                m.helper(_F32_TO_U32)
                m.body = f"  return f32_to_u32({x});"
        else:
            bits = f"{x}.x" if wide_in else (f"bitcast<u32>({x})" if src.kind == "int" else x)
            m.body = f"  return {_wrap(bits, data_type)};"
    k.emit(m)
