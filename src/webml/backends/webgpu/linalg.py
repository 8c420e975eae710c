"""WebGPU kernels of matmul and gemm.

Every shape and data type has the plain map kernel: one invocation per output element, looping over
the reduction in f32 (float16 operands are loaded as f32, so float16 accumulates in f32 too).  float32
products of a real size take :class:`TiledMatmul` instead: 32x32 output tiles per workgroup, their
operand tiles staged in workgroup memory (vec4 loads where the reduction or the columns are multiples of
4), 4x4 outputs per invocation in registers.  On adapters with the ``subgroup`` feature, products with a
small output and a long reduction (matrix-vector shapes, where tiles would idle) take
:class:`SubgroupMatmul`: a whole workgroup per output element, the reduction split over its invocations
and summed by ``subgroupAdd`` (then across subgroups in workgroup memory).

Both fast programs compute ``alpha * (A @ B) + beta * C`` for A(m, k) at ``m * sam + k * sak`` (B, C
likewise), so matmul's batches and gemm's transposes are only strides.  Cooperative matrices: wgpu 0.32
knows a native ``cooperative-matrix`` feature, but lavapipe does not offer it (the adapter lists no
such feature), so no kernel uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .kernels import Emitter, kernel
from .program import MAX_GROUPS, Slot, Step, _word, strides

__all__ = ["SubgroupMatmul", "TiledMatmul", "matmul_geometry"]

#: Outputs per invocation along each axis, and the tile edge (8 x 8 invocations of 4 x 4).
_R = 4
_TILE = 32
_TK = 16
#: Use the tiled program from this many multiply-adds on (below it launching 64 threads per tile is waste).
TILED_MIN_WORK = 4096
#: The subgroup program serves outputs at most this large with reductions at least this long.
SUBGROUP_MAX_OUTPUTS = 4096
SUBGROUP_MIN_K = 256


@dataclass(frozen=True)
class Operand:
    """A matrix operand of a batched product: its slot, its row and column strides (elements) and the
    strides of its batch dimensions against the output's batch shape (0 where broadcast)."""

    slot: Slot
    row: int
    col: int
    batch: tuple[int, ...]


@dataclass(frozen=True)
class Product:
    """out[b, m, n] = alpha * sum_k a[b, m, k] * b[b, k, n] + beta * c[m, n]."""

    out: Slot
    a: Operand
    b: Operand
    c: Operand | None
    m: int
    k: int
    n: int
    batch: tuple[int, ...]
    alpha: float = 1.0
    beta: float = 1.0


def _batch_strides(shape: Sequence[int], batch: Sequence[int]) -> tuple[int, ...]:
    """Strides of ``shape``'s batch dimensions (all but the last two), right-aligned to ``batch``."""
    own = strides(shape)[:-2]
    dims = shape[:-2]
    pad = len(batch) - len(dims)
    return tuple([0] * pad + [0 if size == 1 else st for size, st in zip(dims, own)])


def matmul_geometry(a: Slot, b: Slot, out: Slot) -> Product:
    batch = tuple(out.shape[:-2])
    m, n = out.shape[-2:]
    k = a.shape[-1]
    return Product(
        out,
        Operand(a, k, 1, _batch_strides(a.shape, batch)),
        Operand(b, n, 1, _batch_strides(b.shape, batch)),
        None,
        m,
        k,
        n,
        batch,
    )


def _gemm_geometry(a, b, c, out, alpha, beta, a_transpose, b_transpose) -> Product:
    m, n = out.shape
    k = a.shape[0] if a_transpose else a.shape[1]
    ra, ca = (1, m) if a_transpose else (k, 1)
    rb, cb = (1, k) if b_transpose else (n, 1)
    oc = None
    if c is not None:
        cs = [0] * (2 - c.rank) + [0 if size == 1 else st for size, st in zip(c.shape, strides(c.shape))]
        oc = Operand(c, cs[0], cs[1], ())
    return Product(out, Operand(a, ra, ca, ()), Operand(b, rb, cb, ()), oc, m, k, n, (), alpha, beta)


# -- the plain kernel: one output element per invocation -------------------------------------------------------


