"""WebGPU kernels of the reductions, argMin/argMax and cumulativeSum.

Each output element loops over the input elements it reduces (:func:`walk`: the kept coordinates
give a base offset, the loop index splits into the reduced coordinates).  Float sums are Kahan sums
in f32, so long reductions stay within WPT's ULP tolerances; integer sums accumulate in 64 bits
(two words) and saturate once at the end, as the reference's exact arithmetic does, and integer
products track a zero, the sign and an overflow (nonzero integers only grow in magnitude).

lavapipe (llvmpipe) stops an invocation's loops after 65,535 iterations in all, silently: loops longer
than SHORT are unrolled UNROLL times, and reductions and argMin/argMax of more than SPLIT elements
run as two dispatches, CHUNK-element partial results in a scratch and then their reduction.
cumulativeSum along a long axis takes part sums first, so no output loops over more than two parts
and the part sums.  Only integer reduceProduct stays one dispatch: on lavapipe it is right up to
about 65,535 * UNROLL / (values per invocation) elements per output (a million for 32-bit outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .codecs import codec
from .kernels import kernel
from .program import MapProgram, Slot, strides

__all__ = ["I64_HELPERS", "KAHAN", "UNROLL", "kahan", "unrolled", "walk"]

# NaN from its bits (WGSL lets compilers assume no NaN in comparisons such as x != x).
IS_NAN = "fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }\n"
IS_INF = "fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }\n"

# Kahan summation: s.x the sum, s.y the running compensation.  Once the sum is infinite or NaN the
# compensation is 0 and the sum plain, so infinities and NaN propagate as in any sum.  ``zero`` is a parameter word
# that is 0: the sum passes through it so that no compiler can simplify (t - s.x) - y to 0 (lavapipe's
# does, which leaves a plain sum).
KAHAN = """fn kahan(s: vec2<f32>, v: f32, zero: u32) -> vec2<f32> {
  let y = v - s.y;
  let t = bitcast<f32>(bitcast<u32>(s.x + y) | zero);
  let finite = (bitcast<u32>(t) & 0x7f800000u) != 0x7f800000u;
  return vec2<f32>(select(s.x + v, t, finite), select(0.0, (t - s.x) - y, finite));
}
"""


def kahan(m: MapProgram, s: str, v: str) -> str:
    """The WGSL statement adding ``v`` to the Kahan sum ``s`` (a ``vec2<f32>`` variable)."""
    m.helper(KAHAN)
    return f"{s} = kahan({s}, {v}, {m.param(0)});"


# 64-bit integers as vec2<u32>(low word, high word): a signed accumulator of i32 terms (which
# cannot overflow for fewer than 2^32 terms), an unsigned saturating one, a 32x32 -> 64 product.
I64_HELPERS = """fn add_i64(a: vec2<u32>, v: i32) -> vec2<u32> {
  let lo = a.x + bitcast<u32>(v);
  let carry = select(0u, 1u, lo < a.x);
  return vec2<u32>(lo, a.y + select(0u, 0xffffffffu, v < 0) + carry);
}
fn add_u64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  let h1 = a.y + b.y;
  let h2 = h1 + select(0u, 1u, lo < a.x);
  if (h1 < a.y || h2 < h1) { return vec2<u32>(0xffffffffu, 0xffffffffu); }
  return vec2<u32>(lo, h2);
}
fn mul_u64(a: u32, b: u32) -> vec2<u32> {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let ll = al * bl;
  let lh = al * bh;
  let hl = ah * bl;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return vec2<u32>((ll & 0xffffu) | (mid << 16u), ah * bh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u));
}
fn add_w64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn sat_i64(a: vec2<u32>) -> i32 {
  let hi = bitcast<i32>(a.y);
  if (hi > 0 || (hi == 0 && a.x >= 0x80000000u)) { return 2147483647; }
  if (hi < -1 || (hi == -1 && a.x < 0x80000000u)) { return -2147483647 - 1; }
  return bitcast<i32>(a.x);
}
fn sat_u64_i32(a: vec2<u32>) -> i32 { return select(bitcast<i32>(a.x), 2147483647, a.y != 0u || a.x > 0x7fffffffu); }
fn sat_u64_u32(a: vec2<u32>) -> u32 { return select(a.x, 0xffffffffu, a.y != 0u); }
fn abs_u32(v: i32) -> u32 { return select(bitcast<u32>(v), 0u - bitcast<u32>(v), v < 0); }
"""


#: Elements per loop iteration of a long loop (see :func:`unrolled`): reductions of up to about
#: 65,535 * UNROLL / 8 elements per output element run on lavapipe.
UNROLL = 16
#: Loops longer than this are unrolled (a few loops per value, up to 8 values per invocation).
SHORT = 4096


def unrolled(var: str, lo: str, hi: str, body: str, length: int) -> str:
    """``for (var = lo; var < hi; var++) { body }``, unrolled UNROLL times when ``length`` (its most
    iterations) is above SHORT: lavapipe (llvmpipe) ends an invocation's loops after 65,535 iterations
    in all, so a back-edge per element would cut long reductions.  Short loops stay loops: the source
    (and the pipeline compile) stays small, and it is the same for every short shape."""
    if length <= SHORT:
        return f"  for (var {var} = {lo}; {var} < {hi}; {var}++) {{\n{body.rstrip()}\n  }}\n"
    blocks = "".join(
        f"    {{\n      let {var} = {var}_0 + {j}u;\n      if ({var} < {hi}) {{\n{body.rstrip()}\n      }}\n    }}\n"
        for j in range(UNROLL)
    )
    return f"  for (var {var}_0 = {lo}; {var}_0 < {hi}; {var}_0 += {UNROLL}u) {{\n{blocks}  }}\n"


def walk(
    m: MapProgram,
    shape: Sequence[int],
    axes: Sequence[int],
    flat: str = "i",
    span: tuple[str, str, int] | None = None,
) -> tuple[str, Callable[..., str]]:
    """WGSL reducing ``shape`` over ``axes`` for the output element ``flat`` (its flat index over the
    kept dimensions, in order): the statements before the loop (they define ``base``), and a function
    of the loop's body (and its variable, ``r``) giving the loop, inside which ``e`` is the input
    element.  ``span`` (first, end, most iterations) loops over part of the reduced elements only."""
    kept = [d for d in range(len(shape)) if d not in axes]
    reduced = sorted(axes)
    st = strides(shape)
    pre, names = m.coords(flat, [shape[d] for d in kept], "o")
    pre += f"  let base = {m.offset(names, [st[d] for d in kept])};\n"
    length = _count(shape, reduced)
    count = m.param(length)
    sizes = m.array([shape[d] for d in reduced])
    steps = m.array([st[d] for d in reduced])

    def loop(body: str, var: str = "r") -> str:
        index = [f"    var {var}_q = {var};", "    var e = base;"]
        for d in reversed(range(len(reduced))):
            index.append(f"    e += ({var}_q % {sizes[d]}) * {steps[d]};")
            if d:
                index.append(f"    {var}_q = {var}_q / {sizes[d]};")
        lo, hi, most = span or ("0u", count, length)
        return unrolled(var, lo, hi, "\n".join(index) + "\n" + body, most)

    return pre, loop


def _count(shape: Sequence[int], axes: Sequence[int]) -> int:
    n = 1
    for d in axes:
        n *= shape[d]
    return n


# -- the ten reductions ------------------------------------------------------------------------

_FLOAT_TERM = {
    "reduceSum": "x",
    "reduceMean": "x",
    "reduceLogSum": "x",
    "reduceL1": "abs(x)",
    "reduceSumSquare": "x * x",
    "reduceL2": "x * x",
}
_FLOAT_RESULT = {
    "reduceSum": "t",
    "reduceL1": "t",
    "reduceSumSquare": "t",
    "reduceMean": "t / f32(n)",
    "reduceL2": "sqrt(t)",
    "reduceLogSum": "log(t)",
}


def _float_sum(m: MapProgram, x: Slot, axes: Sequence[int], op: str) -> str:
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, axes)
    m.helper(KAHAN)
    result = _FLOAT_RESULT[op].replace("f32(n)", f"f32({m.param(_count(x.shape, axes))})")
    return (
        pre
        + "  var s = vec2<f32>(0.0, 0.0);\n"
        + loop(f"    let x = {load}(e);\n    let v = {_FLOAT_TERM[op]};\n    {kahan(m, 's', 'v')}\n")
        + "  let t = s.x;\n"
        f"  return {result};"
    )


def _log_sum_exp(
    m: MapProgram, x: Slot, axes: Sequence[int], span: tuple[str, str, int] | None = None, flat: str = "i"
) -> str:
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, axes, flat, span)
    m.helper(KAHAN)
    # The maximum first, so no exp overflows; an infinite maximum is not subtracted (inf - inf).
    return (
        pre
        + "  var mx = f32_bits(0xff800000u);\n  var nan = false;\n"
        + loop(f"    let x = {load}(e);\n    nan = nan || is_nan(x);\n    mx = max(mx, x);\n")
        + "  if (nan) { return f32_bits(0x7fc00000u); }\n"
        "  let m = select(mx, 0.0, is_inf(mx));\n"
        "  var s = vec2<f32>(0.0, 0.0);\n"
        + loop(f"    {kahan(m, 's', f'exp({load}(e) - m)')}\n", "r2")
        + "  return log(s.x) + m;"
    )


def _extremum(m: MapProgram, x: Slot, axes: Sequence[int], op: str) -> str:
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, axes)
    pick = "max" if op == "reduceMax" else "min"
    body = pre + f"  var a = {load}(base);\n"
    if m.scalar == "f32":
        # NaN propagates (the reference's NumPy max/min); WGSL's max/min of a NaN is indeterminate.
        body += loop(f"    let x = {load}(e);\n    if (is_nan(x)) {{ return x; }}\n    a = {pick}(a, x);\n")
    else:
        body += loop(f"    a = {pick}(a, {load}(e));\n")
    return body + "  return a;"


def _int_sum(m: MapProgram, x: Slot, axes: Sequence[int], op: str) -> str:
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, axes)
    m.helper(I64_HELPERS)
    signed = m.scalar == "i32"
    if op == "reduceSum" and signed:
        step, result = "a = add_i64(a, x);", "sat_i64(a)"
    else:
        mag = "abs_u32(x)" if signed else "x"
        term = f"mul_u64({mag}, {mag})" if op == "reduceSumSquare" else f"vec2<u32>({mag}, 0u)"
        step, result = f"a = add_u64(a, {term});", "sat_u64_i32(a)" if signed else "sat_u64_u32(a)"
    return (
        pre + "  var a = vec2<u32>(0u, 0u);\n" + loop(f"    let x = {load}(e);\n    {step}\n") + f"  return {result};"
    )


def _int_product(m: MapProgram, x: Slot, axes: Sequence[int]) -> str:
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, axes)
    m.helper(I64_HELPERS)
    signed = m.scalar == "i32"
    mag = "abs_u32(x)" if signed else "x"
    body = (
        pre
        + "  var mag = 1u;\n  var neg = false;\n  var over = false;\n"
        + loop(
            f"    let x = {load}(e);\n    if (x == {m.scalar}(0)) {{ return {m.scalar}(0); }}\n"
            + ("    neg = neg != (x < 0);\n" if signed else "")
            + f"    let p = mul_u64(mag, {mag});\n    over = over || p.y != 0u;\n    mag = p.x;\n"
        )
    )
    if not signed:
        return body + "  return select(mag, 0xffffffffu, over);"
    return (
        body + "  if (neg) { return select(0 - bitcast<i32>(mag), -2147483647 - 1, over || mag >= 0x80000000u); }\n"
        "  return select(bitcast<i32>(mag), 2147483647, over || mag >= 0x80000000u);"
    )


#: Float reductions of more elements than this run in two dispatches: partial results of CHUNK elements
#: each (in parallel), then their reduction (lavapipe's loop limit, and a GPU's parallelism).
SPLIT = 65536
CHUNK = 4096


def _split(k, m: MapProgram, x: Slot, axes: Sequence[int]) -> None:
    """Reduction ``k.op`` of ``x`` into ``m``'s output through a float32 scratch of partial results."""
    op, count = k.op, _count(x.shape, axes)
    chunks = -(-count // CHUNK)
    partial = k.scratch("float32", (m.out.desc.element_count, chunks))
    first = k.map(partial, f"{op}-partial")
    load = first.input("x", x)
    first.helper(IS_NAN)
    size, n = first.param(chunks), first.param(count)
    head = f"  let g = i / {size};\n  let lo = (i % {size}) * {CHUNK}u;\n  let hi = min(lo + {CHUNK}u, {n});\n"
    pre, loop = walk(first, x.shape, axes, "g", ("lo", "hi", CHUNK))
    if op in ("reduceMax", "reduceMin"):
        pick = "max" if op == "reduceMax" else "min"
        start = "0xff800000u" if op == "reduceMax" else "0x7f800000u"
        step = f"    let x = {load}(e);\n    if (is_nan(x)) {{ return x; }}\n    a = {pick}(a, x);\n"
        first.body = head + pre + f"  var a = f32_bits({start});\n" + loop(step) + "  return a;"
        combine = f"    let x = load_p(e);\n    if (is_nan(x)) {{ return x; }}\n    a = {pick}(a, x);\n"
        init, acc, final = f"  var a = f32_bits({start});\n", "a", "t"
    elif op == "reduceProduct":
        first.body = head + pre + "  var a = 1.0;\n" + loop(f"    a *= {load}(e);\n") + "  return a;"
        init, combine, acc, final = "  var a = 1.0;\n", "    a *= load_p(e);\n", "a", "t"
    else:
        step = f"    let x = {load}(e);\n    let v = {_FLOAT_TERM[op]};\n    {kahan(first, 's', 'v')}\n"
        first.body = head + pre + "  var s = vec2<f32>(0.0, 0.0);\n" + loop(step) + "  return s.x;"
        init, combine = "  var s = vec2<f32>(0.0, 0.0);\n", f"    {kahan(m, 's', 'load_p(e)')}\n"
        # t: the sum of the partial sums; the op's result of it (the mean's count is of all elements).
        acc, final = "s.x", _FLOAT_RESULT[op].replace("f32(n)", f"f32({m.param(count)})")
    k.emit(first)
    m.input("p", partial)
    pre, loop = walk(m, partial.shape, (1,))
    m.body = pre + init + loop(combine) + f"  let t = {acc};\n  return {final};"


def _split_log_sum_exp(k, m: MapProgram, x: Slot, axes: Sequence[int]) -> None:
    """reduceLogSumExp in two dispatches: each part's maximum m_c and sum s_c of exp(x - m_c), then
    log(sum(s_c * exp(m_c - M))) + M with M the maximum of all (infinite maxima taken as 0, as above)."""
    count = _count(x.shape, axes)
    chunks = -(-count // CHUNK)
    parts = k.scratch("float32", (m.out.desc.element_count, chunks, 2))
    first = k.map(parts, "reduceLogSumExp-partial")
    first.helper(IS_NAN)
    first.helper(IS_INF)
    size, n = first.param(chunks), first.param(count)
    head = (
        f"  let g = (i / 2u) / {size};\n  let lo = ((i / 2u) % {size}) * {CHUNK}u;\n"
        f"  let hi = min(lo + {CHUNK}u, {n});\n"
    )
    body = _log_sum_exp(first, x, axes, ("lo", "hi", CHUNK), "g")
    first.body = head + body.replace("  return log(s.x) + m;", "  return select(mx, s.x, (i & 1u) == 1u);")
    k.emit(first)
    p = m.input("p", parts)
    pre, loop = walk(m, parts.shape[:2], (1,))
    m.body = (
        pre
        + "  var mx = f32_bits(0xff800000u);\n"
        + loop(f"    let x = {p}(2u * e);\n    if (is_nan(x)) {{ return x; }}\n    mx = max(mx, x);\n")
        + "  let m = select(mx, 0.0, is_inf(mx));\n  var s = vec2<f32>(0.0, 0.0);\n"
        + loop(
            f"    let mc = {p}(2u * e);\n    let sc = {p}(2u * e + 1u);\n"
            f"    let w = select(0.0, sc * exp(select(mc, 0.0, is_inf(mc)) - m), sc != 0.0);\n"
            f"    {kahan(m, 's', 'w')}\n",
            "r2",
        )
        + "  return log(s.x) + m;"
    )


def _split_int(k, m: MapProgram, x: Slot, axes: Sequence[int]) -> None:
    """An integer reduction (but reduceProduct) in two dispatches: each part's extremum, or its 64-bit
    sum as two words, then their reduction, saturated once at the end."""
    op, count, signed = k.op, _count(x.shape, axes), m.scalar == "i32"
    chunks = -(-count // CHUNK)
    extremum = op in ("reduceMax", "reduceMin")
    pairs = 1 if extremum else 2
    shape = (m.out.desc.element_count, chunks) + ((2,) if pairs == 2 else ())
    parts = k.scratch("int32" if extremum and signed else "uint32", shape)
    first = k.map(parts, f"{op}-partial")
    load = first.input("x", x)
    first.helper(I64_HELPERS)
    m.helper(I64_HELPERS)
    size, n = first.param(chunks), first.param(count)
    j = "i" if pairs == 1 else "(i / 2u)"
    head = f"  let g = {j} / {size};\n  let lo = ({j} % {size}) * {CHUNK}u;\n  let hi = min(lo + {CHUNK}u, {n});\n"
    pre, loop = walk(first, x.shape, axes, "g", ("lo", "hi", CHUNK))
    p = m.input("p", parts)
    pre2, loop2 = walk(m, (m.out.desc.element_count, chunks), (1,))
    if extremum:
        pick = "max" if op == "reduceMax" else "min"
        start = {("max", True): "-2147483647 - 1", ("max", False): "0u", ("min", True): "2147483647"}
        init = f"  var a = {start.get((pick, signed), '0xffffffffu')};\n"
        first.body = head + pre + init + loop(f"    a = {pick}(a, {load}(e));\n") + "  return a;"
        m.body = pre2 + init + loop2(f"    a = {pick}(a, {p}(e));\n") + "  return a;"
    else:
        if op == "reduceSum" and signed:
            step, combine, result = "a = add_i64(a, x);", "add_w64", "sat_i64(a)"
        else:
            mag = "abs_u32(x)" if signed else "x"
            term = f"mul_u64({mag}, {mag})" if op == "reduceSumSquare" else f"vec2<u32>({mag}, 0u)"
            step, combine = f"a = add_u64(a, {term});", "add_u64"
            result = "sat_u64_i32(a)" if signed else "sat_u64_u32(a)"
        first.body = (
            head
            + pre
            + "  var a = vec2<u32>(0u, 0u);\n"
            + loop(f"    let x = {load}(e);\n    {step}\n")
            + "  return select(a.x, a.y, (i & 1u) == 1u);"
        )
        m.body = (
            pre2
            + "  var a = vec2<u32>(0u, 0u);\n"
            + loop2(f"    a = {combine}(a, vec2<u32>({p}(2u * e), {p}(2u * e + 1u)));\n")
            + f"  return {result};"
        )
    k.emit(first)


@kernel(
    "reduceL1",
    "reduceL2",
    "reduceLogSum",
    "reduceLogSumExp",
    "reduceMax",
    "reduceMean",
    "reduceMin",
    "reduceProduct",
    "reduceSum",
    "reduceSumSquare",
)
def reduction(k, input: Slot, *, out: Slot, axes: Sequence[int], keep_dimensions: bool) -> None:
    # keep_dimensions only changes the output's shape: its elements are in the kept dimensions' order.
    m = k.map(out)
    m.helper(IS_NAN)
    m.helper(IS_INF)
    op, floating = k.op, m.scalar == "f32"
    if floating and _count(input.shape, axes) > SPLIT:
        (_split_log_sum_exp if op == "reduceLogSumExp" else _split)(k, m, input, axes)
    elif op != "reduceProduct" and _count(input.shape, axes) > SPLIT:
        _split_int(k, m, input, axes)
    elif op in ("reduceMax", "reduceMin"):
        m.body = _extremum(m, input, axes, op)
    elif op == "reduceLogSumExp":
        m.body = _log_sum_exp(m, input, axes)
    elif op == "reduceProduct":
        if floating:
            load = m.input("x", input)
            pre, loop = walk(m, input.shape, axes)
            m.body = pre + "  var a = 1.0;\n" + loop(f"    a *= {load}(e);\n") + "  return a;"
        else:
            m.body = _int_product(m, input, axes)
    elif floating:
        m.body = _float_sum(m, input, axes, op)
    else:
        m.body = _int_sum(m, input, axes, op)
    k.emit(m)


# -- argMin / argMax -----------------------------------------------------------------------------


def _arg_scan(m: MapProgram, x: Slot, axis: int, better: str, span: tuple[str, str, int] | None) -> str:
    """Statements leaving in ``best`` and ``at`` the extremum along ``axis`` of group ``g`` and its index
    (over the span's indices only, with one): the first on ties (only a strictly better value moves
    it), the first NaN if any (NumPy's)."""
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, (axis,), "g", span)
    lo = span[0] if span else "0u"
    check = f"    if (x {better} best) {{ best = x; at = r; }}\n"
    if codec(x.data_type).scalar == "f32":
        m.helper(IS_NAN)
        check = "    if (is_nan(x)) { best = x; at = r; break; }\n" + check
    first = f"{load}(base + {lo} * {m.param(strides(x.shape)[axis])})"
    return pre + f"  var best = {first};\n  var at = {lo};\n" + loop(f"    let x = {load}(e);\n" + check)


@kernel("argMin", "argMax")
def arg_min_max(k, input: Slot, *, out: Slot, axis: int, keep_dimensions: bool) -> None:
    m = k.map(out)
    better = "<" if k.op == "argMin" else ">"
    result = "  return i32(at);" if m.scalar == "i32" else "  return at;"
    count = input.shape[axis]
    if count <= SPLIT:
        m.body = "  let g = i;\n" + _arg_scan(m, input, axis, better, None) + result
        k.emit(m)
        return
    # Long axes: each CHUNK-element part's extremum and its index (in parallel), then the first best part's.
    chunks = -(-count // CHUNK)
    shape = (out.desc.element_count, chunks)
    values = k.scratch({"f32": "float32", "i32": "int32", "u32": "uint32"}[codec(input.data_type).scalar], shape)
    indices = k.scratch("uint32", shape)
    for slot, what in ((values, "best"), (indices, "at")):
        part = k.map(slot, f"{k.op}-partial")
        size, n = part.param(chunks), part.param(count)
        head = f"  let g = i / {size};\n  let lo = (i % {size}) * {CHUNK}u;\n  let hi = min(lo + {CHUNK}u, {n});\n"
        part.body = head + _arg_scan(part, input, axis, better, ("lo", "hi", CHUNK)) + f"  return {what};"
        k.emit(part)
    v, j = m.input("v", values), m.input("j", indices)
    check = f"    if (x {better} best) {{ best = x; at = {j}(e); }}\n"
    if codec(input.data_type).scalar == "f32":
        m.helper(IS_NAN)
        check = f"    if (is_nan(x)) {{ at = {j}(e); break; }}\n" + check
    pre, loop = walk(m, shape, (1,))
    m.body = pre + f"  var best = {v}(base);\n  var at = {j}(base);\n" + loop(f"    let x = {v}(e);\n" + check) + result
    k.emit(m)


# -- cumulativeSum -------------------------------------------------------------------------------


def _line_sum(m: MapProgram, x: Slot, load: str, stride: str, lo: str, hi: str, most: int, var: str) -> str:
    """Statements adding elements ``lo`` to ``hi`` of the line at ``base`` of ``x`` to the sum (``s``
    or ``a``)."""
    scalar = codec(x.data_type).scalar
    get = f"    let x = {load}(base + {var} * {stride});\n"
    if scalar == "f32":
        return unrolled(var, lo, hi, get + f"    {kahan(m, 's', 'x')}\n", most)
    step = "a = add_i64(a, x);" if scalar == "i32" else "a = add_u64(a, vec2<u32>(x, 0u));"
    return unrolled(var, lo, hi, get + f"    {step}\n", most)


@kernel("cumulativeSum")
def cumulative_sum(k, input: Slot, *, out: Slot, axis: int, exclusive: bool, reversed: bool) -> None:
    # Each output sums its line's elements from lo to hi; along a long axis (more than SHORT elements)
    # the CHUNK-element parts wholly inside that range come from a first dispatch's part sums.
    m = k.map(out)
    load = m.input("x", input)
    shape, n = input.shape, input.shape[axis]
    st = strides(shape)
    size, stride = m.param(n), m.param(st[axis])
    m.helper(IS_NAN)
    m.helper(IS_INF)
    m.helper(I64_HELPERS)
    # The output element's position along axis, and the first element of its line.
    lines = [f"  let pos = (i / {stride}) % {size};", f"  let base = i - pos * {stride};"]
    if reversed:
        lines.append(f"  let lo = pos + {'1u' if exclusive else '0u'};\n  let hi = {size};")
    else:
        lines.append(f"  let lo = 0u;\n  let hi = pos + {'0u' if exclusive else '1u'};")
    floating = m.scalar == "f32"
    lines.append("  var s = vec2<f32>(0.0, 0.0);" if floating else "  var a = vec2<u32>(0u, 0u);")
    if n <= SHORT:
        lines.append(_line_sum(m, input, load, stride, "lo", "hi", n, "r"))
    else:
        chunks = -(-n // CHUNK)
        lines_count = input.desc.element_count // n
        sums = k.scratch(
            "float32" if floating else "uint32", (lines_count, chunks) if floating else (lines_count, chunks, 2)
        )
        part = k.map(sums, "cumulativeSum-partial")
        pload = part.input("x", input)
        pn, pst, pc = part.param(n), part.param(st[axis]), part.param(chunks)
        head = [
            "  let j = i;" if floating else "  let j = i / 2u;",
            f"  let line = j / {pc};",
            f"  let lo = (j % {pc}) * {CHUNK}u;",
            f"  let hi = min(lo + {CHUNK}u, {pn});",
            f"  let base = (line / {pst}) * {pst} * {pn} + line % {pst};",
            "  var s = vec2<f32>(0.0, 0.0);" if floating else "  var a = vec2<u32>(0u, 0u);",
            _line_sum(part, input, pload, pst, "lo", "hi", CHUNK, "r"),
            "  return s.x;" if floating else "  return select(a.x, a.y, (i & 1u) == 1u);",
        ]
        part.helper(I64_HELPERS)
        part.body = "\n".join(head)
        k.emit(part)
        p, nc = m.input("sums", sums), m.param(chunks)
        if floating:
            add = f"    {kahan(m, 's', f'{p}(at)')}\n"
        else:
            add = f"    a = add_w64(a, vec2<u32>({p}(2u * at), {p}(2u * at + 1u)));\n"
        lines += [
            f"  let line = (i / ({stride} * {size})) * {stride} + i % {stride};",
            f"  let ca = (lo + {CHUNK - 1}u) / {CHUNK}u;",
            f"  let cb = hi / {CHUNK}u;",
            _line_sum(m, input, load, stride, "lo", f"select(hi, ca * {CHUNK}u, ca <= cb)", CHUNK, "r"),
            "  if (ca <= cb) {",
            unrolled("c", "ca", "cb", f"    let at = line * {nc} + c;\n" + add, chunks),
            _line_sum(m, input, load, stride, f"cb * {CHUNK}u", "hi", CHUNK, "r2"),
            "  }",
        ]
    if floating:
        lines.append("  return s.x;")
    else:
        lines.append("  return sat_i64(a);" if m.scalar == "i32" else "  return sat_u64_u32(a);")
    m.body = "\n".join(lines)
    k.emit(m)
