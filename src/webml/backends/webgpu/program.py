"""One compute dispatch as a kernel writes it: WGSL source, parameters and bindings.

A kernel of this backend describes each output element: it gets a :class:`MapProgram`
for its output, declares the inputs it reads (``load_<name>(e)`` in WGSL) and the
parameters it needs (shapes, strides, scalars: words of one uniform buffer, read with
``p(k)``, ``pi(k)``, ``pf(k)``), and writes the body of ``fn value(i: u32) -> T``,
the output element at flat index ``i``.  The program adds the rest: bindings, the loop
that packs sub-word outputs (float16, int8, int4: one invocation writes one whole
32-bit word, so no two invocations share a word) and the 2-D grid that covers more
than 65,535 workgroups.

A data-movement kernel sets ``raw``: ``value`` then returns the output element's storage bits
(``vec2<u32>`` for 64-bit types) read with ``bits_<name>(e)`` (:meth:`MapProgram.bits`), stored
unconverted, so values move exactly whatever the 32-bit arithmetic could hold.

Shapes live in the parameters, not in the source: every shape of the same ranks and
options gives the same source, and :mod:`.shaders` caches pipelines by source.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...ir import OperandDesc
from .codecs import Codec, codec

__all__ = ["WORKGROUP", "MapProgram", "Slot", "Step", "strides"]

#: Invocations per workgroup of every map kernel.
WORKGROUP = 64
#: The most workgroups along one grid dimension (WebGPU's default limit).
MAX_GROUPS = 65535


@dataclass(frozen=True)
class Slot:
    """A buffer of the compiled graph: one operand (or scratch) with its descriptor."""

    id: int
    desc: OperandDesc

    @property
    def shape(self) -> tuple[int, ...]:
        return self.desc.shape

    @property
    def data_type(self) -> str:
        return self.desc.data_type

    @property
    def rank(self) -> int:
        return len(self.desc.shape)


@dataclass
class Step:
    """One dispatch: the program's source, its bindings (binding -> slot id), its parameter words, its grid."""

    name: str
    source: str
    bindings: dict[int, int]
    params: list[int]
    groups: tuple[int, int]
    writes: int = -1  # the slot it writes


def strides(shape: Sequence[int]) -> list[int]:
    """Row-major element strides of ``shape``."""
    out, step = [], 1
    for size in reversed(shape):
        out.append(step)
        step *= size
    return out[::-1]


def _word(value: int | float, kind: str) -> int:
    if kind == "f":
        return struct.unpack("<I", struct.pack("<f", float(value)))[0]
    if kind == "i":
        return int(value) & 0xFFFFFFFF
    if not 0 <= int(value) < 2**32:
        raise OverflowError(f"parameter {value} does not fit in a u32")
    return int(value)