def _plain(k: Emitter, p: Product) -> None:
    m = k.map(p.out, f"{k.op}-plain")
    load_a, load_b = m.input("a", p.a.slot), m.input("b", p.b.slot)
    rank = p.out.rank
    lines, c = m.coords("i", p.out.shape)
    base_a = " + ".join([f"{c[d]} * {s}" for d, s in enumerate(m.array(p.a.batch))] or ["0u"])
    base_b = " + ".join([f"{c[d]} * {s}" for d, s in enumerate(m.array(p.b.batch))] or ["0u"])
    row, col = c[rank - 2], c[rank - 1]
    sam, sak, sbk, sbn = m.array((p.a.row, p.a.col, p.b.row, p.b.col))
    lines += (
        f"  let ea = {base_a} + {row} * {sam};\n"
        f"  let eb = {base_b} + {col} * {sbn};\n"
        "  var acc = 0.0;\n"
        f"  for (var t = 0u; t < {m.param(p.k)}; t++) {{\n"
        f"    acc += f32({load_a}(ea + t * {sak})) * f32({load_b}(eb + t * {sbk}));\n"
        "  }\n"
    )
    result = "acc"
    if p.alpha != 1.0:
        result = f"{m.param(p.alpha, 'f')} * acc"
    if p.c is not None:  # even for beta 0: 0 * inf is NaN, as the reference's
        load_c = m.input("c", p.c.slot)
        csm, csn = m.array((p.c.row, p.c.col))
        beta = "" if p.beta == 1.0 else f"{m.param(p.beta, 'f')} * "
        result = f"{result} + {beta}f32({load_c}({row} * {csm} + {col} * {csn}))"
    m.body = lines + f"  return {m.scalar}({result});"
    k.emit(m)


# -- the fast programs -------------------------------------------------------------------------------------------


