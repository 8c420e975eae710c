"""WebGPU kernels of batchNormalization, instanceNormalization and layerNormalization.

The spec's formula, ``scale * ((x - mean) / sqrt(variance + epsilon)) + bias``, in f32 (float16
operands are widened).  instance- and layerNormalization first compute the moments over the
normalized axes into a float32 scratch buffer (one dispatch: mean and biased variance of each
group, the variance from the deviations, so a large mean does not cancel it), then one map
normalizes every element with its group's moments (groups of more than ``SPLIT`` elements take
two dispatches for their moments, see :func:`_moments`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .kernels import kernel
from .program import MapProgram, Slot, strides
from .reduce import CHUNK, SPLIT, kahan, unrolled, walk


def _moments(k, x: Slot, axes: Sequence[int]) -> Slot:
    """A float32 scratch of (mean, variance) pairs, one per group of the dimensions not in ``axes``.

    Groups of more than SPLIT elements take two dispatches: the mean and the sum of squared
    deviations of each CHUNK-element part (in parallel), then those combined (Chan et al.'s
    pairwise formula), which stays within lavapipe's loop limit."""
    groups = 1
    for d, size in enumerate(x.shape):
        if d not in axes:
            groups *= size
    n = 1
    for d in axes:
        n *= x.shape[d]
    stats = k.scratch("float32", (groups, 2))
    if n <= SPLIT:
        m = k.map(stats, f"{k.op}-moments")
        m.body = "  let g = i / 2u;\n" + _local(m, x, axes, None, n) + f"  return v.x / {m.param(float(n), 'f')};"
        k.emit(m)
        return stats
    chunks = -(-n // CHUNK)
    parts = k.scratch("float32", (groups, chunks, 2))
    m = k.map(parts, f"{k.op}-partial-moments")
    size, total = m.param(chunks), m.param(n)
    head = (
        f"  let g = (i / 2u) / {size};\n  let lo = ((i / 2u) % {size}) * {CHUNK}u;\n"
        f"  let hi = min(lo + {CHUNK}u, {total});\n"
    )
    m.body = head + _local(m, x, axes, ("lo", "hi", CHUNK), None) + "  return v.x;"
    k.emit(m)
    # Combined: mean = sum(n_c * mean_c) / n, M2 = sum(M2_c + n_c * (mean_c - mean)^2).
    c = k.map(stats, f"{k.op}-moments")
    load = c.input("parts", parts)
    size, total, count = c.param(chunks), c.param(n), c.param(float(n), "f")
    lines = [
        "  let g = i / 2u;",
        "  var s = vec2<f32>(0.0, 0.0);",
        unrolled(
            "r",
            "0u",
            size,
            f"    let w = f32(min({CHUNK}u, {total} - r * {CHUNK}u));\n"
            f"    {kahan(c, 's', f'w * {load}(2u * (g * {size} + r))')}\n",
            chunks,
        ),
        f"  let mean = s.x / {count};",
        "  if ((i & 1u) == 0u) { return mean; }",
        "  var v = vec2<f32>(0.0, 0.0);",
        unrolled(
            "r2",
            "0u",
            size,
            f"    let w = f32(min({CHUNK}u, {total} - r2 * {CHUNK}u));\n"
            f"    let at = 2u * (g * {size} + r2);\n    let d = {load}(at) - mean;\n"
            f"    {kahan(c, 'v', f'{load}(at + 1u) + w * d * d')}\n",
            chunks,
        ),
        f"  return v.x / {count};",
    ]
    c.body = "\n".join(lines)
    k.emit(c)
    return stats


def _local(m: MapProgram, x: Slot, axes: Sequence[int], span: tuple[str, str, int] | None, n: int | None) -> str:
    """Statements of group ``g``'s mean over the span (returned for even ``i``), then ``v``, the Kahan
    sum of its squared deviations."""
    load = m.input("x", x)
    pre, loop = walk(m, x.shape, axes, "g", span)
    count = m.param(float(n), "f") if n is not None else "f32(hi - lo)"
    return (
        pre
        + "  var s = vec2<f32>(0.0, 0.0);\n"
        + loop(f"    {kahan(m, 's', f'{load}(e)')}\n")
        + f"  let mean = s.x / {count};\n"
        "  if ((i & 1u) == 0u) { return mean; }\n"
        "  var v = vec2<f32>(0.0, 0.0);\n"
        + loop(f"    let d = {load}(e) - mean;\n    {kahan(m, 'v', 'd * d')}\n", "r2")
    )


def _index(m: MapProgram, coords: Sequence[str], dims: Sequence[int], sizes: Sequence[int]) -> str:
    """The flat index, in a tensor of ``sizes``, of the output coordinates ``dims`` (in that order)."""
    return m.offset([coords[d] for d in dims], strides(sizes)) if dims else "0u"


def _affine(
    m: MapProgram,
    x: Slot,
    mean: str,
    variance: str,
    scale: Slot | None,
    bias: Slot | None,
    feature: str,
    epsilon: float,
) -> str:
    """The body's final statements: the spec's formula, scale and bias read at flat index ``feature``."""
    load = m.input("x", x)
    lines = [f"  let y = ({load}(i) - {mean}) / sqrt({variance} + {m.param(epsilon, 'f')});"]
    s = f"{m.input('scale', scale)}({feature})" if scale is not None else "1.0"
    b = f"{m.input('bias', bias)}({feature})" if bias is not None else "0.0"
    lines.append(f"  return {s} * y + {b};")
    return "\n".join(lines)


def _normalize(
    k,
    input: Slot,
    scale: Slot | None,
    bias: Slot | None,
    out: Slot,
    axes: Sequence[int],
    features: Sequence[int],
    epsilon: float,
) -> None:
    """Normalize over ``axes``; scale and bias are indexed by the output dimensions ``features``."""
    stats = _moments(k, input, axes)
    m = k.map(out)
    shape = input.shape
    pre, c = m.coords("i", shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    group = _index(m, c, kept, [shape[d] for d in kept])
    load = m.input("stats", stats)
    feature = _index(m, c, features, [shape[d] for d in features])
    m.body = (
        pre
        + f"  let g = {group};\n"
        + _affine(m, input, f"{load}(2u * g)", f"{load}(2u * g + 1u)", scale, bias, feature, epsilon)
    )
    k.emit(m)


@kernel("batchNormalization")
def batch_normalization(
    k,
    input: Slot,
    mean: Slot,
    variance: Slot,
    scale: Slot | None = None,
    bias: Slot | None = None,
    *,
    out: Slot,
    axis: int,
    epsilon: float,
) -> None:
    m = k.map(out)
    st = strides(input.shape)
    c = f"((i / {m.param(st[axis])}) % {m.param(input.shape[axis])})"
    m.body = _affine(
        m, input, f"{m.input('mean', mean)}({c})", f"{m.input('var', variance)}({c})", scale, bias, c, epsilon
    )
    k.emit(m)


@kernel("instanceNormalization")
def instance_normalization(
    k, input: Slot, scale: Slot | None = None, bias: Slot | None = None, *, out: Slot, epsilon: float, layout: str
) -> None:
    channel, spatial = (1, (2, 3)) if layout == "nchw" else (3, (1, 2))
    _normalize(k, input, scale, bias, out, spatial, (channel,), epsilon)


@kernel("layerNormalization")
def layer_normalization(
    k,
    input: Slot,
    scale: Slot | None = None,
    bias: Slot | None = None,
    *,
    out: Slot,
    axes: Sequence[int],
    epsilon: float,
) -> None:
    # scale and bias have the sizes of dimensions ``axes`` in the order of ``axes``.
    _normalize(k, input, scale, bias, out, tuple(axes), tuple(axes), epsilon)
