"""WebGPU kernels of the indexing operators.

Like the shape family they move storage bits (``MapProgram.raw``), so 64-bit values survive
exactly.  Indices are clamped to [-N, N-1] for an axis of size N and a negative one counts
from the end (:func:`webml.ops.indexing.resolve_indices`); int64 indices load saturated to
32 bits, which the clamp then treats exactly as the reference does (N < 2^31).  The scatters
map over output elements: each finds the last update aimed at it (NumPy's last write wins),
so no atomics and no ordering between invocations are needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .kernels import Emitter, kernel
from .program import MapProgram, Slot
from .program import strides as row_strides

# Index v resolved against an axis of size n (n <= 2^31 - 1: a valid dimension).
_RESOLVE_I32 = """fn resolve(v: i32, n: u32) -> u32 {
  let x = clamp(v, -i32(n), i32(n) - 1);
  return u32(select(x, x + i32(n), x < 0));
}
"""
_RESOLVE_U32 = """fn resolve(v: u32, n: u32) -> u32 {
  return min(v, n - 1u);
}
"""


def _indices(m: MapProgram, indices: Slot) -> str:
    """Bind ``indices``; returns its load function (``resolve(load(e), n)`` gives the axis coordinate)."""
    m.helper(_RESOLVE_U32 if indices.data_type == "uint32" else _RESOLVE_I32)
    return m.input("indices", indices)


def _raw(k: Emitter, out: Slot) -> MapProgram:
    m = k.map(out)
    m.raw = True
    return m


def _size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


@kernel("gather")
def gather(k: Emitter, input: Slot, indices: Slot, *, out: Slot, axis: int) -> None:
    # Output index i = (o * |indices| + j) * inner + r reads input (o * N + resolve(indices[j])) * inner + r.
    m = _raw(k, out)
    load, index = m.bits("input", input), _indices(m, indices)
    inner, count, n = m.param(_size(input.shape[axis + 1 :])), m.param(_size(indices.shape)), m.param(input.shape[axis])
    m.body = (
        f"  let r = i % {inner};\n  let q = i / {inner};\n  let j = q % {count};\n  let o = q / {count};\n"
        f"  return {load}((o * {n} + resolve({index}(j), {n})) * {inner} + r);"
    )
    k.emit(m)


@kernel("gatherElements")
def gather_elements(k: Emitter, input: Slot, indices: Slot, *, out: Slot, axis: int) -> None:
    m = _raw(k, out)
    load, index = m.bits("input", input), _indices(m, indices)
    lines, c = m.coords("i", out.shape)
    c[axis] = f"resolve({index}(i), {m.param(input.shape[axis])})"
    m.body = lines + f"  return {load}({m.offset(c, row_strides(input.shape))});"
    k.emit(m)


def _nd_prefix(m: MapProgram, input: Slot, index: str, first: str, depth: int) -> str:
    """WGSL of the flat input offset (in elements of the leading ``depth`` axes, times the rest) that
    the ``depth`` index coordinates starting at indices element ``first`` address."""
    terms = []
    for d in range(depth):
        n, step = m.param(input.shape[d]), m.param(row_strides(input.shape)[d])
        terms.append(f"resolve({index}({first} + {m.param(d)}), {n}) * {step}")
    return " + ".join(terms) if terms else "0u"


@kernel("gatherND")
def gather_nd(k: Emitter, input: Slot, indices: Slot, *, out: Slot) -> None:
    # Output index i = j * inner + r: the j-th coordinate tuple addresses a block of inner elements.
    depth = indices.shape[-1]
    m = _raw(k, out)
    load, index = m.bits("input", input), _indices(m, indices)
    inner = m.param(_size(input.shape[depth:]))
    offset = _nd_prefix(m, input, index, f"j * {m.param(depth)}", depth)
    m.body = f"  let r = i % {inner};\n  let j = i / {inner};\n  return {load}({offset} + r);"
    k.emit(m)


@kernel("scatterElements")
def scatter_elements(k: Emitter, input: Slot, indices: Slot, updates: Slot, *, out: Slot, axis: int) -> None:
    # Output element c takes updates[c'] for the last c' (c with c'[axis] = t) whose index resolves to c[axis].
    m = _raw(k, out)
    load, index, update = m.bits("input", input), _indices(m, indices), m.bits("updates", updates)
    lines, c = m.coords("i", out.shape)
    own = row_strides(indices.shape)
    base = m.offset([x for d, x in enumerate(c) if d != axis], [s for d, s in enumerate(own) if d != axis])
    m.body = lines + (
        f"  let base = {base};\n  let want = {c[axis]};\n  var found = -1;\n"
        f"  for (var t = 0u; t < {m.param(indices.shape[axis])}; t++) {{\n"
        f"    let e = base + t * {m.param(own[axis])};\n"
        f"    if (resolve({index}(e), {m.param(input.shape[axis])}) == want) {{ found = i32(e); }}\n"
        "  }\n"
        f"  if (found < 0) {{ return {load}(i); }}\n"
        f"  return {update}(u32(found));"
    )
    k.emit(m)


@kernel("scatterND")
def scatter_nd(k: Emitter, input: Slot, indices: Slot, updates: Slot, *, out: Slot) -> None:
    # Output index i = p * inner + r takes updates[j * inner + r] for the last tuple j addressing block p.
    depth = indices.shape[-1]
    m = _raw(k, out)
    load, index, update = m.bits("input", input), _indices(m, indices), m.bits("updates", updates)
    inner = m.param(_size(input.shape[depth:]))
    tuples = m.param(_size(indices.shape[:-1]))
    offset = _nd_prefix(m, input, index, f"j * {m.param(depth)}", depth)
    m.body = (
        f"  let r = i % {inner};\n  let head = i - r;\n  var found = -1;\n"
        f"  for (var j = 0u; j < {tuples}; j++) {{\n"
        f"    if ({offset} == head) {{ found = i32(j); }}\n"
        "  }\n"
        f"  if (found < 0) {{ return {load}(i); }}\n"
        f"  return {update}(u32(found) * {inner} + r);"
    )
    k.emit(m)