class _Params:
    """Parameter words of a hand-written program, read in WGSL as ``p(k)`` / ``pf(k)``."""

    def __init__(self) -> None:
        self.words: list[int] = []

    def add(self, value: int | float, kind: str = "u") -> str:
        self.words.append(_word(value, kind))
        return {"u": "p", "i": "pi", "f": "pf"}[kind] + f"({len(self.words) - 1}u)"

    def padded(self) -> list[int]:
        n = max(4, -(-len(self.words) // 4) * 4)
        return self.words + [0] * (n - len(self.words))


def _prelude(params: _Params, p: Product, vec_a: bool, vec_b: bool, vec_out: bool) -> list[str]:
    """Bindings (0 params, 1 out, 2 a, 3 b, 4 c) and parameter readers; call once every parameter is added."""
    f32_or_vec = {True: "vec4<f32>", False: "f32"}
    src = [
        f"struct Params {{ v: array<vec4<u32>, {len(params.padded()) // 4}> }}",
        "@group(0) @binding(0) var<uniform> params: Params;",
        f"@group(0) @binding(1) var<storage, read_write> buf_out: array<{f32_or_vec[vec_out]}>;",
        f"@group(0) @binding(2) var<storage, read> buf_a: array<{f32_or_vec[vec_a]}>;",
        f"@group(0) @binding(3) var<storage, read> buf_b: array<{f32_or_vec[vec_b]}>;",
    ]
    if p.c is not None:
        src.append("@group(0) @binding(4) var<storage, read> buf_c: array<f32>;")
    src += [
        "fn p(k: u32) -> u32 { return params.v[k >> 2u][k & 3u]; }",
        "fn pi(k: u32) -> i32 { return bitcast<i32>(p(k)); }",
        "fn pf(k: u32) -> f32 { return bitcast<f32>(p(k)); }",
    ]
    return src


class _Program:
    """What both fast programs share: the geometry as parameters, batch offsets, the epilogue."""

    def __init__(self, p: Product) -> None:
        self.p = p
        self.params = _Params()
        q = self.params
        self.M, self.K, self.N = q.add(p.m), q.add(p.k), q.add(p.n)
        self.sam, self.sak = q.add(p.a.row), q.add(p.a.col)
        self.sbk, self.sbn = q.add(p.b.row), q.add(p.b.col)
        self.alpha, self.beta = q.add(p.alpha, "f"), q.add(p.beta, "f")
        if p.c is not None:
            self.csm, self.csn = q.add(p.c.row), q.add(p.c.col)
        self.batch_count = 1
        for size in p.batch:
            self.batch_count *= size

    def batch_offsets(self) -> str:
        """``fn batch_offsets(bi) -> vec3<u32>``: the a, b and out element offsets of batch ``bi``."""
        q, p = self.params, self.p
        lines = ["fn batch_offsets(bi: u32) -> vec3<u32> {", "  var r = bi;", "  var e = vec3<u32>(0u);"]
        for d in reversed(range(len(p.batch))):
            size = q.add(p.batch[d])
            lines.append(f"  let c{d} = r % {size};")
            lines.append(f"  e += c{d} * vec3<u32>({q.add(p.a.batch[d])}, {q.add(p.b.batch[d])}, 0u);")
            lines.append(f"  r = r / {size};")
        lines += [f"  e.z = bi * {self.M} * {self.N};", "  return e;", "}"]
        return "\n".join(lines)

    def finish(self, acc: str, row: str, col: str) -> str:
        """The output value of accumulator ``acc`` at (row, col): alpha, beta and C."""
        result = f"{self.alpha} * {acc}"
        if self.p.c is not None:
            result += f" + {self.beta} * buf_c[{row} * {self.csm} + {col} * {self.csn}]"
        return result

    @staticmethod
    def grid(groups: int) -> tuple[int, int]:
        gx = min(groups, MAX_GROUPS)
        return gx, -(-groups // gx) if groups else 0

    def bindings(self) -> dict[int, int]:
        p = self.p
        found = {1: p.out.id, 2: p.a.slot.id, 3: p.b.slot.id}
        if p.c is not None:
            found[4] = p.c.slot.id
        return found


class TiledMatmul(_Program):
    """float32 ``alpha * A @ B + beta * C`` in 32 x 32 output tiles of 8 x 8 invocations (4 x 4 each).

    Each step of the reduction stages a 32 x 16 tile of A (stored k-major, so an invocation reads its
    four rows as one vec4) and a 16 x 32 tile of B (as vec4 rows) in workgroup memory, zero outside
    the matrices.  A is read as vec4 when its k stride is 1 and K a multiple of 4, B when its column
    stride is 1 and N a multiple of 4; the output is written as vec4 when N is a multiple of 4 and no
    C is added.  Workgroup ids are flat over (batch, tile row, tile column), split on a 2-D grid.

    ``a_at`` and ``out_at`` (WGSL bodies of ``fn a_at(row: u32, k: u32) -> f32``, called only inside
    the matrix, and ``fn out_at(row: u32, col: u32) -> u32``) replace A's strides and the output's
    row-major index: the convolutions use them to read their input as the implicit im2col matrix
    (parameters they need come from :attr:`params`).
    """

    def __init__(self, p: Product, a_at: str | None = None, out_at: str | None = None) -> None:
        super().__init__(p)
        self.a_at, self.out_at = a_at, out_at
        self.vec_a = p.a.col == 1 and p.k % 4 == 0 and a_at is None
        self.vec_b = p.b.col == 1 and p.n % 4 == 0
        self.vec_out = p.n % 4 == 0 and p.c is None and out_at is None
        self.tiles_m = -(-p.m // _TILE)
        self.tiles_n = -(-p.n // _TILE)
        self.T_M, self.T_N = self.params.add(self.tiles_m), self.params.add(self.tiles_n)
        self.total = self.params.add(self.tiles_m * self.tiles_n * self.batch_count)

    def _a_element(self) -> str:
        return "a_at(gr, gk)" if self.a_at else f"buf_a[off.x + gr * {self.sam} + gk * {self.sak}]"

    def _out_index(self) -> str:
        return "out_at(gr, gc)" if self.out_at else f"off.z + gr * {self.N} + gc"

    def _hooks(self) -> str:
        found = []
        if self.a_at:
            found.append(f"fn a_at(row: u32, k: u32) -> f32 {{\n{self.a_at.rstrip()}\n}}")
        if self.out_at:
            found.append(f"fn out_at(row: u32, col: u32) -> u32 {{\n{self.out_at.rstrip()}\n}}")
        return "\n".join(found)

    def _load_a(self) -> str:
        # 32 rows x 16 k of A into As[k * 32 + row]: 512 values, 8 (or 2 vec4) per invocation.
        if self.vec_a:
            return f"""  for (var j = 0u; j < 2u; j++) {{
    let v = lid + j * 64u;          // 128 vec4: row v / 4, k (v % 4) * 4
    let row = v / 4u;
    let kk = (v % 4u) * 4u;
    let gr = m0 + row;
    let gk = k0 + kk;
    var x = vec4<f32>(0.0);
    if (gr < {self.M} && gk < {self.K}) {{ x = buf_a[(off.x + gr * {self.sam} + gk) / 4u]; }}
    As[(kk + 0u) * 32u + row] = x.x;
    As[(kk + 1u) * 32u + row] = x.y;
    As[(kk + 2u) * 32u + row] = x.z;
    As[(kk + 3u) * 32u + row] = x.w;
  }}
"""
        return f"""  for (var j = 0u; j < 8u; j++) {{
    let v = lid + j * 64u;
    let row = v / 16u;
    let kk = v % 16u;
    let gr = m0 + row;
    let gk = k0 + kk;
    var x = 0.0;
    if (gr < {self.M} && gk < {self.K}) {{ x = {self._a_element()}; }}
    As[kk * 32u + row] = x;
  }}
"""

    def _load_b(self) -> str:
        # 16 k x 32 columns of B into Bs[k * 8 + column / 4] as vec4.
        if self.vec_b:
            return f"""  for (var j = 0u; j < 2u; j++) {{
    let v = lid + j * 64u;          // 128 vec4: k v / 8, columns (v % 8) * 4
    let kk = v / 8u;
    let gk = k0 + kk;
    let gc = n0 + (v % 8u) * 4u;
    var x = vec4<f32>(0.0);
    if (gk < {self.K} && gc < {self.N}) {{ x = buf_b[(off.y + gk * {self.sbk} + gc) / 4u]; }}
    Bs[v] = x;
  }}
"""
        return f"""  for (var j = 0u; j < 2u; j++) {{
    let v = lid + j * 64u;
    let kk = v / 8u;
    let gk = k0 + kk;
    let gc = n0 + (v % 8u) * 4u;
    var x = vec4<f32>(0.0);
    for (var q = 0u; q < 4u; q++) {{
      if (gk < {self.K} && gc + q < {self.N}) {{ x[q] = buf_b[off.y + gk * {self.sbk} + (gc + q) * {self.sbn}]; }}
    }}
    Bs[v] = x;
  }}
"""

    def _store(self) -> str:
        if self.vec_out:
            return f"""  for (var r = 0u; r < 4u; r++) {{
    let gr = m0 + ty * 4u + r;
    let gc = n0 + tx * 4u;
    if (gr < {self.M} && gc < {self.N}) {{ buf_out[(off.z + gr * {self.N} + gc) / 4u] = {self.alpha} * acc[r]; }}
  }}
"""
        return f"""  for (var r = 0u; r < 4u; r++) {{
    let gr = m0 + ty * 4u + r;
    for (var q = 0u; q < 4u; q++) {{
      let gc = n0 + tx * 4u + q;
      if (gr < {self.M} && gc < {self.N}) {{
        buf_out[{self._out_index()}] = {self.finish("acc[r][q]", "gr", "gc")};
      }}
    }}
  }}
"""

    def step(self, name: str) -> Step:
        body = f"""var<workgroup> As: array<f32, {_TK * _TILE}>;
var<workgroup> Bs: array<vec4<f32>, {_TK * _TILE // 4}>;
{self.batch_offsets()}
{self._hooks()}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {{
  let w = wid.y * nwg.x + wid.x;
  if (w >= {self.total}) {{ return; }}
  let tiles = {self.T_M} * {self.T_N};
  let off = batch_offsets(w / tiles);
  let t = w % tiles;
  let m0 = (t / {self.T_N}) * 32u;
  let n0 = (t % {self.T_N}) * 32u;
  let tx = lid % 8u;
  let ty = lid / 8u;
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < {self.K}; k0 += {_TK}u) {{
{self._load_a()}{self._load_b()}    workgroupBarrier();
    for (var kk = 0u; kk < {_TK}u; kk++) {{
      let a = vec4<f32>(As[kk * 32u + ty * 4u], As[kk * 32u + ty * 4u + 1u],
                        As[kk * 32u + ty * 4u + 2u], As[kk * 32u + ty * 4u + 3u]);
      let b = Bs[kk * 8u + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }}
    workgroupBarrier();
  }}
{self._store()}}}"""
        src = _prelude(self.params, self.p, self.vec_a, self.vec_b, self.vec_out)
        params = self.params.padded()
        source = "\n".join([*src, body])
        groups = self.tiles_m * self.tiles_n * self.batch_count
        return Step(name, source, self.bindings(), params, self.grid(groups), self.p.out.id)


class SubgroupMatmul(_Program):
    """float32 ``alpha * A @ B + beta * C`` with one workgroup (64 invocations) per output element.

    Invocation ``i`` sums the products of k = i, i + 64, ...; ``subgroupAdd`` sums each subgroup and
    its first active invocation leaves the sum in workgroup memory, which invocation 0 adds up.  Nothing
    depends on the subgroup size or on which invocations share a subgroup (an invocation that is not
    chosen leaves 0), and every subgroup operation is in uniform control flow, as WGSL requires.
    """

    def __init__(self, p: Product) -> None:
        super().__init__(p)
        self.total = self.params.add(p.m * p.n * self.batch_count)

    def step(self, name: str) -> Step:
        body = f"""var<workgroup> partial: array<f32, 64>;
{self.batch_offsets()}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {{
  let w = wid.y * nwg.x + wid.x;
  if (w >= {self.total}) {{ return; }}
  let mn = {self.M} * {self.N};
  let off = batch_offsets(w / mn);
  let row = (w % mn) / {self.N};
  let col = w % {self.N};
  let ea = off.x + row * {self.sam};
  let eb = off.y + col * {self.sbn};
  var acc = 0.0;
  for (var t0 = 0u; t0 < {self.K}; t0 += 64u) {{  // a uniform loop: subgroupAdd follows
    let t = t0 + lid;
    if (t < {self.K}) {{ acc += buf_a[ea + t * {self.sak}] * buf_b[eb + t * {self.sbk}]; }}
  }}
  let s = subgroupAdd(acc);
  // One invocation per subgroup keeps its sum: the first active one (naga has no subgroupElect).
  partial[lid] = select(0.0, s, sid == subgroupBroadcastFirst(sid));
  workgroupBarrier();
  if (lid == 0u) {{
    var total = 0.0;
    for (var j = 0u; j < 64u; j++) {{ total += partial[j]; }}
    buf_out[off.z + row * {self.N} + col] = {self.finish("total", "row", "col")};
  }}
}}"""
        src = _prelude(self.params, self.p, False, False, False)
        params = self.params.padded()
        source = "\n".join([*src, body])
        groups = self.p.m * self.p.n * self.batch_count
        return Step(name, source, self.bindings(), params, self.grid(groups), self.p.out.id)


# -- choosing a program ------------------------------------------------------------------------------------------

#: Forces one program for every product (tests compare them): "plain", "tiled", "subgroup" or None (choose).
FORCE: str | None = None


def choose(k: Emitter, p: Product) -> str:
    """Which program computes ``p`` on this device: "plain", "tiled" or "subgroup"."""
    floats = {p.out.data_type, p.a.slot.data_type, p.b.slot.data_type}
    if p.c is not None:
        floats.add(p.c.slot.data_type)
    if floats != {"float32"}:
        return "plain"
    if FORCE is not None:
        if FORCE == "subgroup" and "subgroup" not in k.gpu.features:
            raise RuntimeError("the subgroup matmul needs the adapter's subgroup feature")
        return FORCE
    outputs = p.m * p.n
    for size in p.batch:
        outputs *= size
    if "subgroup" in k.gpu.features and outputs <= SUBGROUP_MAX_OUTPUTS and p.k >= SUBGROUP_MIN_K:
        return "subgroup"
    if outputs * p.k >= TILED_MIN_WORK:
        return "tiled"
    return "plain"


def _product(k: Emitter, p: Product) -> None:
    way = choose(k, p)
    if way == "plain" or p.out.desc.element_count == 0:
        _plain(k, p)
    elif way == "tiled":
        k.steps.append(TiledMatmul(p).step(f"{k.op}-tiled"))
    else:
        k.steps.append(SubgroupMatmul(p).step(f"{k.op}-subgroup"))


_FLOATS = ("float32", "float16")


@kernel("matmul", a=_FLOATS, b=_FLOATS, output=_FLOATS)
def matmul(k: Emitter, a: Slot, b: Slot, *, out: Slot) -> None:
    _product(k, matmul_geometry(a, b, out))


@kernel("gemm", a=_FLOATS, b=_FLOATS, c=_FLOATS, output=_FLOATS)
def gemm(
    k: Emitter,
    a: Slot,
    b: Slot,
    c: Slot | None = None,
    *,
    out: Slot,
    alpha: float,
    beta: float,
    a_transpose: bool,
    b_transpose: bool,
) -> None:
    _product(k, _gemm_geometry(a, b, c, out, alpha, beta, a_transpose, b_transpose))