@dataclass
class MapProgram:
    """The program computing every element of ``out`` (see the module docstring)."""

    name: str
    out: Slot
    inputs: dict[str, Slot] = field(default_factory=dict)
    params: list[int] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)
    body: str = ""
    #: For a 64-bit output: ``value`` returns the element's two words, ``vec2<u32>(lo, hi)``, so a
    #: kernel can compute exactly in 64 bits (otherwise it computes in 32 and the store sign-extends).
    wide: bool = False
    #: Data movement: ``value`` returns the output element's storage bits (``out_codec.raw_scalar``),
    #: stored unconverted, so 64-bit values and float16/NaN bits move exactly.
    raw: bool = False
    raw_inputs: set[str] = field(default_factory=set)

    @property
    def out_codec(self) -> Codec:
        return codec(self.out.data_type)

    @property
    def scalar(self) -> str:
        """The WGSL type ``value`` returns."""
        return self.out_codec.scalar

    # -- what the kernel declares -------------------------------------------------
    def input(self, name: str, slot: Slot) -> str:
        """Bind ``slot`` as input ``name``; returns the name of its load function."""
        if name in self.inputs or not name.isidentifier():
            raise ValueError(f"{self.name}: input {name!r} declared twice or not an identifier")
        self.inputs[name] = slot
        return f"load_{name}"

    def bits(self, name: str, slot: Slot) -> str:
        """Bind ``slot`` as input ``name`` read as storage bits; returns the name of ``bits_<name>(e)``."""
        self.input(name, slot)
        self.raw_inputs.add(name)
        return f"bits_{name}"

    def param(self, value: int | float, kind: str = "u") -> str:
        """One parameter word: a WGSL expression of type u32 ("u"), i32 ("i") or f32 ("f")."""
        index = len(self.params)
        self.params.append(_word(value, kind))
        return {"u": f"p({index}u)", "i": f"pi({index}u)", "f": f"pf({index}u)"}[kind]

    def array(self, values: Sequence[int], kind: str = "u") -> list[str]:
        """Parameters for each of ``values`` (a shape, strides...), as WGSL expressions."""
        return [self.param(v, kind) for v in values]

    def helper(self, wgsl: str) -> None:
        """A WGSL function the body calls (added once)."""
        if wgsl not in self.helpers:
            self.helpers.append(wgsl)

    def coords(self, flat: str, shape: Sequence[int], prefix: str = "c") -> tuple[str, list[str]]:
        """WGSL statements splitting flat index ``flat`` of ``shape`` into coordinates
        ``{prefix}0..`` (returned with their names); the sizes are parameters."""
        sizes = self.array(shape)
        lines = [f"  var {prefix}_r = {flat};"]
        names = [f"{prefix}{d}" for d in range(len(shape))]
        for d in reversed(range(len(shape))):
            lines.append(f"  let {names[d]} = {prefix}_r % {sizes[d]};")
            if d:
                lines.append(f"  {prefix}_r = {prefix}_r / {sizes[d]};")
        return "\n".join(lines) + "\n", names

    def offset(self, coords: Sequence[str], shape_strides: Sequence[int]) -> str:
        """The flat index ``sum(coords[d] * strides[d])`` with the strides as parameters."""
        terms = [f"{c} * {s}" for c, s in zip(coords, self.array(shape_strides))]
        return " + ".join(terms) if terms else "0u"

    def broadcast(self, name: str, slot: Slot, raw: bool = False) -> str:
        """Bind ``slot`` as input ``name`` broadcast to the output's shape (numpy rules);
        returns a WGSL expression of its element (its storage bits if ``raw``) for output index ``i``."""
        load = self.bits(name, slot) if raw else self.input(name, slot)
        out_rank = self.out.rank
        if slot.shape == self.out.shape:
            return f"{load}(i)"
        own = strides(slot.shape)
        pad = out_rank - slot.rank
        bstrides = [0] * pad + [0 if size == 1 else st for size, st in zip(slot.shape, own)]
        if not any(bstrides):
            return f"{load}(0u)"
        fn = f"bidx_{name}"
        lines = [f"fn {fn}(i: u32) -> u32 {{", "  var r = i;", "  var e = 0u;"]
        sizes = self.array(self.out.shape)
        steps = self.array(bstrides)
        for d in reversed(range(out_rank)):
            lines.append(f"  e += (r % {sizes[d]}) * {steps[d]};")
            if d:
                lines.append(f"  r = r / {sizes[d]};")
        lines += ["  return e;", "}"]
        self.helper("\n".join(lines) + "\n")
        return f"{load}({fn}(i))"

    # -- the whole program -----------------------------------------------------------
    def step(self) -> Step:
        """The dispatch: source, bindings and grid."""
        out = self.out_codec
        count = self.out.desc.element_count
        words = out.buffer_words(count) if count else 0
        units = words if out.per_word > 1 or out.words == 1 else count  # invocations
        n_param = self.param(count)
        n_units = self.param(units)
        params = list(self.params)
        padded = max(4, -(-len(params) // 4) * 4)
        params += [0] * (padded - len(params))
        src = [
            f"struct Params {{ v: array<vec4<u32>, {padded // 4}> }}",
            "@group(0) @binding(0) var<uniform> params: Params;",
            "@group(0) @binding(1) var<storage, read_write> buf_out: array<u32>;",
        ]
        for b, name in enumerate(self.inputs, start=2):
            src.append(f"@group(0) @binding({b}) var<storage, read> buf_{name}: array<u32>;")
        src += [
            "fn p(k: u32) -> u32 { return params.v[k >> 2u][k & 3u]; }",
            "fn pi(k: u32) -> i32 { return bitcast<i32>(p(k)); }",
            "fn pf(k: u32) -> f32 { return bitcast<f32>(p(k)); }",
            # NaN and infinities from their bits: a user function is never a const-expression, whose
            # non-finite values WGSL forbids (Tint refuses bitcast<f32>(0x7fc00000u)).
            "fn f32_bits(b: u32) -> f32 { return bitcast<f32>(b); }",
        ]
        src += [codec(slot.data_type).load_fn(name) for name, slot in self.inputs.items()]
        src += [codec(slot.data_type).bits_fn(name) for name, slot in self.inputs.items() if name in self.raw_inputs]
        src += [out.helpers(), *self.helpers]
        if self.wide and out.words != 2:
            raise ValueError(f"{self.name}: a wide value needs a 64-bit output, not {self.out.data_type}")
        returns = out.raw_scalar if self.raw else "vec2<u32>" if self.wide else out.scalar
        src.append(f"fn value(i: u32) -> {returns} {{\n{self.body.rstrip()}\n}}")
        store = self._store_raw(out, n_param) if self.raw else self._store(out, n_param, self.wide)
        src.append(
            f"@compute @workgroup_size({WORKGROUP})\n"
            "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n"
            f"  let w = gid.y * nwg.x * {WORKGROUP}u + gid.x;\n"
            f"  if (w >= {n_units}) {{ return; }}\n" + store + "}"
        )
        groups = -(-units // WORKGROUP)
        gx = min(groups, MAX_GROUPS)
        gy = -(-groups // gx) if groups else 0
        bindings = {1: self.out.id} | {b: s.id for b, s in enumerate(self.inputs.values(), start=2)}
        return Step(self.name, "\n".join(s for s in src if s), bindings, params, (gx, gy), self.out.id)

    @staticmethod
    def _store_raw(out: Codec, n: str) -> str:
        if out.words == 2:
            return "  let v = value(w);\n  buf_out[2u * w] = v.x;\n  buf_out[2u * w + 1u] = v.y;\n"
        if out.per_word == 1:
            return "  buf_out[w] = value(w);\n"
        k, mask = out.per_word, (1 << out.bits) - 1
        return (
            "  var word = 0u;\n"
            f"  for (var j = 0u; j < {k}u; j++) {{\n"
            f"    let i = w * {k}u + j;\n"
            f"    if (i < {n}) {{ word |= (value(i) & {mask}u) << (j * {out.bits}u); }}\n"
            "  }\n"
            "  buf_out[w] = word;\n"
        )

    @staticmethod
    def _store(out: Codec, n: str, wide: bool = False) -> str:
        if wide:
            return "  let v = value(w);\n  buf_out[2u * w] = v.x;\n  buf_out[2u * w + 1u] = v.y;\n"
        if out.words == 2:
            hi = "select(0u, 0xffffffffu, v < 0)" if out.scalar == "i32" else "0u"
            return f"  let v = value(w);\n  buf_out[2u * w] = bitcast<u32>(v);\n  buf_out[2u * w + 1u] = {hi};\n"
        if out.per_word == 1:
            return f"  buf_out[w] = {out.bits_expr('value(w)')};\n"
        k = out.per_word
        return (
            "  var word = 0u;\n"
            f"  for (var j = 0u; j < {k}u; j++) {{\n"
            f"    let i = w * {k}u + j;\n"
            f"    if (i < {n}) {{ word |= {out.bits_expr('value(i)')} << (j * {out.bits}u); }}\n"
            "  }\n"
            "  buf_out[w] = word;\n"
        )
