"""How each WebNN data type lies in a GPU buffer, and the WGSL that reads and writes it.

Every tensor is an ``array<u32>`` holding the type's little-endian packed bytes, as on the
host (:func:`webml.dtypes.to_bytes`): float32/int32/uint32 one word per element; float16
two per word (read with ``unpack2x16float``, arithmetic in f32, so no adapter feature is
needed); int8/uint8 four, int4/uint4 eight; int64/uint64 two words per element, computed
in 32 bits (WGSL has no 64-bit integers): a load saturates to the 32-bit range, a store
sign-extends.  That is exact for indices, argMin/argMax outputs and the values real models
keep in int64; wider values are the listed exception (docs/conformance.md).

A kernel computes in its output's *scalar* type (``f32``, ``i32`` or ``u32``); a store
converts that to the output's type with the spec's casting rules (integers saturate).
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import dtypes

__all__ = ["Codec", "codec"]


@dataclass(frozen=True)
class Codec:
    data_type: str
    scalar: str  # WGSL type of the arithmetic: f32, i32 or u32
    bits: int  # storage bits of one element

    @property
    def per_word(self) -> int:
        """Elements in one 32-bit word (1 for 32- and 64-bit types)."""
        return max(1, 32 // self.bits)

    @property
    def words(self) -> int:
        """32-bit words of one element (2 for 64-bit types)."""
        return max(1, self.bits // 32)

    def buffer_words(self, count: int) -> int:
        """Words holding ``count`` elements (at least one: a binding is never empty)."""
        return max(1, -(-count // self.per_word) * self.words)

    def load_fn(self, name: str) -> str:
        """``fn load_<name>(e: u32) -> scalar``: element ``e`` of ``buf_<name>``."""
        buf, s = f"buf_{name}", self.scalar
        head = f"fn load_{name}(e: u32) -> {s} {{\n"
        if self.data_type == "float32":
            body = f"  return bitcast<f32>({buf}[e]);\n"
        elif self.data_type in ("int32", "uint32"):
            body = f"  return {s}({buf}[e]);\n" if s == "u32" else f"  return bitcast<i32>({buf}[e]);\n"
        elif self.data_type == "float16":
            body = f"  return unpack2x16float({buf}[e >> 1u])[e & 1u];\n"
        elif self.bits in (8, 4):
            k, mask = self.per_word, (1 << self.bits) - 1
            bits = f"({buf}[e / {k}u] >> ((e % {k}u) * {self.bits}u)) & {mask}u"
            if s == "i32":
                body = f"  return bitcast<i32>(({bits}) << {32 - self.bits}u) >> {32 - self.bits}u;\n"
            else:
                body = f"  return {bits};\n"
        elif self.data_type == "int64":
            body = (
                f"  let lo = {buf}[2u * e];\n  let hi = bitcast<i32>({buf}[2u * e + 1u]);\n"
                "  if (hi > 0 || (hi == 0 && lo >= 0x80000000u)) { return 2147483647; }\n"
                "  if (hi < -1 || (hi == -1 && lo < 0x80000000u)) { return -2147483647 - 1; }\n"
                "  return bitcast<i32>(lo);\n"
            )
        elif self.data_type == "uint64":
            body = f"  if ({buf}[2u * e + 1u] != 0u) {{ return 0xffffffffu; }}\n  return {buf}[2u * e];\n"
        else:  # pragma: no cover - every WebNN type is above
            raise NotImplementedError(self.data_type)
        return head + body + "}\n"

    @property
    def raw_scalar(self) -> str:
        """WGSL type of one element's storage bits: ``vec2<u32>`` (low, high word) for 64-bit types."""
        return "vec2<u32>" if self.words == 2 else "u32"

    def bits_fn(self, name: str) -> str:
        """``fn bits_<name>(e: u32) -> raw_scalar``: element ``e``'s storage bits, unconverted (data movement)."""
        buf = f"buf_{name}"
        head = f"fn bits_{name}(e: u32) -> {self.raw_scalar} {{\n"
        if self.words == 2:
            body = f"  return vec2<u32>({buf}[2u * e], {buf}[2u * e + 1u]);\n"
        elif self.per_word == 1:
            body = f"  return {buf}[e];\n"
        else:
            k, mask = self.per_word, (1 << self.bits) - 1
            body = f"  return ({buf}[e / {k}u] >> ((e % {k}u) * {self.bits}u)) & {mask}u;\n"
        return head + body + "}\n"

    def bits_expr(self, v: str) -> str:
        """The storage bits (low ``bits`` of a u32) of scalar value ``v`` (32-bit or narrower types)."""
        t = self.data_type
        if t == "float32":
            return f"bitcast<u32>({v})"
        if t == "int32":
            return f"bitcast<u32>({v})"
        if t == "uint32":
            return v
        if t == "float16":
            return f"f16_bits({v})"
        lo, hi = dtypes.int_bounds(t)
        if self.scalar == "i32":
            return f"(bitcast<u32>(clamp({v}, {lo}, {hi})) & {(1 << self.bits) - 1}u)"
        return f"min({v}, {hi}u)"

    def helpers(self) -> str:
        """WGSL functions the store of this type needs."""
        if self.data_type != "float16":
            return ""
        # pack2x16float is indeterminate outside float16's finite range: overflow and NaN by hand.
        return (
            "fn f16_bits(v: f32) -> u32 {\n"
            "  let b = bitcast<u32>(v);\n"
            "  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0x7e00u; }\n"
            "  if (v >= 65520.0) { return 0x7c00u; }\n"
            "  if (v <= -65520.0) { return 0xfc00u; }\n"
            "  return pack2x16float(vec2<f32>(v, 0.0)) & 0xffffu;\n"
            "}\n"
        )


_SCALAR = {"float": "f32", "int": "i32", "uint": "u32"}


def codec(data_type: str) -> Codec:
    """The storage of ``data_type``."""
    t = dtypes.info(data_type)
    return Codec(data_type, _SCALAR[t.kind], t.bits)
